package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// advanceRowsQuery writes the transitions of several instances in one statement on PostgreSQL, a
// group commit's (AdvanceGroup) in one round trip and one commit: advanceStatement's parts with
// arrays for arguments, a row of each per transition. Each instance is updated on the condition
// that it is still at the revision read (updated); from the updated rows only, their timers are
// cancelled (untimed) and armed (armed) and their audit rows inserted (logged). It returns the ids
// of the instances updated: the others had moved on, and nothing of theirs is written. A seq or
// idempotency key taken fails the whole statement (no ON CONFLICT, as in advanceStatement).
const advanceRowsQuery = `
	WITH u AS (
		SELECT * FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::integer[], ?::text[], ?::text[], ?::boolean[],
			?::text[], ?::text[], ?::text[], ?::boolean[], ?::text[], ?::text[], ?::boolean[])
			AS u(id, expect, rev, version, state, context, final, updated, entered, children, set_task, assignees, due, cancel)
	), updated AS (
		UPDATE instances i SET version = u.version, state = u.state, context = u.context::jsonb, revision = u.rev,
			final = u.final, updated_at = u.updated::timestamptz, entered_at = u.entered::timestamptz,
			children = COALESCE(NULLIF(u.children, '')::jsonb, i.children),
			assignees = CASE WHEN u.set_task THEN NULLIF(u.assignees, '')::jsonb ELSE i.assignees END,
			due_at = CASE WHEN u.set_task THEN NULLIF(u.due, '')::timestamptz ELSE i.due_at END
		FROM u WHERE i.id = u.id AND i.revision = u.expect
		RETURNING i.id, i.revision, u.cancel
	), untimed AS (
		DELETE FROM timers WHERE instance_id IN (SELECT id FROM updated WHERE cancel)
	), armed AS (
		INSERT INTO timers (` + timerColumns + `)
		SELECT updated.id, updated.revision, a.idx, a.event, a.due, a.due, 0, ''
		FROM unnest(?::text[], ?::integer[], ?::text[], ?::timestamptz[]) AS a(instance_id, idx, event, due)
		JOIN updated ON updated.id = a.instance_id
	), logged AS (
		INSERT INTO transitions (` + transitionReadColumns + `)
		SELECT r.instance_id, r.seq, r.event, r.from_state, r.to_state, r.branch, r.guards::jsonb, r.payload::jsonb,
			r.context_before::jsonb, r.context_after::jsonb, r.source, r.request_id, NULLIF(r.idempotency_key, ''), r.request_hash,
			r.definition_version, NULLIF(r.from_version, 0), r.at::timestamptz, NULLIF(r.dropped, ''), NULLIF(r.actor, ''), r.actor_kind
		FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::integer[], ?::text[], ?::text[], ?::text[], ?::text[],
			?::text[], ?::text[], ?::text[], ?::text[], ?::integer[], ?::integer[], ?::text[], ?::text[], ?::text[], ?::text[])
			AS r(instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before, context_after,
				source, request_id, idempotency_key, request_hash, definition_version, from_version, at, dropped, actor, actor_kind)
		JOIN updated ON updated.id = r.instance_id AND updated.revision = r.seq
	)
	SELECT id FROM updated`

// rowsAdvanceable reports whether advanceRowsQuery can write items: PostgreSQL, no outbox rows
// and no messages (their statements stay advanceStatement's), each instance once.
func rowsAdvanceable(d Dialect, items []Advance) bool {
	if d != Postgres {
		return false
	}
	seen := make(map[string]struct{}, len(items))
	for _, it := range items {
		if len(it.Update.Outbox) > 0 || len(it.Update.Messages) > 0 {
			return false
		}
		if _, dup := seen[it.Update.ID]; dup {
			return false
		}
		seen[it.Update.ID] = struct{}{}
	}
	return true
}

// advanceRows writes items in one statement of their own (advanceRowsQuery), and reports which
// were written: an item not written had moved on (ErrConflict, nothing of it written). An error
// is the statement's, and then nothing was written (or, with a connection broken during it, its
// outcome is unknown).
func advanceRows(ctx context.Context, db *DB, items []Advance) ([]bool, error) {
	n := len(items)
	ids, states, contexts, updated, entered, children := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n)
	assignees, dues := make([]string, n), make([]string, n)
	expects, revs, versions := make([]int64, n), make([]int64, n), make([]int64, n)
	finals, setTask, cancel := make([]bool, n), make([]bool, n), make([]bool, n)
	var armIDs, armEvents, armDues []string
	var armIdx []int64
	r := newRowArrays(n)
	for i, it := range items {
		u := it.Update
		ids[i], states[i], contexts[i], children[i] = u.ID, u.State, jsonArg(u.Context, "{}").(string), string(u.Children)
		expects[i], revs[i], versions[i], finals[i] = u.ExpectRevision, u.Revision, int64(u.Version), u.Final
		updated[i], entered[i] = pgTimeText(u.UpdatedAt), pgTimeText(u.EnteredAt)
		if u.Task != nil {
			setTask[i] = true
			if a, ok := u.Task.assigneesArg().(string); ok {
				assignees[i] = a
			}
			if !u.Task.DueAt.IsZero() {
				dues[i] = pgTimeText(u.Task.DueAt)
			}
		}
		if t := u.Timers; t != nil {
			cancel[i] = t.Cancel
			for k, a := range t.Arms {
				armIDs, armIdx, armEvents, armDues = append(armIDs, u.ID), append(armIdx, int64(k)), append(armEvents, a.Event),
					append(armDues, a.DueAt.UTC().Format(time.RFC3339Nano))
			}
		}
		r.add(i, it.Row)
	}
	args := []any{pq.Array(ids), pq.Array(expects), pq.Array(revs), pq.Array(versions), pq.Array(states), pq.Array(contexts),
		pq.Array(finals), pq.Array(updated), pq.Array(entered), pq.Array(children), pq.Array(setTask), pq.Array(assignees),
		pq.Array(dues), pq.Array(cancel),
		pq.Array(armIDs), pq.Array(armIdx), pq.Array(armEvents), pq.Array(armDues)}
	args = append(args, r.args()...)

	var written []string
	var err error
	if st := db.prepared(ctx, advanceRowsQuery); st != nil {
		err = st.SelectContext(ctx, &written, args...)
	} else {
		err = selectContext(ctx, db, &written, advanceRowsQuery, args...)
	}
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: advance %d instances: %w", n, err)))
	}
	done := make(map[string]struct{}, len(written))
	for _, id := range written {
		done[id] = struct{}{}
	}
	out := make([]bool, n)
	for i, id := range ids {
		_, out[i] = done[id]
	}
	return out, nil
}

// pgTimeText is t as timestamptz text, to the microsecond PostgreSQL keeps.
func pgTimeText(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

// rowArrays are audit rows as a column per array, for advanceRowsQuery and
// transitionsInsertArraysQuery (both take them in the order of args).
type rowArrays struct {
	instance, event, from, to, guards, payload, before, after, source, request, key, hash, at, dropped, actor, kind []string
	seq                                                                                                             []int64
	branch, version, fromVersion                                                                                    []int64
}

func newRowArrays(n int) *rowArrays {
	s := func() []string { return make([]string, n) }
	i := func() []int64 { return make([]int64, n) }
	return &rowArrays{instance: s(), event: s(), from: s(), to: s(), guards: s(), payload: s(), before: s(), after: s(), source: s(),
		request: s(), key: s(), hash: s(), at: s(), dropped: s(), actor: s(), kind: s(), seq: i(), branch: i(), version: i(), fromVersion: i()}
}

func (a *rowArrays) add(i int, r TransitionRow) {
	a.instance[i], a.seq[i], a.event[i], a.from[i], a.to[i], a.branch[i] = r.InstanceID, r.Seq, r.Event, r.From, r.To, int64(r.Branch)
	a.guards[i], a.payload[i] = jsonArg(r.Guards, "[]").(string), jsonArg(r.Payload, "{}").(string)
	a.before[i], a.after[i] = jsonArg(r.ContextBefore, "{}").(string), jsonArg(r.ContextAfter, "{}").(string)
	a.source[i], a.request[i], a.key[i], a.hash[i] = r.Source, r.RequestID, r.IdempotencyKey, r.RequestHash
	a.version[i], a.fromVersion[i], a.at[i] = int64(r.DefinitionVersion), int64(r.FromVersion), pgTimeText(r.At)
	a.dropped[i], a.actor[i], a.kind[i] = r.Dropped, r.Actor, r.ActorKind
}

// args are the arrays in advanceRowsQuery's order of the transitions' columns.
func (a *rowArrays) args() []any {
	return []any{pq.Array(a.instance), pq.Array(a.seq), pq.Array(a.event), pq.Array(a.from), pq.Array(a.to), pq.Array(a.branch),
		pq.Array(a.guards), pq.Array(a.payload), pq.Array(a.before), pq.Array(a.after), pq.Array(a.source), pq.Array(a.request),
		pq.Array(a.key), pq.Array(a.hash), pq.Array(a.version), pq.Array(a.fromVersion), pq.Array(a.at), pq.Array(a.dropped),
		pq.Array(a.actor), pq.Array(a.kind)}
}
