package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// children makes n child rows of parent's group g at rev, child i final when final(i).
func children(parent, g string, rev int64, n int, final func(int) bool) ([]persistence.InstanceRow, [][]persistence.Arm) {
	rows := make([]persistence.InstanceRow, n)
	arms := make([][]persistence.Arm, n)
	for i := range n {
		r := instance(fmt.Sprintf("%s.%s.%d.%d", parent, g, rev, i), "order", 1, "created")
		r.CreateHash, r.Final = "", final(i)
		r.ParentID, r.ParentGroup, r.ParentRev, r.ParentIndex, r.OnFinal, r.Depth = parent, g, rev, i, "done", 1
		rows[i] = r
		if i%2 == 0 {
			arms[i] = []persistence.Arm{{Event: "expire", DueAt: now().Add(time.Hour)}}
		}
	}
	return rows, arms
}

// TestChildrenInsert: children are inserted with their parent fields and timers; their counts and
// the ids of the running ones are per (parent, group, entry); an id taken fails the whole insert.
func TestChildrenInsert(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, []persistence.InstanceRow{instance("p", "order", 1, "created")})
		rows, arms := children("p", "legs", 1, 5, func(i int) bool { return i == 3 })
		older, olderArms := children("p", "legs", 0, 2, func(int) bool { return false })
		mustTx(t, db, func(tx *persistence.Tx) error {
			if err := persistence.ChildrenInsert(ctx, tx, older, olderArms); err != nil {
				return err
			}
			return persistence.ChildrenInsert(ctx, tx, rows, arms)
		})
		got, err := persistence.InstanceGet(ctx, db, "p.legs.1.4")
		if err != nil {
			t.Fatal(err)
		}
		equalInstance(t, got, rows[4])
		timers, err := persistence.TimersOf(ctx, db, "p.legs.1.4")
		if err != nil || len(timers) != 1 || timers[0].Event != "expire" {
			t.Fatalf("timers of child 4: %+v %v", timers, err)
		}
		g := persistence.ChildGroup{Parent: "p", Group: "legs", Rev: 1}
		total, final, err := persistence.ChildCounts(ctx, db, g)
		if err != nil || total != 5 || final != 1 {
			t.Fatalf("counts: %d %d %v, want 5 1", total, final, err)
		}
		ids, err := persistence.ChildRunningIDs(ctx, db, g)
		if want := []string{"p.legs.1.0", "p.legs.1.1", "p.legs.1.2", "p.legs.1.4"}; err != nil || !slices.Equal(ids, want) {
			t.Fatalf("running ids: %v %v, want %v", ids, err, want)
		}
		list, err := persistence.InstanceList(ctx, db, persistence.InstanceListParams{Parent: "p"})
		if err != nil || len(list) != 7 {
			t.Fatalf("children of p: %d %v, want 7", len(list), err)
		}
		// An id taken: nothing of the insert is kept.
		again, againArms := children("p", "legs", 2, 3, func(int) bool { return false })
		again[2].ID = "p.legs.1.0"
		err = db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.ChildrenInsert(ctx, tx, again, againArms) })
		if !errors.Is(err, persistence.ErrConflict) {
			t.Fatalf("insert over a taken id: %v, want ErrConflict", err)
		}
		if _, err := persistence.InstanceGet(ctx, db, "p.legs.2.0"); !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("a child of the failed insert was kept: %v", err)
		}
	})
}
