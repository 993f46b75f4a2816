package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// MoveStates selects the running instances of some states of one version of a definition for
// InstanceMoveStates, and says where each state's go: all of a state to one state, their contexts
// rewritten by SQL. The states of a version move together, in one pass in id order, so that a batch
// takes the instances of a stretch of the table, whatever their states, rather than every tenth
// row of a much longer one: each page of the table is read and written once per batch that
// reaches it, not once per state.
type MoveStates struct {
	Definition string
	After      string // the last id of the previous batch
	Limit      int
	States     []StateMove
	Defaults   []byte // a JSON object: the new version's fields with their initial values; the old context's values win
	Drop       []string
	Shape      ContextShape // only contexts of this shape move; the others stay for the caller to decide
}

// StateMove is where the instances of one state go.
type StateMove struct {
	From, To string
	Final    bool    // To is final
	Timers   []After // the timers of To, counted from each instance's entered_at
}

// After is a timer that fires a time after its state was entered.
type After struct {
	Event string
	After time.Duration
}

// MovedStates is what InstanceMoveStates did with a batch.
type MovedStates struct {
	N     int              // the instances of the batch, moved or left (of another shape): fewer than Limit for the last one
	Last  string           // the last id of the batch
	Moved map[string]int64 // per state moved from
}

// Skipped is how many instances of the batch were left.
func (m MovedStates) Skipped() int64 {
	n := int64(m.N)
	for _, k := range m.Moved {
		n -= k
	}
	return n
}

// moveStatesQuery moves a batch of the running instances of some states of one version, in id
// order, with their audit rows, on PostgreSQL: one statement, no row through the client. The batch is
// locked first (FOR UPDATE), so that events sent to its instances meanwhile wait and then see the new
// version. The new context is Defaults with the old context's fields over it, less Drop. A context
// not of the shape stays (fits is false), locked until the batch commits. The instances' timers are
// replaced by those of their new state, counted from when each entered its state (a migration does
// not re-enter it). The batch is read through the index of the running instances of a version in id
// order (its ORDER BY is the index's: by id alone, the planner may walk the primary key, over every
// definition's instances); the shape is computed, not filtered on, so that its selectivity, which
// the planner cannot estimate, does not make it sort the whole version instead.
func moveStatesQuery(shape ContextShape) string {
	return `
	WITH m AS (
		SELECT * FROM unnest(?::text[], ?::text[], ?::boolean[]) AS m(from_state, to_state, final)
	), batch AS (
		SELECT id, state, context, revision, NOT ` + shape.fails() + ` AS fits
		FROM instances ` + shapeJoin + `
		WHERE definition = ? AND version = ? AND NOT final AND id > ? AND state = ANY(?::text[])
		ORDER BY definition, version, id LIMIT ?
		FOR UPDATE OF instances
	), moved AS (
		UPDATE instances i
		SET version = ?, state = m.to_state, context = ?::jsonb || (i.context - ?::text[]), revision = i.revision + 1,
			final = m.final, updated_at = ?
		FROM batch b JOIN m ON m.from_state = b.state
		WHERE i.id = b.id AND b.fits
		RETURNING i.id, i.revision, i.entered_at, b.state AS from_state, i.state AS to_state, b.context AS before, i.context AS after
	), untimed AS (
		DELETE FROM timers t USING moved WHERE t.instance_id = moved.id
	), armed AS (
		INSERT INTO timers (` + timerColumns + `)
		SELECT moved.id, moved.revision, a.idx, a.event, moved.entered_at + a.after, moved.entered_at + a.after, 0, ''
		FROM moved JOIN unnest(?::text[], ?::integer[], ?::text[], ?::interval[]) AS a(state, idx, event, after)
			ON a.state = moved.from_state
	), audited AS (
		INSERT INTO transitions (` + transitionColumns + `, actor_kind)
		SELECT id, revision, ?::text, from_state, to_state, 0, '[]', '{}', before, after, 'migration', ?::text, NULL, '',
			?::integer, ?::integer, ?::timestamptz, 'migration'
		FROM moved
		RETURNING from_state
	)
	SELECT (SELECT count(*) FROM batch) AS n, (SELECT coalesce(max(id), '') FROM batch) AS last,
		(SELECT coalesce(jsonb_object_agg(from_state, k), '{}')::text
			FROM (SELECT from_state, count(*) AS k FROM audited GROUP BY from_state) AS c) AS moved`
}

// InstanceMoveStates moves the next batch of s's instances whose context has s.Shape (PostgreSQL
// only), each with its audit row, in the caller's transaction, and says how many each state had
// moved. Those of another shape stay, counted in the batch (MovedStates.Skipped).
func InstanceMoveStates(ctx context.Context, tx *Tx, m MigrationBatch, s MoveStates) (MovedStates, error) {
	if tx.Dialect != Postgres {
		return MovedStates{}, errors.New("persistence: moving instances in SQL needs PostgreSQL")
	}
	at := timeArg(Postgres, m.At)
	from, to, finals := make([]string, len(s.States)), make([]string, len(s.States)), make([]bool, len(s.States))
	var tStates, tEvents, tAfter []string
	var tIdx []int64
	for i, st := range s.States {
		from[i], to[i], finals[i] = st.From, st.To, st.Final
		for j, t := range st.Timers {
			tStates, tIdx = append(tStates, st.From), append(tIdx, int64(j))
			tEvents, tAfter = append(tEvents, t.Event), append(tAfter, fmt.Sprintf("%d microseconds", t.After.Microseconds()))
		}
	}
	var out struct {
		N     int    `db:"n"`
		Last  string `db:"last"`
		Moved string `db:"moved"`
	}
	args := append([]any{pq.Array(from), pq.Array(to), pq.Array(finals)}, s.Shape.joinArgs()...)
	args = append(args, s.Definition, m.FromVersion, s.After, pq.Array(from), s.Limit,
		m.ToVersion, jsonArg(s.Defaults, "{}"), pq.Array(s.Drop), at,
		pq.Array(tStates), pq.Array(tIdx), pq.Array(tEvents), pq.Array(tAfter),
		m.Event, m.MigrationID, m.ToVersion, m.FromVersion, at)
	if err := getContext(ctx, tx, &out, moveStatesQuery(s.Shape), args...); err != nil {
		return MovedStates{}, translate(canceled(ctx, fmt.Errorf("persistence: move instances of %s version %d in states %q to version %d: %w",
			s.Definition, m.FromVersion, from, m.ToVersion, err)))
	}
	res := MovedStates{N: out.N, Last: out.Last, Moved: map[string]int64{}}
	if err := json.Unmarshal([]byte(out.Moved), &res.Moved); err != nil {
		return MovedStates{}, fmt.Errorf("persistence: the counts of a migration's batch: %w", err)
	}
	return res, nil
}
