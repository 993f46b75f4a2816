package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Advance is one accepted transition of a batch (AdvanceBatch) or a group (AdvanceGroup): the
// instance's update and its audit row, as InstanceAdvance takes them.
type Advance struct {
	Update InstanceUpdateParams
	Row    TransitionRow
}

// AdvanceBatch writes the transitions of many instances in tx, each on the condition that its
// instance is still at Update.ExpectRevision and not suspended: on PostgreSQL in a few set-based
// statements whatever their number (the updates, the audit rows, the timers cancelled and armed),
// on SQLite an update per instance and the rest set-based. The transitions must have no outbox
// rows, messages or children: a bulk's batch of plain transitions. ErrConflict when an instance
// moved (or was suspended) meanwhile, or a seq or an idempotency key is taken: the caller's
// transaction then fails as a whole.
func AdvanceBatch(ctx context.Context, tx *Tx, items []Advance) error {
	if len(items) == 0 {
		return nil
	}
	for _, it := range items {
		if err := checkAdvance(it.Update, it.Row); err != nil {
			return err
		}
		if u := it.Update; len(u.Outbox) > 0 || len(u.Messages) > 0 || u.Children != nil {
			return fmt.Errorf("persistence: a batch advance of instance %q with outbox rows, messages or children", u.ID)
		}
	}
	if err := batchUpdate(ctx, tx, items); err != nil {
		return err
	}
	return batchEffects(ctx, tx, items)
}

// batchEffects writes what goes with the updates of a batch of transitions: their audit rows, and
// their timers cancelled and armed, in a statement each.
func batchEffects(ctx context.Context, tx *Tx, items []Advance) error {
	rows := make([]TransitionRow, len(items))
	var cancel []string
	var arms []Advance
	for i, it := range items {
		rows[i] = it.Row
		if t := it.Update.Timers; t != nil {
			if t.Cancel {
				cancel = append(cancel, it.Update.ID)
			}
			if len(t.Arms) > 0 {
				arms = append(arms, it)
			}
		}
	}
	if err := transitionsInsert(ctx, tx, rows); err != nil {
		return fmt.Errorf("persistence: a batch of %d transitions: %w", len(items), err)
	}
	if len(cancel) > 0 {
		in, args := idList(tx.Dialect, cancel)
		if _, err := execContext(ctx, tx, `DELETE FROM timers WHERE instance_id `+in, args...); err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: cancel the timers of %d instances: %w", len(cancel), err)))
		}
	}
	if len(arms) > 0 {
		var b strings.Builder
		b.WriteString(`INSERT INTO timers (` + timerColumns + `) VALUES `)
		var args []any
		for _, it := range arms {
			for i, a := range it.Update.Timers.Arms {
				if len(args) > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, ?, ?, 0, '')")
				at := timeArg(tx.Dialect, a.DueAt)
				args = append(args, it.Update.ID, it.Update.Revision, i, a.Event, at, at)
			}
		}
		if _, err := execContext(ctx, tx, b.String(), args...); err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: arm the timers of %d instances: %w", len(arms), err)))
		}
	}
	return nil
}

// batchUpdate applies the instances' updates, all of them or none: ErrConflict when one moved.
func batchUpdate(ctx context.Context, tx *Tx, items []Advance) error {
	applied, err := batchApply(ctx, tx, items)
	if err != nil {
		return err
	}
	if n := len(applied); n != len(items) {
		return fmt.Errorf("persistence: %d of %d instances were at the revision read and not suspended: %w", n, len(items), ErrConflict)
	}
	return nil
}

// batchApply applies each of the instances' updates whose instance is still at the revision read
// and not suspended, and returns the ids of those it applied: on PostgreSQL one UPDATE ... FROM
// unnest, on SQLite an update each. The others are left as they are, and the transaction usable.
func batchApply(ctx context.Context, tx *Tx, items []Advance) (map[string]bool, error) {
	applied := make(map[string]bool, len(items))
	if tx.Dialect != Postgres {
		st, err := prepareInTx(ctx, tx, instanceUpdateQuery+` AND NOT suspended`)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		for _, it := range items {
			err := instanceUpdateNotSuspended(ctx, tx.Dialect, st, it.Update)
			switch {
			case err == nil:
				applied[it.Update.ID] = true
			case !errors.Is(err, ErrConflict):
				return nil, err
			}
		}
		return applied, nil
	}
	n := len(items)
	ids, states, contexts, assignees := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	dues := make([]sql.NullString, n) // NULL: no due time
	expects, revs, versions := make([]int64, n), make([]int64, n), make([]int64, n)
	finals, setTask := make([]bool, n), make([]bool, n)
	updated, entered := make([]string, n), make([]string, n)
	for i, it := range items {
		u := it.Update
		ids[i], states[i], contexts[i] = u.ID, u.State, jsonArg(u.Context, "{}").(string)
		expects[i], revs[i], versions[i], finals[i] = u.ExpectRevision, u.Revision, int64(u.Version), u.Final
		updated[i], entered[i] = u.UpdatedAt.UTC().Format(time.RFC3339Nano), u.EnteredAt.UTC().Format(time.RFC3339Nano)
		if u.Task != nil {
			setTask[i] = true
			if a, ok := u.Task.assigneesArg().(string); ok {
				assignees[i] = a
			}
			if !u.Task.DueAt.IsZero() {
				dues[i] = sql.NullString{String: u.Task.DueAt.UTC().Format(time.RFC3339Nano), Valid: true}
			}
		}
	}
	// The times come typed (timestamptz[]): Citus refuses an UPDATE that casts a column to
	// timestamptz (a STABLE function, as it depends on the time zone).
	var done []string
	err := selectContext(ctx, tx, &done, `UPDATE instances i SET version = u.version, state = u.state, context = u.context::jsonb,
			revision = u.rev, final = u.final, updated_at = u.updated, entered_at = u.entered,
			assignees = CASE WHEN u.set_task THEN NULLIF(u.assignees, '')::jsonb ELSE i.assignees END,
			due_at = CASE WHEN u.set_task THEN u.due ELSE i.due_at END
		FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::integer[], ?::text[], ?::text[], ?::boolean[], ?::timestamptz[],
			?::timestamptz[], ?::boolean[], ?::text[], ?::timestamptz[])
			AS u(id, expect, rev, version, state, context, final, updated, entered, set_task, assignees, due)
		WHERE i.id = u.id AND i.revision = u.expect AND NOT i.suspended
		RETURNING i.id`,
		pq.Array(ids), pq.Array(expects), pq.Array(revs), pq.Array(versions), pq.Array(states), pq.Array(contexts), pq.Array(finals),
		pq.Array(updated), pq.Array(entered), pq.Array(setTask), pq.Array(assignees), pq.Array(dues))
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: update %d instances: %w", n, err)))
	}
	for _, id := range done {
		applied[id] = true
	}
	return applied, keysSync(ctx, tx, done...)
}

// instanceUpdateNotSuspended is InstanceUpdate on the condition that the instance is not suspended
// either (SQLite's part of a batch), through st, instanceUpdateQuery with that condition.
func instanceUpdateNotSuspended(ctx context.Context, d Dialect, st *sql.Stmt, u InstanceUpdateParams) error {
	res, err := st.ExecContext(ctx, u.updateArgs(d)...)
	if err != nil {
		return translate(fmt.Errorf("persistence: update instance %q: %w", u.ID, err))
	}
	return conflictUnlessOne(res, "instance %q is not at revision %d, or is suspended", u.ID, u.ExpectRevision)
}
