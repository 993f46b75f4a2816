package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Timer is one armed timer of an instance (the timers table).
type Timer struct {
	InstanceID string
	Revision   int64 // the instance's revision when it entered the state that armed it
	Idx        int   // its place in its state's list of timers
	Event      string
	DueAt      time.Time
	NextTryAt  time.Time // DueAt, or later after a failure to fire it
	Attempts   int
	LastError  string
}

type timerRow struct {
	InstanceID string `db:"instance_id"`
	Revision   int64  `db:"revision"`
	Idx        int    `db:"idx"`
	Event      string `db:"event"`
	DueAt      dbTime `db:"due_at"`
	NextTryAt  dbTime `db:"next_try_at"`
	Attempts   int    `db:"attempts"`
	LastError  string `db:"last_error"`
}

func (r timerRow) timer() Timer {
	return Timer{InstanceID: r.InstanceID, Revision: r.Revision, Idx: r.Idx, Event: r.Event, DueAt: r.DueAt.Time(),
		NextTryAt: r.NextTryAt.Time(), Attempts: r.Attempts, LastError: r.LastError}
}

const timerColumns = `instance_id, revision, idx, event, due_at, next_try_at, attempts, last_error`

// Arm is a timer to arm: Event at DueAt.
type Arm struct {
	Event string
	DueAt time.Time
}

// TimersReplace writes the timer changes of a transition of an instance, in the caller's
// transaction: with cancel, every timer of the instance is deleted (its state was left or
// re-entered); then arms are armed as the timers of the state entered at revision.
func TimersReplace(ctx context.Context, tx *Tx, instanceID string, cancel bool, revision int64, arms []Arm) error {
	if cancel {
		if _, err := execContext(ctx, tx, `DELETE FROM timers WHERE instance_id = ?`, instanceID); err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: cancel the timers of instance %q: %w", instanceID, err)))
		}
	}
	if len(arms) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO timers (` + timerColumns + `) VALUES `)
	args := make([]any, 0, 8*len(arms))
	for i, a := range arms {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, 0, '')")
		at := timeArg(tx.Dialect, a.DueAt)
		args = append(args, instanceID, revision, i, a.Event, at, at)
	}
	if _, err := execContext(ctx, tx, b.String(), args...); err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: arm the timers of instance %q: %w", instanceID, err)))
	}
	return nil
}

// TimersOf returns the timers of an instance, by due time.
func TimersOf(ctx context.Context, ex Executor, instanceID string) ([]Timer, error) {
	var rows []timerRow
	err := selectContext(ctx, ex, &rows, `SELECT `+timerColumns+` FROM timers WHERE instance_id = ? ORDER BY due_at, idx`, instanceID)
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: timers of instance %q: %w", instanceID, err))
	}
	out := make([]Timer, len(rows))
	for i, r := range rows {
		out[i] = r.timer()
	}
	return out, nil
}

// TimersClaim returns the instances of up to limit of the timers whose time has come (next_try_at
// at or before now), earliest first. Read through a transaction it locks them: on PostgreSQL
// skipping the instances locked by others (FOR UPDATE SKIP LOCKED), so that several processes share
// the work and none waits for another; SQLite's transaction holds its one write lock. Read through
// the database it locks nothing.
func TimersClaim(ctx context.Context, ex Executor, now time.Time, limit int) ([]InstanceRow, error) {
	// Locking the instances (not the timers) keeps the order every writer of timers follows:
	// the instance first. Skipped rows do not count against the LIMIT: a process takes the next
	// due instances that nobody holds.
	query := `SELECT ` + qualified("i.", instanceColumns) + ` FROM timers t JOIN instances i ON i.id = t.instance_id
		WHERE t.next_try_at <= ? ORDER BY t.next_try_at LIMIT ?`
	if tx, ok := ex.(*Tx); ok && tx.db.Citus {
		return timersClaimRouted(ctx, tx, now, limit)
	}
	if tx, ok := ex.(*Tx); ok && tx.Dialect == Postgres {
		query += ` FOR UPDATE OF i SKIP LOCKED`
	}
	var rows []instanceRow
	if err := selectContext(ctx, ex, &rows, query, timeArg(ex.dialect(), now), limit); err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: claim due timers: %w", err)))
	}
	out := make([]InstanceRow, 0, len(rows))
	seen := make(map[string]bool, len(rows))
	for _, r := range rows { // an instance with two due timers comes twice
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r.row())
		}
	}
	return out, nil
}

// timersClaimRouted is TimersClaim in a transaction on Citus, which refuses FOR UPDATE in a query
// over every shard: the instances with due timers are read unlocked, then each is locked by a query
// routed to its worker, skipping those others hold as on PostgreSQL.
func timersClaimRouted(ctx context.Context, tx *Tx, now time.Time, limit int) ([]InstanceRow, error) {
	var ids []string
	if err := selectContext(ctx, tx, &ids, `SELECT instance_id FROM timers WHERE next_try_at <= ? ORDER BY next_try_at LIMIT ?`,
		timeArg(Postgres, now), limit); err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: claim due timers: %w", err)))
	}
	out := make([]InstanceRow, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		var r instanceRow
		err := getContext(ctx, tx, &r, instanceGetQuery+` FOR UPDATE SKIP LOCKED`, id)
		switch {
		case errors.Is(err, sql.ErrNoRows): // held by another process, or gone
		case err != nil:
			return nil, translate(canceled(ctx, fmt.Errorf("persistence: claim the due timers of instance %q: %w", id, err)))
		default:
			out = append(out, r.row())
		}
	}
	return out, nil
}

// qualified qualifies each of a comma-separated list of columns with prefix.
func qualified(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// TimersDue returns an instance's timers whose due time has come, by due time, those put off after a
// failure included: they keep their place, so that the timers of an instance fire in deadline order.
func TimersDue(ctx context.Context, ex Executor, instanceID string, now time.Time) ([]Timer, error) {
	var rows []timerRow
	err := selectContext(ctx, ex, &rows, `SELECT `+timerColumns+` FROM timers WHERE instance_id = ? AND due_at <= ?
		ORDER BY due_at, idx`, instanceID, timeArg(ex.dialect(), now))
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: due timers of instance %q: %w", instanceID, err)))
	}
	out := make([]Timer, len(rows))
	for i, r := range rows {
		out[i] = r.timer()
	}
	return out, nil
}

// TimerRetry puts a timer off until next after a failure to fire it.
func TimerRetry(ctx context.Context, ex Executor, t Timer, next time.Time, lastError string) error {
	_, err := execContext(ctx, ex, `UPDATE timers SET attempts = attempts + 1, next_try_at = ?, last_error = ?
		WHERE instance_id = ? AND revision = ? AND idx = ?`,
		timeArg(ex.dialect(), next), truncateText(lastError, 1000), t.InstanceID, t.Revision, t.Idx)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: put off timer %s of instance %q: %w", t.Event, t.InstanceID, err)))
	}
	return nil
}

// TimerDelete deletes one timer (fired, or dropped).
func TimerDelete(ctx context.Context, tx *Tx, t Timer) error {
	_, err := execContext(ctx, tx, `DELETE FROM timers WHERE instance_id = ? AND revision = ? AND idx = ?`, t.InstanceID, t.Revision, t.Idx)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: delete timer %s of instance %q: %w", t.Event, t.InstanceID, err)))
	}
	return nil
}

// TimerNext returns the earliest next_try_at of all timers; ok is false when there is none.
func TimerNext(ctx context.Context, ex Executor) (time.Time, bool, error) {
	var rows []struct {
		At dbTime `db:"at"`
	}
	if err := selectContext(ctx, ex, &rows, `SELECT next_try_at AS at FROM timers ORDER BY next_try_at LIMIT 1`); err != nil {
		return time.Time{}, false, translate(canceled(ctx, fmt.Errorf("persistence: next timer: %w", err)))
	}
	if len(rows) == 0 {
		return time.Time{}, false, nil
	}
	return rows[0].At.Time(), true, nil
}

// truncateText cuts s to at most n bytes on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
