package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// keyAdvance is the event that gives instance id the context ctxJSON at revision rev (and makes
// it final when final is set). definition is what the caller knows of the instance's definition:
// "" for a process that has not loaded it (on Citus, the event's function must then find the keys).
func keyAdvance(id, definition string, rev int64, ctxJSON string, final bool) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
	return persistence.InstanceUpdateParams{ID: id, Definition: definition, ExpectRevision: rev - 1, Version: 1, State: "open",
			Context: []byte(ctxJSON), Revision: rev, Final: final, UpdatedAt: now(), EnteredAt: now()},
		persistence.TransitionRow{InstanceID: id, Seq: rev, Event: "set", From: "open", To: "open", Source: "api",
			RequestID: fmt.Sprint("r-", id, rev), DefinitionVersion: 1, At: now()}
}

// TestKeysEveryWrite: a key holds through each way fsmd writes an instance, on each database (on
// Citus, where it is no index but rows that every write keeps: keys_citus.go): a key made over
// running instances that hold values already; an event on its own, from a process that knows the
// definition's keys and from one that does not; a batch; a migration's batch; a termination that
// frees the key; and
// values that are one key though written differently (1.50 and 1.5, one instant at two offsets).
func TestKeysEveryWrite(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("shop", 1), definition("shop", 2)}, []persistence.InstanceRow{
			shopInstance("before", `{"number":"P-1"}`), shopInstance("x", `{"number":""}`), shopInstance("y", `{}`)})
		ix := persistence.CtxIndexes{Definition: "shop", Keys: []persistence.CtxField{fNumber, fQty, fPaidAt}}
		for range 2 { // the second time finds them made
			if err := persistence.CtxIndexesEnsure(ctx, db, ix); err != nil {
				t.Fatalf("CtxIndexesEnsure: %v", err)
			}
		}
		numberIndex := persistence.KeyIndexName("shop", fNumber)
		wantTaken := func(t *testing.T, what string, err error, index string) {
			t.Helper()
			if !errors.Is(err, persistence.ErrKeyExists) || persistence.KeyIndex(err) != index {
				t.Fatalf("%s: %v, want ErrKeyExists of %s", what, err, index)
			}
		}
		insert := func(r persistence.InstanceRow) error {
			return db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceInsert(ctx, tx, r) })
		}
		wantTaken(t, "a new instance with the key a running one held before the key was made",
			insert(shopInstance("dup", `{"number":"P-1"}`)), numberIndex)

		for _, definition := range []string{"shop", ""} {
			u, r := keyAdvance("x", definition, 1, `{"number":"P-1"}`, false)
			wantTaken(t, fmt.Sprintf("an event taking P-1 (definition %q)", definition), persistence.InstanceAdvance(ctx, db, u, r), numberIndex)
		}
		u, r := keyAdvance("x", "", 1, `{"number":"X-1"}`, false)
		if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
			t.Fatalf("an event taking X-1: %v", err)
		}
		if id, err := persistence.InstanceFindByKey(ctx, db, "shop", fNumber, "X-1"); err != nil || id != "x" {
			t.Fatalf("FindByKey X-1: %q, %v; want x", id, err)
		}
		// An event that keeps the keys (on Citus, the event's function writes it).
		u, r = keyAdvance("x", "", 2, `{"number":"X-1","note":"kept"}`, false)
		if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
			t.Fatalf("an event keeping X-1: %v", err)
		}
		// The instance's final event frees X-1, which another takes in a batch.
		u, r = keyAdvance("x", "shop", 3, `{"number":"X-1"}`, true)
		if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
			t.Fatalf("x's final event: %v", err)
		}
		if _, err := persistence.InstanceFindByKey(ctx, db, "shop", fNumber, "X-1"); !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("FindByKey X-1 once x is final: %v, want ErrNotFound", err)
		}
		batch := func(ctxJSON string) error {
			u, r := keyAdvance("y", "shop", 1, ctxJSON, false)
			return db.WithTx(ctx, func(tx *persistence.Tx) error {
				return persistence.AdvanceBatch(ctx, tx, []persistence.Advance{{Update: u, Row: r}})
			})
		}
		wantTaken(t, "a batch taking P-1", batch(`{"number":"P-1"}`), numberIndex)
		if err := batch(`{"number":"X-1","qty":1.50,"paid_at":"2026-12-07T10:00:00Z"}`); err != nil {
			t.Fatalf("a batch taking X-1: %v", err)
		}
		// One value written differently is one key.
		wantTaken(t, "qty 1.5 as y has 1.50", insert(shopInstance("q", `{"qty":1.5}`)), persistence.KeyIndexName("shop", fQty))
		wantTaken(t, "y's paid_at at +01:00", insert(shopInstance("p", `{"paid_at":"2026-12-07T11:00:00.000+01:00"}`)),
			persistence.KeyIndexName("shop", fPaidAt))
		if err := insert(shopInstance("q", `{"qty":2,"paid_at":"2026-12-07T10:00:00.000001Z"}`)); err != nil {
			t.Fatalf("other values: %v", err)
		}
		if id, err := persistence.InstanceFindByKey(ctx, db, "shop", fPaidAt, mustTime("2026-12-07T11:00:00+01:00")); err != nil || id != "y" {
			t.Fatalf("FindByKey paid_at: %q, %v; want y", id, err)
		}
		// A migration's batch whose mapping gives q the qty y holds, then one that gives it another.
		move := func(after string) error {
			q, err := persistence.InstanceGet(ctx, db, "q")
			if err != nil {
				return err
			}
			return db.WithTx(ctx, func(tx *persistence.Tx) error {
				return persistence.InstanceMoveRows(ctx, tx, persistence.MigrationBatch{FromVersion: 1, ToVersion: 2, MigrationID: "m",
					Event: "migrate", At: now()}, []persistence.MovedInstance{{ID: "q", Revision: q.Revision, FromState: "open",
					ToState: "open", Before: q.Context, After: []byte(after), EnteredAt: now()}})
			})
		}
		wantTaken(t, "a migration giving q qty 1.5", move(`{"qty":1.5}`), persistence.KeyIndexName("shop", fQty))
		if err := move(`{"qty":3}`); err != nil {
			t.Fatalf("a migration giving q qty 3: %v", err)
		}
		if id, err := persistence.InstanceFindByKey(ctx, db, "shop", fQty, 3); err != nil || id != "q" {
			t.Fatalf("FindByKey qty 3 after the migration: %q, %v; want q", id, err)
		}
		// Terminated, "before" frees P-1.
		mustTx(t, db, func(tx *persistence.Tx) error {
			return persistence.InstanceSetFlags(ctx, tx, persistence.AdminUpdate{ID: "before", ExpectRevision: 0, Revision: 1,
				UpdatedAt: now(), Terminated: true, Final: true},
				persistence.TransitionRow{InstanceID: "before", Seq: 1, Event: "terminate", From: "open", To: "open", Source: "admin",
					RequestID: "r-t", DefinitionVersion: 1, At: now()})
		})
		if err := insert(shopInstance("after", `{"number":"P-1"}`)); err != nil {
			t.Fatalf("P-1 once its holder is terminated: %v", err)
		}
	})
}

// TestKeysConcurrent: instances racing for one key value, by creations and by events at once:
// exactly one of each race holds it, every other is refused with ErrKeyExists, and nothing else
// (on Citus the uniqueness is the primary key of instance_keys, on the worker of the value, which
// the racing transactions reach from the workers of their instances).
func TestKeysConcurrent(t *testing.T) {
	t.Parallel()
	const racers = 8
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("shop", 1)}, nil)
		if err := persistence.CtxIndexesEnsure(ctx, db, persistence.CtxIndexes{Definition: "shop", Keys: []persistence.CtxField{fNumber}}); err != nil {
			t.Fatal(err)
		}
		race := func(what string, write func(i int) error) {
			t.Helper()
			errs := make(chan error, racers)
			for i := range racers {
				go func() { errs <- write(i) }()
			}
			won := 0
			for range racers {
				switch err := <-errs; {
				case err == nil:
					won++
				case !errors.Is(err, persistence.ErrKeyExists):
					t.Errorf("%s: %v, want nil or ErrKeyExists", what, err)
				}
			}
			if won != 1 {
				t.Errorf("%s: %d took the key, want 1", what, won)
			}
		}
		race("creations with K-1", func(i int) error {
			return db.WithTx(ctx, func(tx *persistence.Tx) error {
				return persistence.InstanceInsert(ctx, tx, shopInstance(fmt.Sprint("c", i), `{"number":"K-1"}`))
			})
		})
		seed(t, db, nil, func() []persistence.InstanceRow {
			var rows []persistence.InstanceRow
			for i := range racers {
				rows = append(rows, shopInstance(fmt.Sprint("e", i), `{"number":""}`))
			}
			return rows
		}())
		race("events taking K-2", func(i int) error {
			u, r := keyAdvance(fmt.Sprint("e", i), "shop", 1, `{"number":"K-2"}`, false)
			return persistence.InstanceAdvance(ctx, db, u, r)
		})
		if id, err := persistence.InstanceFindByKey(ctx, db, "shop", fNumber, "K-2"); err != nil {
			t.Errorf("FindByKey K-2: %q, %v", id, err)
		}
	})
}
