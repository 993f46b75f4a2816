package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestTimerBatchCrash: fsmd is killed with SIGKILL while its scheduler fires 30,000 due timers in
// batches (a batch is one transaction). No instance is half-written: each is either untouched
// (waiting at revision 0, its timer armed, no history) or fired whole (rung at revision 1, its one
// audit row from the timer, no timer left). Restarted, fsmd fires the rest: each timer exactly once.
func TestTimerBatchCrash(t *testing.T) {
	t.Run("postgres", func(t *testing.T) { testTimerBatchCrash(t, dbtest.PostgresDatabaseURL(t), 30_000) })
	t.Run("sqlite", func(t *testing.T) { testTimerBatchCrash(t, dbtest.SQLiteURL(t), 30_000) })
	// Fewer on Citus, whose batches are slower (a claim per instance, a commit over every worker):
	// enough for the kill to land in the middle of one.
	t.Run("citus", func(t *testing.T) { testTimerBatchCrash(t, dbtest.CitusDatabaseURL(t), 10_000) })
}

// timerBatchWhole is the count of the instances that are neither untouched nor fired whole.
const timerBatchWhole = `SELECT count(*) FROM instances i WHERE NOT (
	(i.state = 'waiting' AND i.revision = 0 AND NOT i.final
		AND (SELECT count(*) FROM transitions t WHERE t.instance_id = i.id) = 0
		AND (SELECT count(*) FROM timers m WHERE m.instance_id = i.id) = 1)
	OR (i.state = 'rung' AND i.revision = 1 AND i.final
		AND (SELECT count(*) FROM transitions t WHERE t.instance_id = i.id) = 1
		AND (SELECT count(*) FROM transitions t WHERE t.instance_id = i.id AND t.seq = 1 AND t.source = 'timer' AND t.event = 'ring') = 1
		AND (SELECT count(*) FROM timers m WHERE m.instance_id = i.id) = 0))`

func testTimerBatchCrash(t *testing.T, dbURL string, n int) {
	defs, err := filepath.Abs("testdata/timers")
	if err != nil {
		t.Fatal(err)
	}
	child := startFsmd(t, dbURL, defs, "--timer-poll", "50ms") // registers ping
	db, err := persistence.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	seedPings(t, db, n)

	// Kill it once a tenth has fired, and on PostgreSQL while it has a transaction open (a batch
	// being written: the scheduler is idle only when no timer is due).
	deadline := time.Now().Add(120 * time.Second)
	for fired := int64(0); fired < int64(n/10) || !inTransaction(t, db); {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d timers fired after 120 s; log:\n%s", fired, n, child.log.tail())
		}
		time.Sleep(time.Millisecond)
		fired = countClaims(t, db, "SELECT count(*) FROM transitions")
	}
	child.kill()
	waitForOrphans(t, db)
	fired := countClaims(t, db, "SELECT count(*) FROM instances WHERE state = 'rung'")
	if fired == int64(n) {
		t.Fatalf("all %d timers fired before the kill: nothing was cut", n)
	}
	if half := countClaims(t, db, timerBatchWhole); half != 0 {
		t.Fatalf("%d instances half-written after the kill (%d of %d fired)", half, fired, n)
	}
	t.Logf("killed with %d of %d fired, none half-written", fired, n)

	child = startFsmd(t, dbURL, defs, "--timer-poll", "50ms")
	for countClaims(t, db, "SELECT count(*) FROM instances WHERE state = 'rung'") < int64(n) {
		if time.Now().After(deadline.Add(60 * time.Second)) {
			t.Fatalf("the restarted fsmd did not fire the rest; log:\n%s", child.log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for query, want := range map[string]int64{
		timerBatchWhole: 0,
		"SELECT count(*) FROM transitions WHERE source = 'timer' AND seq = 1 AND dropped IS NULL": int64(n),
		"SELECT count(*) FROM transitions": int64(n),
		"SELECT count(*) FROM timers":      0,
	} {
		if got := countClaims(t, db, query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
}

// inTransaction reports whether, on PostgreSQL, another session of the database is in a
// transaction that has written (its xid assigned); on SQLite it cannot tell, and says so. On Citus
// the coordinator's session of a transaction that writes on the workers has no xid of its own
// until it commits: one in a transaction between two statements counts.
func inTransaction(t *testing.T, db *persistence.DB) bool {
	t.Helper()
	if db.Dialect != persistence.Postgres {
		return true
	}
	return countClaims(t, db, fmt.Sprintf(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND pid <> pg_backend_pid() AND (backend_xid IS NOT NULL OR (state = 'idle in transaction' AND %t))`, db.Citus)) > 0
}

// seedPings creates n ping instances (tests/testdata/timers) whose timers are all due, as creating
// them through the API would arm them.
func seedPings(t *testing.T, db *persistence.DB, n int) {
	t.Helper()
	ctx := context.Background()
	due := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Now().UTC().Truncate(time.Microsecond)
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		if db.Dialect == persistence.Postgres { // a statement each: n round trips would dominate the test
			if _, err := tx.X.ExecContext(ctx, `INSERT INTO instances
				(id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
				SELECT 'ping-' || lpad(i::text, 6, '0'), 'ping', 1, 'waiting', jsonb_build_object('due', $1::text), 0, false, 'seed', $2, $2, $2
				FROM generate_series(0, $3::int - 1) AS i`, due.Format(time.RFC3339), now, n); err != nil {
				return err
			}
			_, err := tx.X.ExecContext(ctx, `INSERT INTO timers (instance_id, revision, idx, event, due_at, next_try_at)
				SELECT 'ping-' || lpad(i::text, 6, '0'), 0, 0, 'ring', $1, $1 FROM generate_series(0, $2::int - 1) AS i`, due, n)
			return err
		}
		// The same on SQLite, where n inserts through the race detector took a minute.
		if _, err := tx.X.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
			INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
			SELECT printf('ping-%06d', i), 'ping', 1, 'waiting', json_object('due', ?2), 0, 0, 'seed', ?3, ?3, ?3 FROM s`,
			n, due.Format(time.RFC3339), sqliteTime(now)); err != nil {
			return err
		}
		_, err := tx.X.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
			INSERT INTO timers (instance_id, revision, idx, event, due_at, next_try_at, attempts, last_error)
			SELECT printf('ping-%06d', i), 0, 0, 'ring', ?2, ?2, 0, '' FROM s`, n, sqliteTime(due))
		return err
	})
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
}
