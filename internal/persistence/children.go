package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// ChildrenInsert stores new instances that a transition starts, with their timers (Arms[i] are
// Rows[i]'s, armed at revision 0), in tx: on PostgreSQL in two set-based statements whatever their
// number, on SQLite one row at a time (in the one transaction). ErrConflict when an id exists:
// nothing is kept, as the transaction fails.
func ChildrenInsert(ctx context.Context, tx *Tx, rows []InstanceRow, arms [][]Arm) error {
	if len(rows) == 0 {
		return nil
	}
	if len(arms) != len(rows) {
		return fmt.Errorf("persistence: insert %d children with the timers of %d", len(rows), len(arms))
	}
	if tx.Dialect != Postgres {
		for i, r := range rows {
			if err := InstanceInsert(ctx, tx, r); err != nil {
				return err
			}
			if err := TimersReplace(ctx, tx, r.ID, false, 0, arms[i]); err != nil {
				return err
			}
		}
		return nil
	}
	n := len(rows)
	ids, defs, states, contexts, groups, parents, ons, children := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	versions, revs, indexes, depths, finals := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]bool, n)
	assignees, dues := make([]string, n), make([]string, n) // "" for NULL
	var tIDs, tEvents, tDues []string
	var tIdx []int64
	for i, r := range rows {
		ids[i], defs[i], states[i], contexts[i] = r.ID, r.Definition, r.State, jsonArg(r.Context, "{}").(string)
		groups[i], parents[i], ons[i], children[i] = r.ParentGroup, r.ParentID, r.OnFinal, jsonArg(r.Children, "{}").(string)
		versions[i], revs[i], indexes[i], depths[i], finals[i] = int64(r.Version), r.ParentRev, int64(r.ParentIndex), int64(r.Depth), r.Final
		if a, ok := r.assigneesArg().(string); ok {
			assignees[i] = a
		}
		if !r.DueAt.IsZero() {
			dues[i] = r.DueAt.UTC().Format(time.RFC3339Nano)
		}
		for j, a := range arms[i] {
			tIDs, tEvents, tDues = append(tIDs, r.ID), append(tEvents, a.Event), append(tDues, a.DueAt.UTC().Format(time.RFC3339Nano))
			tIdx = append(tIdx, int64(j))
		}
	}
	now := timeArg(Postgres, rows[0].CreatedAt)
	_, err := execContext(ctx, tx, `INSERT INTO instances (`+instanceColumns+`)
		SELECT c.id, c.def, c.version, c.state, c.context::jsonb, 0, c.final, '', ?::timestamptz, ?::timestamptz, ?::timestamptz,
			c.parent, c.grp, c.rev, c.idx, c.on_final, c.depth, c.children::jsonb, NULLIF(c.assignees, '')::jsonb, NULLIF(c.due, '')::timestamptz,
			false, false
		FROM unnest(?::text[], ?::text[], ?::integer[], ?::text[], ?::text[], ?::boolean[], ?::text[], ?::text[], ?::bigint[],
			?::integer[], ?::text[], ?::integer[], ?::text[], ?::text[], ?::text[])
			AS c(id, def, version, state, context, final, parent, grp, rev, idx, on_final, depth, children, assignees, due)`,
		now, now, now, pq.Array(ids), pq.Array(defs), pq.Array(versions), pq.Array(states), pq.Array(contexts), pq.Array(finals),
		pq.Array(parents), pq.Array(groups), pq.Array(revs), pq.Array(indexes), pq.Array(ons), pq.Array(depths), pq.Array(children),
		pq.Array(assignees), pq.Array(dues))
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: insert %d children of %q: %w", n, rows[0].ParentID, err)))
	}
	if err := keysSync(ctx, tx, ids...); err != nil {
		return err
	}
	if len(tIDs) == 0 {
		return nil
	}
	_, err = execContext(ctx, tx, `INSERT INTO timers (`+timerColumns+`)
		SELECT t.id, 0, t.idx, t.event, t.due, t.due, 0, ''
		FROM unnest(?::text[], ?::integer[], ?::text[], ?::timestamptz[]) AS t(id, idx, event, due)`,
		pq.Array(tIDs), pq.Array(tIdx), pq.Array(tEvents), pq.Array(tDues))
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: arm the timers of %d children of %q: %w", n, rows[0].ParentID, err)))
	}
	return nil
}

// ChildGroup names the children of one entry of a group: those parent started as group when its
// transition to revision Rev entered the state.
type ChildGroup struct {
	Parent string
	Group  string
	Rev    int64
}

// ChildCounts returns how many children g has, and how many of them are final.
func ChildCounts(ctx context.Context, ex Executor, g ChildGroup) (total, final int, err error) {
	var c struct {
		Total int `db:"total"`
		Final int `db:"final"`
	}
	err = getContext(ctx, ex, &c, `SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN final THEN 1 ELSE 0 END), 0) AS final
		FROM instances WHERE parent_id = ? AND parent_group = ? AND parent_rev = ?`, g.Parent, g.Group, g.Rev)
	if err != nil {
		return 0, 0, translate(canceled(ctx, fmt.Errorf("persistence: count the children %s of %q: %w", g.Group, g.Parent, err)))
	}
	return c.Total, c.Final, nil
}

// ChildRunningIDs returns the ids of g's children that are not final, by index.
func ChildRunningIDs(ctx context.Context, ex Executor, g ChildGroup) ([]string, error) {
	var ids []string
	err := selectContext(ctx, ex, &ids, `SELECT id FROM instances
		WHERE parent_id = ? AND parent_group = ? AND parent_rev = ? AND NOT final ORDER BY parent_index`, g.Parent, g.Group, g.Rev)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list the running children %s of %q: %w", g.Group, g.Parent, err)))
	}
	return ids, nil
}

// InTx runs fn in ex's transaction when ex is one, else in a new transaction of ex (WithTx).
func InTx(ctx context.Context, ex Executor, fn func(tx *Tx) error) error {
	if tx, ok := ex.(*Tx); ok {
		return fn(tx)
	}
	return ex.(*DB).WithTx(ctx, fn)
}
