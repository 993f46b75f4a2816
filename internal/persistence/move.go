package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// The set-based writes of a migration (the executor in internal/service): many instances moved to
// another version of their definition, each with its audit row, in a few statements instead of two
// per instance.

// MovesInSQL reports whether the database moves a group of instances in SQL (InstanceMoveStates:
// a batch in one statement, their contexts rewritten and checked by SQL, no row through the
// client): PostgreSQL does, but not on Citus (the statement's batch is locked FOR UPDATE over every
// shard, which Citus refuses). Where it does not, the caller decides each instance and writes the
// batch with InstanceMoveRows.
func (db *DB) MovesInSQL() bool { return db.Dialect == Postgres && !db.Citus }

// MigrationBatch is what a migration writes for a batch of its instances: the versions they move
// between, and the fields their audit rows share.
type MigrationBatch struct {
	FromVersion, ToVersion int
	MigrationID            string // the audit rows' request_id
	Event                  string // the audit rows' event
	At                     time.Time
}

// MovedInstance is one instance a migration moves, decided in Go: its state and context before
// (as read, locked, in the caller's transaction) and after.
type MovedInstance struct {
	ID            string
	Revision      int64 // as read; the instance is written at Revision+1, its audit row with seq Revision+1
	FromState     string
	ToState       string
	Before, After []byte // JSON objects
	Final         bool   // ToState is final
	EnteredAt     time.Time
	Timers        []Arm // the timers of ToState, from EnteredAt: they replace the instance's
}

// moveRowsQuery moves the instances of its arrays and appends their audit rows, on PostgreSQL: one
// statement for a whole batch. An instance no longer at the revision read is not moved, and then
// has no row either (the count tells).
const moveRowsQuery = `
	WITH d AS (
		SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::jsonb[], ?::jsonb[], ?::boolean[])
			AS d(id, revision, from_state, to_state, before, after, final)
	), moved AS (
		UPDATE instances i
		SET version = ?::integer, state = d.to_state, context = d.after, revision = d.revision + 1, final = d.final, updated_at = ?::timestamptz
		FROM d WHERE i.id = d.id AND i.revision = d.revision
		RETURNING i.id
	)
	INSERT INTO transitions (` + transitionColumns + `, actor_kind)
	SELECT d.id, d.revision + 1, ?::text, d.from_state, d.to_state, 0, '[]', '{}', d.before, d.after,
		'migration', ?::text, NULL, '', ?::integer, ?::integer, ?::timestamptz, 'migration'
	FROM d JOIN moved ON moved.id = d.id`

// InstanceMoveRows moves instances as decided, each with its audit row (source migration), in the
// caller's transaction, which must hold their locks. ErrConflict when one of them is no longer at
// the revision read: then the transaction must be rolled back, as some may have moved.
func InstanceMoveRows(ctx context.Context, tx *Tx, m MigrationBatch, rows []MovedInstance) error {
	if len(rows) == 0 {
		return nil
	}
	if tx.Dialect != Postgres {
		return moveRowsOneByOne(ctx, tx, m, rows)
	}
	n := len(rows)
	ids, from, to, before, after := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	revs, finals := make([]int64, n), make([]bool, n)
	for i, r := range rows {
		ids[i], revs[i], from[i], to[i], finals[i] = r.ID, r.Revision, r.FromState, r.ToState, r.Final
		before[i], after[i] = jsonArg(r.Before, "{}").(string), jsonArg(r.After, "{}").(string)
	}
	at := timeArg(Postgres, m.At)
	res, err := execContext(ctx, tx, moveRowsQuery,
		pq.Array(ids), pq.Array(revs), pq.Array(from), pq.Array(to), pq.Array(before), pq.Array(after), pq.Array(finals),
		m.ToVersion, at, m.Event, m.MigrationID, m.ToVersion, m.FromVersion, at)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: move %d instances to version %d: %w", len(rows), m.ToVersion, err)))
	}
	moved, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("persistence: rows affected: %w", err)
	}
	if moved != int64(n) {
		return fmt.Errorf("persistence: move %d instances to version %d: %d were no longer at the revision read: %w",
			n, m.ToVersion, int64(n)-moved, ErrConflict)
	}
	if err := keysSync(ctx, tx, ids...); err != nil { // a mapping may change a key, a final state free it
		return err
	}
	return rearm(ctx, tx, rows)
}

// rearm replaces the timers of moved instances by those of their new state, on PostgreSQL in two
// statements for the batch.
func rearm(ctx context.Context, tx *Tx, rows []MovedInstance) error {
	ids := make([]string, len(rows))
	var tIDs, events, dues []string
	var revs, idxs []int64
	for i, r := range rows {
		ids[i] = r.ID
		for j, a := range r.Timers {
			tIDs, revs, idxs = append(tIDs, r.ID), append(revs, r.Revision+1), append(idxs, int64(j))
			events, dues = append(events, a.Event), append(dues, a.DueAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
		}
	}
	if _, err := execContext(ctx, tx, `DELETE FROM timers WHERE instance_id = ANY(?::text[])`, pq.Array(ids)); err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: cancel the timers of %d moved instances: %w", len(ids), err)))
	}
	if len(tIDs) == 0 {
		return nil
	}
	_, err := execContext(ctx, tx, `INSERT INTO timers (`+timerColumns+`)
		SELECT id, rev, idx, event, due, due, 0, '' FROM unnest(?::text[], ?::bigint[], ?::integer[], ?::text[], ?::timestamptz[])
			AS a(id, rev, idx, event, due)`,
		pq.Array(tIDs), pq.Array(revs), pq.Array(idxs), pq.Array(events), pq.Array(dues))
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: arm the timers of %d moved instances: %w", len(ids), err)))
	}
	return nil
}

// moveRowsOneByOne is InstanceMoveRows on SQLite, where an UPDATE cannot feed an INSERT: two
// statements per instance, in the caller's transaction (embedded, so no round trips to save).
func moveRowsOneByOne(ctx context.Context, tx *Tx, m MigrationBatch, rows []MovedInstance) error {
	for _, r := range rows {
		rev := r.Revision + 1
		u := InstanceUpdateParams{ID: r.ID, ExpectRevision: r.Revision, Version: m.ToVersion, State: r.ToState,
			Context: r.After, Revision: rev, Final: r.Final, UpdatedAt: m.At, EnteredAt: r.EnteredAt}
		t := TransitionRow{InstanceID: r.ID, Seq: rev, Event: m.Event, From: r.FromState, To: r.ToState, Guards: []byte("[]"),
			Payload: []byte("{}"), ContextBefore: r.Before, ContextAfter: r.After, Source: "migration", ActorKind: "migration",
			RequestID: m.MigrationID, DefinitionVersion: m.ToVersion, FromVersion: m.FromVersion, At: m.At}
		if err := InstanceUpdate(ctx, tx, u); err != nil {
			return err
		}
		if err := TransitionInsert(ctx, tx, t); err != nil {
			return err
		}
		if err := TimersReplace(ctx, tx, r.ID, true, rev, r.Timers); err != nil {
			return err
		}
	}
	return nil
}

// StateCount is how many running instances a (version, state) of a definition has.
type StateCount struct {
	Version int    `db:"version"`
	State   string `db:"state"`
	N       int64  `db:"n"`
}

// InstanceCountRunningByState returns the running instances of a definition per version and state,
// in that order.
func InstanceCountRunningByState(ctx context.Context, ex Executor, definition string) ([]StateCount, error) {
	var rows []StateCount
	err := selectContext(ctx, ex, &rows, `SELECT version, state, COUNT(*) AS n FROM instances
		WHERE definition = ? AND NOT final GROUP BY version, state ORDER BY version, state`, definition)
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: count running instances of %s: %w", definition, err))
	}
	return rows, nil
}

// InstanceRunningSample returns the first ids (in id order) of the running instances of one
// (version, state) of a definition, at most limit.
func InstanceRunningSample(ctx context.Context, ex Executor, definition string, version int, state string, limit int) ([]string, error) {
	ids := []string{}
	err := selectContext(ctx, ex, &ids, `SELECT id FROM instances
		WHERE definition = ? AND state = ? AND version = ? AND NOT final ORDER BY id LIMIT ?`, definition, state, version, limit)
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: running instances of %s version %d in state %q: %w", definition, version, state, err))
	}
	return ids, nil
}

// CommitLazily makes the commit of tx return without waiting for its write-ahead log to reach the
// disk, on PostgreSQL (synchronous_commit off, for this transaction only; a no-op on SQLite). For a
// migration's batches, whose progress row commits with them: a crash of the server may lose the
// last batches, each whole (instances, audit rows and progress together), and the resumed migration
// moves them again; nothing is ever half-written. Whatever commits after a batch and depends on it
// (an event on a moved instance, the migration's end) is a synchronous commit, which flushes the
// log up to itself, the batch's included: nothing acknowledged rests on a batch that could be lost.
func CommitLazily(ctx context.Context, tx *Tx) error {
	if tx.Dialect != Postgres {
		return nil
	}
	if _, err := tx.X.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: commit lazily: %w", err)))
	}
	return nil
}
