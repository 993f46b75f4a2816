package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// bulkJob is the definition the bulk tests act on.
const bulkJob = `name: job
initial: queued
context:
  priority: int
  tier: string
events:
  cancel: {reason: string}
states:
  queued:
    on:
      start: running
      cancel:
        to: cancelled
        guard: ctx.priority < 5
        guard_message: high-priority jobs cannot be cancelled
  running:
    on:
      finish: done
      cancel: cancelled
  done: {final: true}
  cancelled: {final: true}
`

// bulkSeed stores n jobs in one statement: job-00001 ... with priority i % 10, tier gold for even
// i, and state running for i % 3 == 0, done (final) for the rest of i % 7 == 0, else queued.
func bulkSeed(t *testing.T, db *persistence.DB, n int) {
	t.Helper()
	state := `CASE WHEN g % 3 = 0 THEN 'running' WHEN g % 7 = 0 THEN 'done' ELSE 'queued' END`
	final := `(g % 3 <> 0 AND g % 7 = 0)`
	tier := `CASE WHEN g % 2 = 0 THEN 'gold' ELSE 'basic' END`
	var query string
	if db.Dialect == persistence.Postgres {
		query = `INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
			SELECT 'job-' || lpad(g::text, 5, '0'), 'job', 1, ` + state + `, jsonb_build_object('priority', g % 10, 'tier', ` + tier + `),
				0, ` + final + `, '', now(), now(), now()
			FROM generate_series(1, $1) AS g`
	} else {
		query = `WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1)
			INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
			SELECT 'job-' || substr('0000' || g, -5), 'job', 1, ` + state + `, json_object('priority', g % 10, 'tier', ` + tier + `),
				0, ` + final + `, '', strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ')
			FROM s`
	}
	if _, err := db.X.Exec(query, n); err != nil {
		t.Fatal(err)
	}
}

// TestBulkOverTheAPI: on thousands of jobs in mixed states (10,000 on PostgreSQL), a bulk's plan
// counts exactly what its run then does, per from state and to state or refusal code, with the
// same samples; every matching instance gets the event once, audited with source bulk and the
// bulk's id; a run whose progress was lost after a batch (a crash between the batch and its
// record) resumes and sends no instance the event twice; a cancelled bulk stops; a second bulk of
// the definition is 409; bad requests are 400 naming what is wrong; events sent through the API
// during a bulk action are serialized with it.
func TestBulkOverTheAPI(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		n := 10000
		if db.Dialect != persistence.Postgres {
			n = 2000
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(bulkJob), 0o644); err != nil {
			t.Fatal(err)
		}
		set, diags, err := machine.Load(dir)
		if err != nil || diags.Errors() > 0 {
			t.Fatalf("%v %v", err, diags)
		}
		svc := service.New(db, service.Options{})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set); err != nil {
			t.Fatal(err)
		}
		bulkSeed(t, db, n)
		srv := httptest.NewServer(server.New(svc, server.Options{}))
		t.Cleanup(srv.Close)
		call := callerOf(t, srv.URL, "")
		must := func(method, path, body string, status int) map[string]any {
			t.Helper()
			return call.must(t, method, path, body, status)
		}
		runAll := func(id string) map[string]any {
			t.Helper()
			for range n/50 + 10 {
				if _, err := svc.BulkRound(ctx); err != nil {
					t.Fatal(err)
				}
				if b := must("GET", "/v1/bulk/"+id, "", 200); b["status"] != "running" {
					return b
				}
			}
			t.Fatal("the bulk does not end")
			return nil
		}

		// Bad requests name what is wrong.
		for _, tt := range []struct{ body, code, detail string }{
			{`{"filter": {}}`, "invalid_request", "give event"},
			{`{"filter": {}, "event": "start", "action": "suspend", "reason": "x"}`, "invalid_request", "not both"},
			{`{"filter": {}, "action": "explode"}`, "invalid_request", "explode"},
			{`{"filter": {}, "action": "terminate"}`, "invalid_request", "reason"},
			{`{"filter": {"ctx": {"colour": "red"}}, "event": "start"}`, "invalid_request", "filter.ctx.colour"},
			{`{"filter": {"ctx": {"tier[gt]": "a"}}, "event": "start"}`, "invalid_request", "filter.ctx.tier[gt]"},
			{`{"filter": {"ctx": {"priority": "high"}}, "event": "start"}`, "invalid_request", "filter.ctx.priority"},
			{`{"filter": {}, "event": "explode"}`, "unknown_event", "explode"},
		} {
			code, out := call("POST", "/v1/definitions/job/bulk/plan", tt.body)
			if detail, _ := out["detail"].(string); out["code"] != tt.code || !strings.Contains(detail, tt.detail) || code < 400 {
				t.Errorf("plan %s: %d %v, want %s naming %q", tt.body, code, out, tt.code, tt.detail)
			}
		}

		// Plan, then run: the same counts, outcome by outcome.
		body := `{"filter": {"ctx": {"tier": "gold", "priority[gte]": 0}}, "event": "cancel", "payload": {"reason": "spring cleaning"}}`
		plan := must("POST", "/v1/definitions/job/bulk/plan", body, 200)
		started := must("POST", "/v1/definitions/job/bulk", body, 202)
		id := started["id"].(string)
		if started["total"] != plan["total"] || started["status"] != "running" {
			t.Fatalf("started: %v, plan total %v", started, plan["total"])
		}
		if code, out := call("POST", "/v1/definitions/job/bulk", `{"filter": {}, "action": "suspend", "reason": "x"}`); code != 409 || out["code"] != "bulk_running" {
			t.Errorf("a second bulk: %d %v", code, out)
		}
		// A crash after the first batch, before its progress was recorded: the run starts over.
		if _, err := svc.BulkRound(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.X.Exec(`UPDATE bulks SET pending = cursor, cursor = '', applied = 0, refused = 0, outcomes = '[]'`); err != nil {
			t.Fatal(err)
		}
		done := runAll(id)
		if done["status"] != "done" || asJSON(done["outcomes"]) != asJSON(plan["outcomes"]) ||
			done["applied"].(float64)+done["refused"].(float64) != plan["total"] {
			t.Fatalf("the run:\n%v\nthe plan:\n%v", done, plan)
		}
		var once, twice int
		err = db.X.QueryRow(db.X.Rebind(`SELECT COUNT(DISTINCT instance_id), COUNT(*) FROM transitions WHERE request_id = ? AND source = 'bulk'`), id).Scan(&once, &twice)
		if err != nil {
			t.Fatal(err)
		}
		if float64(once) != done["applied"] || once != twice {
			t.Errorf("%d instances have %d rows of the bulk, applied %v: each must have one", once, twice, done["applied"])
		}
		if list := must("GET", "/v1/definitions/job/bulk", "", 200)["items"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != id {
			t.Errorf("the definition's bulks: %v, want %s", list, id)
		}
		plan2 := must("POST", "/v1/definitions/job/bulk/plan", body, 200)
		if strings.Contains(asJSON(plan2["outcomes"]), `"to_state":"cancelled"`) {
			t.Errorf("after the run, a plan would still cancel: %v", plan2)
		}

		// Cancel: the batch done stays done, nothing after it.
		susp := must("POST", "/v1/definitions/job/bulk", `{"filter": {"state": "queued"}, "action": "suspend", "reason": "maintenance"}`, 202)
		sid := susp["id"].(string)
		// Events through the API during the bulk: serialized with its suspensions, each either lands
		// (before the suspension) or is refused (after it, or the instance is final); no row is lost,
		// no instance suspended twice.
		var wg sync.WaitGroup
		results := make([]int, 40)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _ := call("POST", fmt.Sprintf("/v1/instances/job-%05d/events", i*6+1), `{"event": "start"}`)
				results[i] = code
			}()
		}
		if _, err := svc.BulkRound(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		cancelled := must("POST", "/v1/bulk/"+sid+"/cancel", "", 200)
		if _, err := svc.BulkRound(ctx); err != nil {
			t.Fatal(err)
		}
		after := must("GET", "/v1/bulk/"+sid, "", 200)
		if cancelled["status"] != "cancelled" || after["applied"] != cancelled["applied"] || after["applied"].(float64) > 1000 {
			t.Errorf("cancelled: %v, then %v", cancelled, after)
		}
		for i, code := range results {
			id := fmt.Sprintf("job-%05d", i*6+1)
			inst := must("GET", "/v1/instances/"+id, "", 200)
			h, err := svc.History(ctx, id, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var started, suspended int
			for k, r := range h.Items {
				if r.Seq != int64(k+1) {
					t.Errorf("%s: history seqs %v are not gap-free", id, h.Items)
				}
				started += map[bool]int{true: 1}[r.Event == "start"]
				suspended += map[bool]int{true: 1}[r.Event == "suspend" && r.RequestID == sid]
			}
			switch {
			case code == 200 && (inst["state"] != "running" || started != 1):
				t.Errorf("%s: started (200), then %v, %d start rows", id, inst, started)
			case code == 409 && inst["final"] != true && (inst["suspended"] != true || started != 0):
				t.Errorf("%s: refused (409), then %v", id, inst)
			case code != 200 && code != 409:
				t.Errorf("%s: start answered %d", id, code)
			case suspended > 1 || (inst["suspended"] == true) != (suspended == 1):
				t.Errorf("%s: %d suspension rows of the bulk, suspended %v", id, suspended, inst["suspended"])
			}
		}
	})
}

// TestBulkKilled: a bulk whose fsmd process is killed (kill -9) mid-run is taken up by the next
// process from its last batch recorded: when it is done, every matching instance got the event
// exactly once (one row of the bulk each, none skipped), and the outcomes are the plan's.
// PostgreSQL and Citus, two fsmd processes one after the other.
func TestBulkKilled(t *testing.T) {
	for _, d := range []string{"postgres", "citus"} {
		t.Run(d, func(t *testing.T) { testBulkKilled(t, dbtest.Databases[d](t)) })
	}
}

func testBulkKilled(t *testing.T, dbURL string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(bulkJob), 0o644); err != nil {
		t.Fatal(err)
	}
	first := startFsmd(t, dbURL, dir, "--timer-poll", "50ms", "--log-level", "warn")
	db, err := persistence.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bulkSeed(t, db, 6000)
	post := func(base, path, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %v %v", path, resp.StatusCode, out, err)
		}
		return out
	}
	get := func(base, path string) map[string]any {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	body := `{"filter": {}, "event": "cancel", "payload": {"reason": "killed mid-run"}}`
	plan := post(first.base, "/v1/definitions/job/bulk/plan", body)
	id := post(first.base, "/v1/definitions/job/bulk", body)["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b := get(first.base, "/v1/bulk/"+id)
		if applied, _ := b["applied"].(float64); applied > 0 || b["status"] != "running" {
			if b["status"] != "running" {
				t.Fatalf("the bulk ended before it could be killed: %v", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bulk made no progress in 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.kill()
	second := startFsmd(t, dbURL, dir, "--timer-poll", "50ms", "--log-level", "warn")
	var done map[string]any
	for {
		done = get(second.base, "/v1/bulk/"+id)
		if done["status"] != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bulk is not done after the restart: %v", done)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if done["status"] != "done" || asJSON(done["outcomes"]) != asJSON(plan["outcomes"]) || done["total"] != plan["total"] {
		t.Fatalf("after the restart:\n%v\nthe plan:\n%v", done, plan)
	}
	var rows, distinct, matched int
	if err := db.X.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT instance_id) FROM transitions WHERE request_id = $1`, id).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := db.X.QueryRow(`SELECT COUNT(*) FROM instances WHERE state = 'cancelled'`).Scan(&matched); err != nil {
		t.Fatal(err)
	}
	if rows != distinct || float64(rows) != done["applied"] || matched != rows {
		t.Errorf("%d rows of the bulk on %d instances, %d cancelled, applied %v: each instance must have one", rows, distinct, matched, done["applied"])
	}
}
