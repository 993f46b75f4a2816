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

// TestCitusEventPathRouted: on Citus every statement of an event (the instance's read, then its
// update, audit row, timers, webhook deliveries and messages in one transaction) is a router query:
// EXPLAIN shows one task, run on the worker holding the instance, never one per shard. The
// statements are those the store functions ran for a real event, with their arguments.
func TestCitusEventPathRouted(t *testing.T) {
	t.Parallel()
	db := dbtest.Citus(t)
	ctx := context.Background()
	seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, []persistence.InstanceRow{instance("a", "counter", 1, "on")})

	var mu sync.Mutex
	type statement struct {
		query string
		args  []any
	}
	var ran []statement
	persistence.SetStatementObserver(db, func(query string, args []any) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, statement{query, args})
	})
	if _, err := persistence.InstanceGet(ctx, db, "a"); err != nil {
		t.Fatal(err)
	}
	u := persistence.InstanceUpdateParams{ID: "a", ExpectRevision: 0, Version: 1, State: "on", Context: []byte(`{"n":1}`),
		Revision: 1, UpdatedAt: now(), EnteredAt: now(),
		Timers: &persistence.TimerChange{Cancel: true, Arms: []persistence.Arm{{Event: "tick", DueAt: now()}}},
		Outbox: []persistence.OutboxRow{{ID: "d1", InstanceID: "a", Seq: 1, Definition: "counter", Version: 1, Webhook: "w",
			URL: "http://127.0.0.1:1/w", Destination: "http://127.0.0.1:1", Body: []byte(`{}`), Status: persistence.OutboxPending,
			NextTryAt: now(), CreatedAt: now()}},
		Messages: []persistence.MessageRow{{ID: "m1", Sender: "a", SenderSeq: 1, Target: "b", Event: "go", Payload: []byte(`{}`),
			CreatedAt: now()}}}
	r := persistence.TransitionRow{InstanceID: "a", Seq: 1, Event: "inc", From: "on", To: "on", Source: "api", RequestID: "r",
		IdempotencyKey: "k1", DefinitionVersion: 1, At: now()}
	if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
		t.Fatal(err)
	}
	persistence.SetStatementObserver(db, nil)

	// Each kind of write is there: the event path has not moved elsewhere unseen.
	var all strings.Builder
	for _, st := range ran {
		all.WriteString(st.query)
	}
	for _, want := range []string{"FROM instances WHERE id", "UPDATE instances", "INSERT INTO transitions", "timers",
		"INSERT INTO outbox", "INSERT INTO messages"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no statement of the event has %q", want)
		}
	}
	for _, st := range ran {
		rows, err := db.X.QueryContext(ctx, "EXPLAIN "+persistence.SQL(db.Dialect, st.query), st.args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", st.query, err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&plan, line)
		}
		rows.Close()
		if !strings.Contains(plan.String(), "Task Count: 1\n") {
			t.Errorf("not a router query (one task):\n%s\n%s", strings.TrimSpace(st.query), plan.String())
		}
	}
	if len(ran) < 6 {
		t.Errorf("%d statements ran, want the read and at least five writes", len(ran))
	}
}
