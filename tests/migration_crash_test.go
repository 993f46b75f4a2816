package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// The claim definition of the migration benchmark: version 1 with ten states an instance waits in,
// version 2 with a rename and a guarded split (policy manual).
const (
	claimV1File = "../bench/migrate/testdata/claim.v1.yaml"
	claimV2File = "../bench/migrate/testdata/claim.yaml"
)

var claimStates = []string{"received", "triage", "assessing", "documents", "review", "disputed", "reopened", "approved", "scheduled", "paying"}

// TestMigrationCrash: fsmd is killed with SIGKILL in the middle of a migration of 100,000 running
// instances (30,000 on SQLite and Citus); the progress it recorded matches what moved, batch for batch.
// Restarted, it resumes the migration and finishes it: every instance is on version 2 with exactly
// one migration row in its history.
func TestMigrationCrash(t *testing.T) {
	t.Run("postgres", func(t *testing.T) { testMigrationCrash(t, dbtest.PostgresDatabaseURL(t), 100_000) })
	// Fewer on SQLite, whose checks run through the race detector in this process: 30 batches
	// still leave the kill in the middle.
	t.Run("sqlite", func(t *testing.T) { testMigrationCrash(t, dbtest.SQLiteURL(t), 30_000) })
	// On Citus a batch is decided in Go (as on SQLite) and its writes go to every worker.
	t.Run("citus", func(t *testing.T) { testMigrationCrash(t, dbtest.CitusDatabaseURL(t), 30_000) })
}

func testMigrationCrash(t *testing.T, dbURL string, n int) {
	ctx := context.Background()
	defs := t.TempDir()
	if err := os.WriteFile(filepath.Join(defs, "claim.yaml"), apiReadFile(t, claimV1File), 0o644); err != nil {
		t.Fatal(err)
	}
	child := startFsmd(t, dbURL, defs) // registers version 1
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	seedClaims(t, db, n)
	childDo(t, child, http.MethodPut, "/v1/definitions/claim", apiReadFile(t, claimV2File), http.StatusCreated, nil)

	var st struct {
		ID       string
		Status   string
		Migrated int64
		Stranded int64
		Total    int64
	}
	childDo(t, child, http.MethodPost, "/v1/definitions/claim/migrations", []byte(`{}`), http.StatusAccepted, &st)
	if st.Total != int64(n) {
		t.Fatalf("the migration's total: %d, want %d", st.Total, n)
	}
	// Kill it once a fifth has moved, before the end.
	deadline := time.Now().Add(60 * time.Second)
	for st.Migrated < int64(n/5) {
		if st.Status != "running" || time.Now().After(deadline) {
			t.Fatalf("the migration before the kill: %+v; child log:\n%s", st, child.log.tail())
		}
		time.Sleep(5 * time.Millisecond)
		childDo(t, child, http.MethodGet, "/v1/migrations/"+st.ID, nil, http.StatusOK, &st)
	}
	child.kill()

	// What was recorded is what moved: the progress is written with each batch.
	waitForOrphans(t, db)
	row, err := persistence.MigrationGet(ctx, db, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	moved := countClaims(t, db, "SELECT count(*) FROM instances WHERE version = 2")
	if row.Status != "running" || row.Migrated != moved || moved == 0 || moved == int64(n) {
		t.Fatalf("after the kill: migration %s %s with %d migrated, %d instances on version 2; want running, equal, and neither none nor all",
			row.ID, row.Status, row.Migrated, moved)
	}
	t.Logf("killed with %d of %d moved", moved, n)

	child = startFsmd(t, dbURL, defs) // resumes the migration
	for st.Status == "running" {
		if time.Now().After(deadline.Add(60 * time.Second)) {
			t.Fatalf("the resumed migration did not finish: %+v; child log:\n%s", st, child.log.tail())
		}
		time.Sleep(20 * time.Millisecond)
		childDo(t, child, http.MethodGet, "/v1/migrations/"+st.ID, nil, http.StatusOK, &st)
	}
	if st.Status != "done" || st.Migrated != int64(n) || st.Stranded != 0 || st.Total != int64(n) {
		t.Fatalf("the resumed migration: %+v, want done with %d migrated; child log:\n%s", st, n, child.log.tail())
	}
	for query, want := range map[string]int64{
		"SELECT count(*) FROM instances WHERE version = 2 AND revision = 4":                             int64(n),
		"SELECT count(*) FROM transitions WHERE source = 'migration'":                                   int64(n),
		"SELECT count(DISTINCT instance_id) FROM transitions WHERE source = 'migration' AND seq = 4":    int64(n),
		"SELECT count(*) FROM transitions WHERE source = 'migration' AND request_id <> '" + st.ID + "'": 0,
	} {
		if got := countClaims(t, db, query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
}

// seedClaims creates n running instances of claim version 1, spread over its ten waiting states,
// at revision 3.
func seedClaims(t *testing.T, db *persistence.DB, n int) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	// One statement per chunk on either database: 100,000 round trips (or, on SQLite, 100,000
	// inserts through the race detector) would dominate the test.
	for start := 0; start < n; start += 10_000 {
		end := min(start+10_000, n) - 1
		var err error
		if db.Dialect == persistence.Postgres {
			_, err = db.X.ExecContext(context.Background(), `INSERT INTO instances
				(id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
				SELECT 'claim-' || lpad(i::text, 8, '0'), 'claim', 1, ($1::text[])[i % 10 + 1],
					jsonb_build_object('amount', (i * 7919) % 2000, 'customer', 'c' || i, 'tags', jsonb_build_array('t' || i % 7)),
					3, false, 'seed', $2, $2, $2
				FROM generate_series($3::int, $4::int) AS i`,
				claimStatesArray(), now, start, end)
		} else {
			states, _ := json.Marshal(claimStates)
			_, err = db.X.ExecContext(context.Background(), `WITH RECURSIVE s(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM s WHERE i < ?2)
				INSERT INTO instances
				(id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
				SELECT printf('claim-%08d', i), 'claim', 1, json_extract(?3, '$[' || (i % 10) || ']'),
					json_object('amount', (i * 7919) % 2000, 'customer', 'c' || i, 'tags', json_array('t' || (i % 7))),
					3, 0, 'seed', ?4, ?4, ?4
				FROM s`, start, end, string(states), sqliteTime(now))
		}
		if err != nil {
			t.Fatalf("seeding the instances: %v", err)
		}
	}
}

// sqliteTime is t as fsmd writes times to SQLite (text that sorts as the time does).
func sqliteTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }

func claimStatesArray() string {
	b, _ := json.Marshal(claimStates)
	return "{" + string(b[1:len(b)-1]) + "}"
}

func countClaims(t *testing.T, db *persistence.DB, query string) int64 {
	t.Helper()
	var n int64
	if err := db.X.GetContext(context.Background(), &n, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// childDo sends a request to a child fsmd and decodes its answer into out, failing the test unless
// the status is want.
func childDo(t *testing.T, child *fsmdChild, method, path string, body []byte, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, child.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPut {
			req.Header.Set("Content-Type", "application/yaml")
		}
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// TestMigrateCLIResumes: `fsmd migrate run NAME` after a migration of NAME was interrupted (recorded
// as running, run by nobody) finishes that one, as fsmd serve would at start, instead of failing
// with migration_running.
func TestMigrateCLIResumes(t *testing.T) {
	t.Parallel()
	for name, dbURL := range map[string]func(testing.TB) string{"postgres": dbtest.PostgresDatabaseURL, "sqlite": dbtest.SQLiteURL} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testMigrateCLIResumes(t, dbURL(t))
		})
	}
}

func testMigrateCLIResumes(t *testing.T, url string) {
	ctx := context.Background()
	db, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defs := t.TempDir()
	v1, v2 := apiReadFile(t, claimV1File), apiReadFile(t, claimV2File)
	if err := os.WriteFile(filepath.Join(defs, "claim.yaml"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	svc := service.New(db, service.Options{})
	if _, err := svc.PutDefinition(ctx, "claim", v1); err != nil {
		t.Fatal(err)
	}
	seedClaims(t, db, 50)
	if _, err := svc.PutDefinition(ctx, "claim", v2); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	// A migration recorded as running that no process runs: what a crash in the middle leaves.
	row := persistence.MigrationRow{ID: "interrupted", Definition: "claim", ToVersion: 2, Status: "running", Total: 50,
		StartedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.MigrationInsert(ctx, tx, row) }); err != nil {
		t.Fatal(err)
	}

	res := fsmd(t, "migrate", "run", "claim", "--database-url", url, "--definitions", defs)
	var st service.MigrationStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil || res.code != 0 ||
		!strings.Contains(res.stderr, "migration interrupted of claim to version 2 is running: resuming it") {
		t.Fatalf("fsmd migrate run: %v\n%s", err, res)
	}
	if st.ID != "interrupted" || st.Status != "done" || st.Migrated != 50 {
		t.Fatalf("status: %+v, want the interrupted migration done with 50 migrated", st)
	}
}
