package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// The set-based writes of the timer scheduler (internal/service, timers_batch.go): a batch of due
// timers claimed, their instances read, and the batch's firings written in a few statements,
// whatever their number, instead of a few round trips per timer.

// MaxTimerBatch bounds a scheduler's batch: the arguments of its multi-row statements (20 per
// audit row) stay well under both databases' limits (PostgreSQL 65,535; SQLite 32,766).
const MaxTimerBatch = 1000

// TimedInstance is an instance with a due timer, as a batch claims it: its row, and its timers whose
// due time has come, by due time (as TimersDue), those put off after a failure included.
type TimedInstance struct {
	Row InstanceRow
	Due []Timer
}

// TimersClaimDue claims the instances of up to limit (at most MaxTimerBatch) timers whose time
// has come, as TimersClaim does (through a transaction on PostgreSQL they are locked, those locked
// by others skipped), then reads their due timers in one more query. The timers are read after the
// instances: every change of an instance's timers but a put-off comes with a new revision of the
// instance (a transition, a drop, a migration), so a write conditional on the revision read never
// fires a timer that another writer fired or cancelled meanwhile. (On PostgreSQL the locking read
// returns the newest version of a row it had to wait for, but the timers it joined are those of its
// snapshot: hence the second read, and its count, len(due), may be lower than the instances'.)
func TimersClaimDue(ctx context.Context, ex Executor, now time.Time, limit int) ([]TimedInstance, error) {
	rows, err := TimersClaim(ctx, ex, now, min(limit, MaxTimerBatch))
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	in, args := idList(ex.dialect(), ids)
	var timers []timerRow
	err = selectContext(ctx, ex, &timers, `SELECT `+timerColumns+` FROM timers WHERE instance_id `+in+` AND due_at <= ?
		ORDER BY instance_id, due_at, idx`, append(args, timeArg(ex.dialect(), now))...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: due timers of %d instances: %w", len(ids), err)))
	}
	due := make(map[string][]Timer, len(rows))
	for _, t := range timers {
		due[t.InstanceID] = append(due[t.InstanceID], t.timer())
	}
	out := make([]TimedInstance, len(rows))
	for i, r := range rows {
		out[i] = TimedInstance{Row: r, Due: due[r.ID]}
	}
	return out, nil
}

// TimerFiring is what a batch writes for one fired timer: the transition its event made, or the
// drop of a refused one (an audit row, the revision bumped), as InstanceAdvance takes them, with
// its outbox rows and messages, if any, in Update; and the timer, deleted with it.
type TimerFiring struct {
	Advance
	Timer Timer
}

// TimersFire writes a batch of fired timers in tx. Each applies on the condition that its instance
// is still at Update.ExpectRevision and not suspended; it returns the ids of the instances that
// were not (they moved meanwhile), of which nothing was written: the caller decides those again.
// For the others, in a statement each for the whole batch: the updates (on SQLite an update
// each), the timers fired deleted, the audit rows, the timers cancelled and armed, then the outbox
// rows and messages (OutboxInsert, MessagesInsert). A firing must not change the instance's
// children (those go through InstanceAdvance). ErrConflict when a timer fired is not there any
// more or a seq is taken, ErrKeyExists when a key is: the transaction must then be rolled back.
func TimersFire(ctx context.Context, tx *Tx, items []TimerFiring) ([]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	if len(items) > MaxTimerBatch {
		return nil, fmt.Errorf("persistence: a batch of %d timers, over %d", len(items), MaxTimerBatch)
	}
	advances := make([]Advance, len(items))
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		if err := checkAdvance(it.Update, it.Row); err != nil {
			return nil, err
		}
		if it.Update.Children != nil || it.Timer.InstanceID != it.Update.ID || seen[it.Update.ID] {
			return nil, fmt.Errorf("persistence: a batch firing of instance %q with children, timer %s of %q, or twice",
				it.Update.ID, it.Timer.Event, it.Timer.InstanceID)
		}
		seen[it.Update.ID] = true
		advances[i] = it.Advance
	}
	applied, err := batchApply(ctx, tx, advances)
	if err != nil {
		return nil, err
	}
	var moved []string
	var fired []TimerFiring
	var outbox []OutboxRow
	var messages []MessageRow
	advances = advances[:0]
	for _, it := range items {
		if !applied[it.Update.ID] {
			moved = append(moved, it.Update.ID)
			continue
		}
		fired = append(fired, it)
		advances = append(advances, it.Advance)
		outbox = append(outbox, it.Update.Outbox...)
		messages = append(messages, it.Update.Messages...)
	}
	if len(fired) == 0 {
		return moved, nil
	}
	if err := timersDelete(ctx, tx, fired); err != nil {
		return nil, err
	}
	for i, a := range advances { // cancelled with the timers fired
		if t := a.Update.Timers; t != nil && t.Cancel {
			advances[i].Update.Timers = &TimerChange{Arms: t.Arms}
		}
	}
	if err := batchEffects(ctx, tx, advances); err != nil {
		return nil, err
	}
	if err := OutboxInsert(ctx, tx, outbox); err != nil {
		return nil, err
	}
	if err := MessagesInsert(ctx, tx, messages); err != nil {
		return nil, err
	}
	return moved, nil
}

// timersDelete deletes the timers fired by a batch, all of them or none (ErrConflict when one is not
// there any more), and the other timers of the instances whose transition cancels them: on
// PostgreSQL in one statement, which counts the fired ones among those it deletes; on SQLite a
// delete each (embedded: no round trips; one statement prepared), then the cancels.
func timersDelete(ctx context.Context, tx *Tx, fired []TimerFiring) error {
	var n int64
	var cancel []string
	for _, f := range fired {
		if t := f.Update.Timers; t != nil && t.Cancel {
			cancel = append(cancel, f.Update.ID)
		}
	}
	if tx.Dialect == Postgres {
		ids, revs, idxs, all := make([]string, len(fired)), make([]int64, len(fired)), make([]int64, len(fired)), make([]bool, len(fired))
		for i, f := range fired {
			ids[i], revs[i], idxs[i] = f.Timer.InstanceID, f.Timer.Revision, int64(f.Timer.Idx)
			all[i] = f.Update.Timers != nil && f.Update.Timers.Cancel
		}
		err := getContext(ctx, tx, &n, `WITH d AS (
				DELETE FROM timers t USING unnest(?::text[], ?::bigint[], ?::integer[], ?::boolean[]) AS f(id, rev, idx, cancel)
				WHERE t.instance_id = f.id AND (f.cancel OR (t.revision = f.rev AND t.idx = f.idx))
				RETURNING t.revision = f.rev AND t.idx = f.idx AS fired
			)
			SELECT count(*) FROM d WHERE fired`, pq.Array(ids), pq.Array(revs), pq.Array(idxs), pq.Array(all))
		if err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: delete %d fired timers: %w", len(fired), err)))
		}
	} else {
		st, err := prepareInTx(ctx, tx, `DELETE FROM timers WHERE instance_id = ? AND revision = ? AND idx = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, f := range fired {
			res, err := st.ExecContext(ctx, f.Timer.InstanceID, f.Timer.Revision, f.Timer.Idx)
			if err != nil {
				return translate(canceled(ctx, fmt.Errorf("persistence: delete timer %s of instance %q: %w", f.Timer.Event, f.Timer.InstanceID, err)))
			}
			one, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("persistence: rows affected: %w", err)
			}
			n += one
		}
		if len(cancel) > 0 {
			in, args := idList(tx.Dialect, cancel)
			if _, err := execContext(ctx, tx, `DELETE FROM timers WHERE instance_id `+in, args...); err != nil {
				return translate(canceled(ctx, fmt.Errorf("persistence: cancel the timers of %d instances: %w", len(cancel), err)))
			}
		}
	}
	if n != int64(len(fired)) {
		return fmt.Errorf("persistence: %d of %d fired timers were still there: %w", n, len(fired), ErrConflict)
	}
	return nil
}

// TimersHoldMany holds the timers of instances found suspended (TimersHold), in one statement: of
// those still suspended, so that a resume that released them meanwhile wins.
func TimersHoldMany(ctx context.Context, ex Executor, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	in, args := idList(ex.dialect(), ids)
	_, err := execContext(ctx, ex, `UPDATE timers SET next_try_at = ? WHERE instance_id `+in+`
		AND EXISTS (SELECT 1 FROM instances i WHERE i.id = timers.instance_id AND i.suspended)`,
		append([]any{timeArg(ex.dialect(), Held)}, args...)...)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: hold the timers of %d instances: %w", len(ids), err)))
	}
	return nil
}
