package persistence_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestWorklist: the work list of a set of names holds the running instances whose assignees name
// one of them, by due date (those without one last), then id, and pages without a gap or a
// repeat through ties and the instances without a date; an update that enters a state replaces
// the task, one that does not keeps it; the overdue counts and the list filters agree.
func TestWorklist(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		day := func(n int) time.Time { return now().Add(time.Duration(n) * 24 * time.Hour) }
		task := func(r persistence.InstanceRow, due time.Time, who ...string) persistence.InstanceRow {
			r.Task = persistence.Task{Assignees: who, DueAt: due}
			return r
		}
		finished := instance("z-final", "order", 1, "done")
		finished.Final = true
		insts := []persistence.InstanceRow{
			task(instance("a", "order", 1, "review"), day(3), "ann"),
			task(instance("b", "order", 1, "review"), day(1), "group:ops", "bo"),
			task(instance("c", "order", 1, "review"), day(1), "group:ops"),
			task(instance("d", "order", 1, "review"), time.Time{}, "ann"),
			task(instance("e", "order", 1, "review"), time.Time{}, "group:ops"),
			task(instance("f", "order", 1, "review"), day(2), "cy"), // someone else's
			instance("g", "order", 1, "review"),                     // nobody's
			task(finished, time.Time{}, "ann"),                      // over
		}
		seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, insts)
		all := func(names []string, anyone bool, limit int) []string {
			t.Helper()
			var got []string
			var after persistence.WorklistCursor
			for range 20 {
				rows, err := persistence.Worklist(ctx, db, persistence.WorklistParams{Names: names, Anyone: anyone, After: after, Limit: limit})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(rows)...)
				if len(rows) < limit {
					return got
				}
				last := rows[len(rows)-1]
				after = persistence.WorklistCursor{DueAt: last.DueAt, ID: last.ID}
			}
			t.Fatal("the work list does not end")
			return nil
		}
		for _, limit := range []int{1, 2, 100} {
			if got := strings.Join(all([]string{"ann", "group:ops"}, false, limit), " "); got != "b c a d e" {
				t.Errorf("the work list of ann in ops, by %d: %q, want b c a d e", limit, got)
			}
		}
		if got := strings.Join(all(nil, true, 3), " "); got != "b c f a d e" {
			t.Errorf("the work list of anyone: %q", got)
		}
		if got := all([]string{"nobody"}, false, 10); len(got) != 0 {
			t.Errorf("the work list of nobody: %v", got)
		}
		got, err := persistence.InstanceGet(ctx, db, "b")
		if err != nil || !slices.Equal(got.Assignees, []string{"group:ops", "bo"}) || !got.DueAt.Equal(day(1)) {
			t.Fatalf("b as read: %+v %v", got.Task, err)
		}
		counts, err := persistence.InstanceCountOverdue(ctx, db, "", day(2).Add(time.Second))
		if err != nil || len(counts) != 1 || counts[0].State != "review" || counts[0].N != 3 {
			t.Fatalf("overdue two days and a second later: %+v %v, want review=3 (b, c, f)", counts, err)
		}
		list, err := persistence.InstanceList(ctx, db, persistence.InstanceListParams{Assignee: "group:ops", OverdueAt: day(2)})
		if err != nil || strings.Join(ids(list), " ") != "b c" {
			t.Fatalf("?assignee=group:ops&overdue at day 2: %v %v", ids(list), err)
		}
		// An update without a task keeps it; with one, replaces it (an empty one clears it).
		update := func(rev int64, tk *persistence.Task) {
			t.Helper()
			mustTx(t, db, func(tx *persistence.Tx) error {
				return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{ID: "a", ExpectRevision: rev, Version: 1,
					State: "review", Context: []byte(`{}`), Revision: rev + 1, UpdatedAt: now(), EnteredAt: now(), Task: tk})
			})
		}
		update(0, nil)
		if got, _ := persistence.InstanceGet(ctx, db, "a"); !slices.Equal(got.Assignees, []string{"ann"}) || !got.DueAt.Equal(day(3)) {
			t.Errorf("a stay's update changed the task: %+v", got.Task)
		}
		update(1, &persistence.Task{Assignees: []string{"cy"}})
		if got, _ := persistence.InstanceGet(ctx, db, "a"); !slices.Equal(got.Assignees, []string{"cy"}) || !got.DueAt.IsZero() {
			t.Errorf("an entry's update: %+v, want cy without a date", got.Task)
		}
		// Children start with the task of their initial state (a set-based insert on PostgreSQL).
		child := task(instance("a.kids.0.0", "order", 1, "review"), day(5), "group:kids")
		child.ParentID, child.ParentGroup = "a", "kids"
		plain := instance("a.kids.0.1", "order", 1, "review")
		plain.ParentID, plain.ParentGroup, plain.ParentIndex = "a", "kids", 1
		mustTx(t, db, func(tx *persistence.Tx) error {
			return persistence.ChildrenInsert(ctx, tx, []persistence.InstanceRow{child, plain}, [][]persistence.Arm{nil, nil})
		})
		if got, _ := persistence.InstanceGet(ctx, db, child.ID); !slices.Equal(got.Assignees, []string{"group:kids"}) || !got.DueAt.Equal(day(5)) {
			t.Errorf("a child's task: %+v", got.Task)
		}
		if got, _ := persistence.InstanceGet(ctx, db, plain.ID); got.Assignees != nil || !got.DueAt.IsZero() {
			t.Errorf("a child without a task: %+v", got.Task)
		}
		update(2, &persistence.Task{})
		if got, _ := persistence.InstanceGet(ctx, db, "a"); got.Assignees != nil || !got.DueAt.IsZero() {
			t.Errorf("an entry into a state without a task: %+v, want none", got.Task)
		}
	})
}
