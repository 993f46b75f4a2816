package persistence_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestCitusEventPathRouted: on Citus every statement of an event is a router query: EXPLAIN shows
// one task, run on the worker holding the instance, never one per shard. That is the instance's
// read, then its write: on its own one call of the function distributed with the instances, in a
// caller's transaction its statements (the update, audit row, timers, webhook deliveries and
// messages). The statements are those the store functions ran for real events, with their
// arguments.
func TestCitusEventPathRouted(t *testing.T) {
	t.Parallel()
	db := dbtest.Citus(t)
	ctx := context.Background()
	seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, []persistence.InstanceRow{instance("a", "counter", 1, "on")})

	ran := record(db)
	if _, err := persistence.InstanceGet(ctx, db, "a"); err != nil {
		t.Fatal(err)
	}
	u, r := citusEvent(1)
	if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
		t.Fatal(err)
	}
	if n := len(*ran); n != 2 || !strings.Contains((*ran)[1].query, "fsmd_advance_") {
		t.Errorf("on its own, an event ran %d statements, want the read and the function's call: %v", n, *ran)
	}
	alone := len(*ran)
	u, r = citusEvent(2)
	if err := db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceAdvance(ctx, tx, u, r) }); err != nil {
		t.Fatal(err)
	}
	persistence.SetStatementObserver(db, nil)

	// Each kind of write is there: the event path has not moved elsewhere unseen.
	var all strings.Builder
	for _, st := range (*ran)[alone:] {
		all.WriteString(st.query)
	}
	for _, want := range []string{"UPDATE instances", "INSERT INTO transitions", "timers", "INSERT INTO outbox", "INSERT INTO messages"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no statement of the event in a transaction has %q", want)
		}
	}
	for _, st := range *ran {
		if plan := explain(t, db, st); !strings.Contains(plan, "Task Count: 1\n") {
			t.Errorf("not a router query (one task):\n%s\n%s", strings.TrimSpace(st.query), plan)
		}
	}
}

type statement struct {
	query string
	args  []any
}

// record has the statements the store functions run on db appended to the slice it returns, until
// SetStatementObserver(db, nil). Read it once they have returned.
func record(db *persistence.DB) *[]statement {
	var mu sync.Mutex
	ran := new([]statement)
	persistence.SetStatementObserver(db, func(query string, args []any) {
		mu.Lock()
		defer mu.Unlock()
		*ran = append(*ran, statement{query, args})
	})
	return ran
}

// citusEvent is instance a's event to revision rev, with a timer, a webhook delivery and a message.
func citusEvent(rev int64) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
	id := fmt.Sprint(rev)
	u := persistence.InstanceUpdateParams{ID: "a", ExpectRevision: rev - 1, Version: 1, State: "on",
		Context: fmt.Appendf(nil, `{"n":%d}`, rev), Revision: rev, UpdatedAt: now(), EnteredAt: now(),
		Timers: &persistence.TimerChange{Cancel: true, Arms: []persistence.Arm{{Event: "tick", DueAt: now()}}},
		Outbox: []persistence.OutboxRow{{ID: "d" + id, InstanceID: "a", Seq: rev, Definition: "counter", Version: 1, Webhook: "w",
			URL: "http://127.0.0.1:1/w", Destination: "http://127.0.0.1:1", Body: []byte(`{}`), Status: persistence.OutboxPending,
			NextTryAt: now(), CreatedAt: now()}},
		Messages: []persistence.MessageRow{{ID: "m" + id, Sender: "a", SenderSeq: rev, Target: "b", Event: "go", Payload: []byte(`{}`),
			CreatedAt: now()}}}
	r := persistence.TransitionRow{InstanceID: "a", Seq: rev, Event: "inc", From: "on", To: "on", Source: "api", RequestID: "r" + id,
		IdempotencyKey: "k" + id, DefinitionVersion: 1, At: now()}
	return u, r
}

// explain is the plan of a statement, a line each.
func explain(t *testing.T, db *persistence.DB, st statement) string {
	t.Helper()
	rows, err := db.X.QueryContext(context.Background(), "EXPLAIN "+persistence.SQL(db.Dialect, st.query), st.args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", st.query, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan.String()
}

// TestCitusKeyedEventRouted: on Citus an event that takes a key (an instance of a definition with
// keys: a transaction, keys_citus.go) runs router queries only: the instance's update and its keys'
// read on the instance's worker, the key's row on the worker of its value.
func TestCitusKeyedEventRouted(t *testing.T) {
	t.Parallel()
	db := dbtest.Citus(t)
	ctx := context.Background()
	seed(t, db, []persistence.DefinitionRow{definition("shop", 1)}, []persistence.InstanceRow{shopInstance("k", `{"number":""}`)})
	if err := persistence.CtxIndexesEnsure(ctx, db, persistence.CtxIndexes{Definition: "shop", Keys: []persistence.CtxField{fNumber}}); err != nil {
		t.Fatal(err)
	}
	ran := record(db)
	for rev, number := range []string{"K-1", "K-2"} { // takes K-1; frees it and takes K-2
		u, r := keyAdvance("k", "shop", int64(rev+1), `{"number":"`+number+`"}`, false)
		if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
			t.Fatal(err)
		}
	}
	persistence.SetStatementObserver(db, nil)
	var all strings.Builder
	for _, st := range *ran {
		all.WriteString(st.query)
		if plan := explain(t, db, st); !strings.Contains(plan, "Task Count: 1\n") {
			t.Errorf("not a router query (one task):\n%s\n%s", strings.TrimSpace(st.query), plan)
		}
	}
	for _, want := range []string{"fsmd_key_value", "INSERT INTO instance_keys", "DELETE FROM instance_keys", "UPDATE instances SET keys"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no statement of the keyed events has %q", want)
		}
	}
}

// TestCitusEventFunctionDistributedAtStart: a start that finds the event's function made but not
// distributed (a start stopped between the two) makes it again and distributes it: otherwise the
// coordinator would run every event's write itself.
func TestCitusEventFunctionDistributedAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := dbtest.CitusDatabaseURL(t)
	db := start(t, u)
	var args string
	if err := db.X.GetContext(ctx, &args, `SELECT pg_get_function_arguments(to_regproc('fsmd_advance_2'))`); err != nil {
		t.Fatal(err)
	}
	db.X.MustExec(`DROP FUNCTION fsmd_advance_2`)
	db.X.MustExec(`CREATE FUNCTION fsmd_advance_2(` + args + `) RETURNS integer LANGUAGE sql AS 'SELECT 0'`)
	distributed := func(db *persistence.DB) bool {
		var ok bool
		if err := db.X.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM pg_dist_object WHERE objid = to_regproc('fsmd_advance_2')::oid
			AND distribution_argument_index IS NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if distributed(db) {
		t.Fatal("the function made again is distributed already: the test does not make the half-done start")
	}
	again := start(t, u)
	if !distributed(again) {
		t.Fatal("the next start left the event's function undistributed")
	}
	seed(t, again, []persistence.DefinitionRow{definition("counter", 1)}, []persistence.InstanceRow{instance("a", "counter", 1, "on")})
	u1, r1 := citusEvent(1)
	if err := persistence.InstanceAdvance(ctx, again, u1, r1); err != nil {
		t.Fatalf("an event through the function made again: %v", err)
	}
}

// TestCitusEventFunctionPlanMode: the event's function plans its statements for each call
// (plan_cache_mode force_custom_plan, against the Citus bug advanceFunctionDDL tells of) on every
// node; one made without it (by an earlier fsmd) gets it at the next start, on the workers too.
func TestCitusEventFunctionPlanMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := dbtest.CitusDatabaseURL(t)
	db := start(t, u)
	// The function's settings on the coordinator and on each worker, one line per node.
	settings := func() []string {
		var schema string
		if err := db.X.GetContext(ctx, &schema, `SELECT current_schema()`); err != nil {
			t.Fatal(err)
		}
		query := fmt.Sprintf(`SELECT coalesce(array_to_string(proconfig, ' '), '') FROM pg_proc WHERE oid = '%s.fsmd_advance_2'::regproc`, schema)
		var here string
		if err := db.X.GetContext(ctx, &here, query); err != nil {
			t.Fatal(err)
		}
		out := []string{"coordinator: " + here}
		rows, err := db.X.QueryxContext(ctx, `SELECT nodeport, success, result FROM run_command_on_workers($1) ORDER BY nodeport`, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var port int
			var ok bool
			var result string
			if err := rows.Scan(&port, &ok, &result); err != nil || !ok {
				t.Fatalf("worker %d: %v %s", port, err, result)
			}
			out = append(out, fmt.Sprintf("worker %d: %s", port, result))
		}
		return out
	}
	check := func(when string) {
		t.Helper()
		nodes := settings()
		for _, n := range nodes {
			if !strings.Contains(n, "plan_cache_mode=force_custom_plan") {
				t.Errorf("%s, the function's settings: %s", when, n)
			}
		}
		if len(nodes) < 3 {
			t.Errorf("%s: %d nodes, want the coordinator and two workers", when, len(nodes))
		}
	}
	check("made")

	db.X.MustExecContext(ctx, `ALTER FUNCTION fsmd_advance_2 RESET plan_cache_mode`)
	for _, n := range settings() {
		if strings.Contains(n, "plan_cache_mode") {
			t.Fatalf("the setting taken back is still there (%s): the test does not make an earlier fsmd's function", n)
		}
	}
	start(t, u)
	check("after the next start")
}

// start is fsmd's start on the database at u: it opens it (migrating and distributing its
// schema), until the test ends.
func start(t *testing.T, u string) *persistence.DB {
	t.Helper()
	db, err := persistence.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
