package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// The set-based writes of a migration (the executor in internal/service): many instances moved to
// another version of their definition, each with its audit row, in a few statements instead of two
// per instance.

// MovesInSQL reports whether the database moves a group of instances in SQL (InstanceMoveState:
// a batch in one statement, their contexts rewritten and checked by SQL, no row through the
// client): PostgreSQL does. Where it does not, the caller decides each instance and writes the
// batch with InstanceMoveRows.
func (db *DB) MovesInSQL() bool { return db.Dialect == Postgres }

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

// MoveState selects the running instances of one (version, state) of a definition for
// InstanceMoveState, and says where they go: all to one state, their contexts rewritten by SQL.
type MoveState struct {
	Definition string
	FromState  string
	After      string // the last id of the previous batch
	Limit      int
	ToState    string
	Final      bool   // ToState is final
	Defaults   []byte // a JSON object: the new version's fields with their initial values; the old context's values win
	Drop       []string
	Shape      ContextShape // only contexts of this shape move; the others stay for the caller to decide
	Timers     []After      // the timers of ToState, counted from each instance's entered_at
}

// After is a timer that fires a time after its state was entered.
type After struct {
	Event string
	After time.Duration
}

// ContextShape is the top-level shape of a stored context that SQL can check: its fields (no other)
// and the JSON type of each (Kinds: a jsonb_typeof name, "integer" for a number without a fraction,
// or "any"; with " or null" after it, OptionalKind, for an optional field, which also holds null),
// and its size: MaxText bounds the bytes of the context as PostgreSQL writes it out (0
// for none). A rewrite that adds defaults sets it to the context bound less their size, so that SQL
// never moves a context the new one would take past the bound; a context over it is decided by
// the caller, exactly.
type ContextShape struct {
	Fields, Kinds []string
	MaxText       int
}

// shapeFails is an SQL condition on the column context (three arguments: MaxText, Fields and
// Kinds): true when the context is longer than MaxText as text, has a field the shape lacks, or a
// value of another JSON type. (No question mark in it, a regular expression's included: the
// queries are written with ? for their arguments.)
const shapeFails = `(? > 0 AND octet_length(context::text) > ? OR EXISTS (
	SELECT 1 FROM jsonb_each(context) AS e(k, v)
	LEFT JOIN unnest(?::text[], ?::text[]) AS f(name, kind) ON f.name = e.k
	CROSS JOIN LATERAL (SELECT split_part(f.kind, ' ', 1) AS base, f.kind LIKE '% or null' AS nullable) AS s
	WHERE f.name IS NULL
		OR (s.base <> 'any' AND NOT (s.nullable AND jsonb_typeof(e.v) = 'null')
			AND jsonb_typeof(e.v) <> (CASE WHEN s.base = 'integer' THEN 'number' ELSE s.base END))
		OR (s.base = 'integer' AND jsonb_typeof(e.v) = 'number' AND e.v::text ~ '[.eE]')))`

// OptionalKind is the kind of a ContextShape for an optional field of kind: its JSON type, or null.
func OptionalKind(kind string) string { return kind + " or null" }

// args are the arguments of shapeFails.
func (c ContextShape) args() []any {
	return []any{c.MaxText, c.MaxText, pq.Array(c.Fields), pq.Array(c.Kinds)}
}

// moveStateQuery moves a batch of the running instances of one (version, state), in id order, with
// their audit rows, on PostgreSQL: one statement, no row through the client. The batch is locked
// first (FOR UPDATE), so that events sent to its instances meanwhile wait and then see the new
// version. The new context is Defaults with the old context's fields over it, less Drop. A context
// not of the shape is skipped. The instances' timers are replaced by those of ToState, counted
// from when each entered its state (a migration does not re-enter it).
const moveStateQuery = `
	WITH batch AS (
		SELECT id, context, revision FROM instances
		WHERE definition = ? AND state = ? AND version = ? AND NOT final AND id > ? AND NOT ` + shapeFails + `
		ORDER BY id LIMIT ?
		FOR UPDATE
	), moved AS (
		UPDATE instances i
		SET version = ?, state = ?, context = ?::jsonb || (i.context - ?::text[]), revision = i.revision + 1,
			final = ?, updated_at = ?
		FROM batch b WHERE i.id = b.id
		RETURNING i.id, i.revision, i.entered_at, b.context AS before, i.context AS after
	), untimed AS (
		DELETE FROM timers t USING moved WHERE t.instance_id = moved.id
	), armed AS (
		INSERT INTO timers (` + timerColumns + `)
		SELECT moved.id, moved.revision, a.idx, a.event, moved.entered_at + a.after, moved.entered_at + a.after, 0, ''
		FROM moved CROSS JOIN unnest(?::integer[], ?::text[], ?::interval[]) AS a(idx, event, after)
	), audited AS (
		INSERT INTO transitions (` + transitionColumns + `, actor_kind)
		SELECT id, revision, ?::text, ?::text, ?::text, 0, '[]', '{}', before, after, 'migration', ?::text, NULL, '',
			?::integer, ?::integer, ?::timestamptz, 'migration'
		FROM moved
		RETURNING instance_id
	)
	SELECT count(*) AS n, coalesce(max(instance_id), '') AS last FROM audited`

// InstanceMoveState moves the next batch of s's instances whose context has s.Shape (PostgreSQL
// only), each with its audit row, in the caller's transaction. It returns how many moved and the last
// id: fewer than s.Limit when the batch was the last one. Those of another shape stay.
func InstanceMoveState(ctx context.Context, tx *Tx, m MigrationBatch, s MoveState) (int, string, error) {
	if tx.Dialect != Postgres {
		return 0, "", errors.New("persistence: moving instances in SQL needs PostgreSQL")
	}
	at := timeArg(Postgres, m.At)
	tIdx, tEvents, tAfter := make([]int64, len(s.Timers)), make([]string, len(s.Timers)), make([]string, len(s.Timers))
	for i, t := range s.Timers {
		tIdx[i], tEvents[i], tAfter[i] = int64(i), t.Event, fmt.Sprintf("%d microseconds", t.After.Microseconds())
	}
	var out struct {
		N    int    `db:"n"`
		Last string `db:"last"`
	}
	args := append(append([]any{s.Definition, s.FromState, m.FromVersion, s.After}, s.Shape.args()...), s.Limit,
		m.ToVersion, s.ToState, jsonArg(s.Defaults, "{}"), pq.Array(s.Drop), s.Final, at,
		pq.Array(tIdx), pq.Array(tEvents), pq.Array(tAfter),
		m.Event, s.FromState, s.ToState, m.MigrationID, m.ToVersion, m.FromVersion, at)
	err := getContext(ctx, tx, &out, moveStateQuery, args...)
	if err != nil {
		return 0, "", translate(canceled(ctx, fmt.Errorf("persistence: move instances of %s version %d in state %q to version %d: %w",
			s.Definition, m.FromVersion, s.FromState, m.ToVersion, err)))
	}
	return out.N, out.Last, nil
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
