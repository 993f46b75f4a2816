package persistence

import (
	"context"
	"fmt"
	"time"
)

// The writes of operators on one instance (migrations/postgres/012_admin.sql): suspend, resume and
// terminate change its flags with an audit row; a suspended instance's timers are held.

// Held is the next_try_at of a held timer: the end of time, which no scheduler reaches.
var Held = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// AdminUpdate is an operator's change of an instance's flags, provided it is still at
// ExpectRevision: its new revision (its audit row's seq), and whether it is suspended, terminated
// and final; ClearTask removes its assignees and due date.
type AdminUpdate struct {
	ID             string
	ExpectRevision int64
	Revision       int64
	UpdatedAt      time.Time
	Suspended      bool
	Terminated     bool
	Final          bool
	ClearTask      bool
}

// InstanceSetFlags writes u and r, its audit row, in tx: both or neither. ErrConflict when the
// instance moved meanwhile.
func InstanceSetFlags(ctx context.Context, tx *Tx, u AdminUpdate, r TransitionRow) error {
	res, err := execContext(ctx, tx, `UPDATE instances SET suspended = ?, terminated = ?, final = ?, revision = ?, updated_at = ?,
			assignees = CASE WHEN ? THEN NULL ELSE assignees END, due_at = CASE WHEN ? THEN NULL ELSE due_at END
		WHERE id = ? AND revision = ?`,
		u.Suspended, u.Terminated, u.Final, u.Revision, timeArg(tx.Dialect, u.UpdatedAt), u.ClearTask, u.ClearTask, u.ID, u.ExpectRevision)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: change the flags of instance %q: %w", u.ID, err)))
	}
	if err := conflictUnlessOne(res, "instance %q is not at revision %d", u.ID, u.ExpectRevision); err != nil {
		return err
	}
	if err := keysSync(ctx, tx, u.ID); err != nil { // a terminated instance frees its keys
		return err
	}
	return TransitionInsert(ctx, tx, r)
}

// TimersHold puts off every timer of an instance to Held: a suspended instance's timers do not fire.
func TimersHold(ctx context.Context, ex Executor, id string) error {
	_, err := execContext(ctx, ex, `UPDATE timers SET next_try_at = ? WHERE instance_id = ?`, timeArg(ex.dialect(), Held), id)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: hold the timers of %q: %w", id, err)))
	}
	return nil
}

// TimersRelease makes every timer of an instance due at its own time again: once resumed, those
// whose time has passed fire at once (each once), the others when they are due.
func TimersRelease(ctx context.Context, ex Executor, id string) error {
	_, err := execContext(ctx, ex, `UPDATE timers SET next_try_at = due_at WHERE instance_id = ?`, id)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: release the timers of %q: %w", id, err)))
	}
	return nil
}

// InstanceRunningChildren returns the children of an instance that are not final (of every group
// and entry), in id order.
func InstanceRunningChildren(ctx context.Context, ex Executor, parent string) ([]InstanceRow, error) {
	var rows []instanceRow
	err := selectContext(ctx, ex, &rows, `SELECT `+instanceColumns+` FROM instances WHERE parent_id = ? AND NOT final ORDER BY id`, parent)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: the running children of %q: %w", parent, err)))
	}
	out := make([]InstanceRow, len(rows))
	for i, r := range rows {
		out[i] = r.row()
	}
	return out, nil
}
