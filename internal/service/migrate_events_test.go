package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// tallyV1 and tallyV2 count bumps. Version 2 keeps state a as it is (moved in SQL on PostgreSQL)
// and splits b by the count at the moment of the migration (decided in Go).
const (
	tallyV1 = `name: tally
initial: a
context:
  n: int
states:
  a: {on: {bump: {to: a, set: {n: ctx.n + 1}}, move: b}}
  b: {on: {bump: {to: b, set: {n: ctx.n + 1}}}}
`
	tallyV2 = `name: tally
initial: a
context:
  n: int
migrate:
  policy: manual
  states:
    b:
      - to: b
        guard: ctx.n % 2 == 0
      - to: b_odd
states:
  a: {on: {bump: {to: a, set: {n: ctx.n + 1}}, move: b}}
  b: {on: {bump: {to: b, set: {n: ctx.n + 1}}}}
  b_odd: {on: {bump: {to: b_odd, set: {n: ctx.n + 1}}}}
`
)

// TestMigrationWithEvents: events sent while a migration runs, in small batches, are serialized
// with it: none is lost or applied twice, each instance's history is gap-free with one migration
// row, and the migration row's context is the count the events before it left.
func TestMigrationWithEvents(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := service.New(db, service.Options{MigrationBatch: 5})
		t.Cleanup(svc.Close)
		if _, err := svc.PutDefinition(ctx, "tally", []byte(tallyV1)); err != nil {
			t.Fatal(err)
		}
		const n = 120
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("t%03d", i)
			if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "tally", ID: ids[i]}); err != nil {
				t.Fatal(err)
			}
			if i%2 == 1 {
				send(t, svc, ids[i], "move")
			}
		}
		if _, err := svc.PutDefinition(ctx, "tally", []byte(tallyV2)); err != nil {
			t.Fatal(err)
		}

		acked := make([]atomic.Int64, n)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var sent atomic.Int64
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					k := rand.IntN(n)
					if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: ids[k], Event: "bump", RequestID: "r"}); err != nil {
						t.Errorf("bump %s: %v", ids[k], err)
						return
					}
					acked[k].Add(1)
					sent.Add(1)
				}
			})
		}
		for sent.Load() < 20 { // the events are flowing before the migration starts
			time.Sleep(time.Millisecond)
		}
		st, err := svc.StartMigration(ctx, "tally", service.MigrationRequest{})
		if err != nil {
			t.Fatal(err)
		}
		st = waitMigration(t, svc, st.ID)
		during := sent.Load()
		close(stop)
		wg.Wait()
		if st.Status != "done" || st.Migrated != n {
			t.Fatalf("migration: %+v, want done with %d migrated", st, n)
		}
		t.Logf("%d events in all, %d before the migration was done", sent.Load(), during)

		for k, id := range ids {
			inst, err := svc.GetInstance(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			h, err := svc.History(ctx, id, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			bumps, migrations := int64(0), 0
			for i, e := range h.Items[k%2:] {
				if e.Seq != int64(i+1+k%2) { // the odd ones moved to b first
					t.Fatalf("%s: history seq %d at %d: not gap-free", id, e.Seq, i)
				}
				switch e.Source {
				case "api":
					bumps++
				case "migration":
					migrations++
					if got := e.ContextBefore["n"]; fmt.Sprint(got) != fmt.Sprint(bumps) {
						t.Errorf("%s: the migration row's context n = %v, after %d bumps", id, got, bumps)
					}
				}
			}
			if want := acked[k].Load(); bumps != want || fmt.Sprint(inst.Context["n"]) != fmt.Sprint(want) ||
				migrations != 1 || inst.Version != 2 || inst.Revision != want+1+int64(k%2) {
				t.Errorf("%s: %d bumps in the history, n = %v, %d migration rows, version %d, revision %d; want %d acknowledged bumps, one migration, version 2",
					id, bumps, inst.Context["n"], migrations, inst.Version, inst.Revision, want)
			}
		}
	})
}
