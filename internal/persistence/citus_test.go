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

	var mu sync.Mutex
	var ran []statement
	persistence.SetStatementObserver(db, func(query string, args []any) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, statement{query, args})
	})
	if _, err := persistence.InstanceGet(ctx, db, "a"); err != nil {
		t.Fatal(err)
	}
	u, r := citusEvent(1)
	if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
		t.Fatal(err)
	}
	if len(ran) != 2 || !strings.Contains(ran[1].query, "fsmd_advance_") {
		t.Errorf("on its own, an event ran %d statements, want the read and the function's call: %v", len(ran), ran)
	}
	alone := len(ran)
	u, r = citusEvent(2)
	if err := db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceAdvance(ctx, tx, u, r) }); err != nil {
		t.Fatal(err)
	}
	persistence.SetStatementObserver(db, nil)

	// Each kind of write is there: the event path has not moved elsewhere unseen.
	var all strings.Builder
	for _, st := range ran[alone:] {
		all.WriteString(st.query)
	}
	for _, want := range []string{"UPDATE instances", "INSERT INTO transitions", "timers", "INSERT INTO outbox", "INSERT INTO messages"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no statement of the event in a transaction has %q", want)
		}
	}
	for _, st := range ran {
		if plan := explain(t, db, st); !strings.Contains(plan, "Task Count: 1\n") {
			t.Errorf("not a router query (one task):\n%s\n%s", strings.TrimSpace(st.query), plan)
		}
	}
}

type statement struct {
	query string
	args  []any
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
