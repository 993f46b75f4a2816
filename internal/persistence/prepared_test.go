package persistence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestPreparedStatements checks that on PostgreSQL the event path runs prepared statements, each
// prepared once per connection, and that a connection the server dropped is replaced and prepared
// again.
func TestPreparedStatements(t *testing.T) {
	t.Parallel()
	u := dbtest.PostgresDatabaseURL(t)
	ctx := context.Background()
	db, err := persistence.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.X.SetMaxOpenConns(1) // every transaction on the one connection
	seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, []persistence.InstanceRow{instance("a", "order", 1, "created")})

	// event runs the work of one event and returns how many statements its session has prepared.
	event := func() (int, error) {
		var n int
		err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			cur, err := persistence.InstanceGetForUpdate(ctx, tx, "a")
			if err != nil {
				return err
			}
			seq := cur.Revision + 1
			if err := persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{ID: "a", ExpectRevision: cur.Revision,
				Version: 1, State: "created", Context: cur.Context, Revision: seq, UpdatedAt: now(), EnteredAt: now()}); err != nil {
				return err
			}
			if err := persistence.TransitionInsert(ctx, tx, persistence.TransitionRow{InstanceID: "a", Seq: seq, Event: "e",
				From: "created", To: "created", Source: "api", RequestID: "r", DefinitionVersion: 1, At: now()}); err != nil {
				return err
			}
			return tx.X.GetContext(ctx, &n, "SELECT count(*) FROM pg_prepared_statements")
		})
		return n, err
	}
	first, err := event()
	if err != nil {
		t.Fatal(err)
	}
	if first < 3 {
		t.Fatalf("%d statements prepared on the connection after an event, want at least 3", first)
	}
	second, err := event()
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("%d statements prepared after the second event, %d after the first: want them reused", second, first)
	}

	// The server drops the connection: the next transaction may fail (unavailable), the one after
	// runs on a new connection, which prepares the statements again.
	admin, err := persistence.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.X.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if _, err := event(); err != nil && !errors.Is(err, persistence.ErrUnavailable) {
		t.Fatalf("the first event after the connection was dropped: %v, want nil or ErrUnavailable", err)
	}
	again, err := event()
	if err != nil {
		t.Fatalf("an event on a new connection: %v", err)
	}
	if again < 3 {
		t.Errorf("%d statements prepared on the new connection, want at least 3", again)
	}
}
