package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The reads and the one write of tasks (migrations/postgres/011_tasks.sql): who should act on
// which instance, and by when.

// assignedTo is the condition "the assignees name one of names" and its arguments: on PostgreSQL
// one containment per name, which instances_assignees_idx answers (a bitmap OR); on SQLite
// json_each over the instances that have assignees.
func assignedTo(d Dialect, names []string) (string, []any) {
	args := make([]any, len(names))
	if d == Postgres {
		conds := make([]string, len(names))
		for i, n := range names {
			b, _ := json.Marshal([]string{n})
			conds[i], args[i] = "assignees @> ?::jsonb", string(b)
		}
		return "(" + strings.Join(conds, " OR ") + ")", args
	}
	for i, n := range names {
		args[i] = n
	}
	return "(assignees IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(instances.assignees) WHERE json_each.value IN (" +
		placeholders(len(names)) + ")))", args
}

// WorklistParams selects a page of a caller's work list.
type WorklistParams struct {
	Names []string // the caller's name and "group:NAME" for each of its groups
	// Anyone lists every assigned instance, whatever its assignees (a server that authenticates
	// nobody: its callers may act as anyone).
	Anyone bool
	// After continues a page: the (due date, id) of its last item (zero After for the first).
	After    WorklistCursor
	Limit    int // at most this many
	MaxBytes int // stop after the row that takes their Bytes past it; 0 for no bound
}

// WorklistCursor is where a page of a work list ended: the last item's due date (zero for none)
// and id. Items are ordered by due date (those without one last), then id.
type WorklistCursor struct {
	DueAt time.Time
	ID    string
}

// Worklist returns the running instances whose assignees name one of p.Names, oldest due date
// first (without a date last), then by id.
func Worklist(ctx context.Context, ex Executor, p WorklistParams) ([]InstanceRow, error) {
	d := ex.dialect()
	cond, args := "assignees IS NOT NULL", []any{}
	switch {
	case p.Anyone:
	case len(p.Names) == 0:
		return nil, nil
	default:
		cond, args = assignedTo(d, p.Names)
	}
	where := []string{"NOT final", cond}
	switch {
	case p.After.ID == "":
	case p.After.DueAt.IsZero():
		where, args = append(where, "due_at IS NULL AND id > ?"), append(args, p.After.ID)
	default:
		where = append(where, "(due_at IS NULL OR due_at > ? OR (due_at = ? AND id > ?))")
		args = append(args, timeArg(d, p.After.DueAt), timeArg(d, p.After.DueAt), p.After.ID)
	}
	query := `SELECT ` + instanceColumns + ` FROM instances WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY due_at IS NULL, due_at, id LIMIT ?`
	out, err := selectBounded(ctx, ex, p.MaxBytes, instanceRow.row, query, append(args, p.Limit)...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: the work list of %v: %w", p.Names, err)))
	}
	return out, nil
}

// OverdueCount is how many running instances of a definition are past their due date in a state.
type OverdueCount struct {
	Definition string `db:"definition"`
	State      string `db:"state"`
	N          int64  `db:"n"`
}

// InstanceCountOverdue counts the running instances whose due date is before now, by definition and
// state, through instances_due_idx; only definition's when it is not "".
func InstanceCountOverdue(ctx context.Context, ex Executor, definition string, now time.Time) ([]OverdueCount, error) {
	query := `SELECT definition, state, COUNT(*) AS n FROM instances WHERE due_at IS NOT NULL AND due_at < ? AND NOT final`
	args := []any{timeArg(ex.dialect(), now)}
	if definition != "" {
		query, args = query+` AND definition = ?`, append(args, definition)
	}
	var rows []OverdueCount
	if err := selectContext(ctx, ex, &rows, query+` GROUP BY definition, state ORDER BY definition, state`, args...); err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: count overdue instances: %w", err)))
	}
	return rows, nil
}

// InstanceAssign replaces the assignees of an instance, provided it is still at the revision its
// audit row r follows (r.Seq-1), and writes r: both or neither. ErrConflict when the instance
// moved meanwhile.
func InstanceAssign(ctx context.Context, tx *Tx, assignees []string, r TransitionRow) error {
	res, err := execContext(ctx, tx, `UPDATE instances SET assignees = ?, revision = ?, updated_at = ?
		WHERE id = ? AND revision = ? AND NOT final`,
		Task{Assignees: assignees}.assigneesArg(), r.Seq, timeArg(tx.Dialect, r.At), r.InstanceID, r.Seq-1)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: assign instance %q: %w", r.InstanceID, err)))
	}
	if err := conflictUnlessOne(res, "instance %q is not at revision %d", r.InstanceID, r.Seq-1); err != nil {
		return err
	}
	return TransitionInsert(ctx, tx, r)
}
