package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// advanceQuery writes an accepted transition on PostgreSQL in one statement: the instance's update,
// provided it is still at the revision read, and its audit row, inserted only from the updated row.
// There is no ON CONFLICT: a seq or idempotency key taken already fails the whole statement, so the
// update is never kept without its row (which matters when the statement is its own transaction).
const advanceQuery = advanceUpdate + advanceInsert

// advanceUpdate is the instance's update, provided it is still at the revision read.
const advanceUpdate = `
	WITH updated AS (
		UPDATE instances
		SET version = ?, state = ?, context = ?, revision = ?, final = ?, updated_at = ?, entered_at = ?
		WHERE id = ? AND revision = ?
		RETURNING id, revision
	)`

// advanceTimers changes the updated instance's timers: those of the state left are deleted when the
// flag says so, those of the state entered armed (arrays of index, event and due time) at the new
// revision. The deleted rows have an older revision than the armed ones, so the two never meet in
// the key.
const advanceTimers = `, untimed AS (
		DELETE FROM timers WHERE ?::boolean AND instance_id IN (SELECT id FROM updated)
	), armed AS (
		INSERT INTO timers (` + timerColumns + `)
		SELECT updated.id, updated.revision, a.idx, a.event, a.due, a.due, 0, ''
		FROM updated CROSS JOIN unnest(?::integer[], ?::text[], ?::timestamptz[]) AS a(idx, event, due)
	)`

// advanceOutbox inserts the transition's webhook deliveries (arrays of id, webhook, url,
// destination and body), as OutboxInsert does: a delivery waits when its instance and webhook have
// a pending or waiting one already, whose last is locked to decide (a dispatcher finishing it at
// the same moment either sees the new row or is seen to have finished).
const advanceOutbox = `, busy AS (
		SELECT w.webhook FROM unnest(?::text[]) AS w(webhook),
		LATERAL (SELECT 1 FROM outbox o WHERE o.instance_id = (SELECT id FROM updated) AND o.webhook = w.webhook
			AND o.status IN ('pending', 'waiting') ORDER BY o.seq DESC LIMIT 1 FOR UPDATE) last
	), outboxed AS (
		INSERT INTO outbox (` + outboxInsertColumns + `)
		SELECT r.id, updated.id, updated.revision, ?::text, ?::integer, r.webhook, r.url, r.destination, r.body,
			CASE WHEN r.webhook IN (SELECT webhook FROM busy) THEN 'waiting' ELSE 'pending' END, ?::timestamptz, ?::timestamptz
		FROM updated CROSS JOIN unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) AS r(id, webhook, url, destination, body)
	)`

// advanceQueries are the statements of InstanceAdvance, by what they write besides the update and
// the audit row: [timers][outbox].
var advanceQueries = [2][2]string{
	{advanceQuery, advanceUpdate + advanceOutbox + advanceInsert},
	{advanceUpdate + advanceTimers + advanceInsert, advanceUpdate + advanceTimers + advanceOutbox + advanceInsert},
}

const advanceInsert = `
	INSERT INTO transitions (` + transitionReadColumns + `)
	SELECT id, ?::bigint, ?::text, ?::text, ?::text, ?::integer, ?::jsonb, ?::jsonb, ?::jsonb, ?::jsonb,
		?::text, ?::text, ?::text, ?::text, ?::integer, ?::integer, ?::timestamptz, ?::text, ?::text
	FROM updated`

// InstanceAdvance writes an accepted transition: u, the instance's new state, provided it is still
// at u.ExpectRevision, and r, its audit row, together or not at all. ErrConflict when the instance
// is not at that revision (another transition came first), or r's seq or idempotency key is taken.
//
// On PostgreSQL it is one statement, so ex may be the database itself: the statement is then its
// own transaction, and an event costs two round trips (read, write) instead of five (BEGIN, SELECT
// ... FOR UPDATE, UPDATE, INSERT, COMMIT). SQLite cannot update in a WITH clause: there ex must be
// a transaction, and the update and the insert are two statements in it. u.Timers and u.Outbox, when
// set, are written in the same statement (or transaction).
func InstanceAdvance(ctx context.Context, ex Executor, u InstanceUpdateParams, r TransitionRow) error {
	if u.ID != r.InstanceID || u.Revision != r.Seq {
		return fmt.Errorf("persistence: advance instance %q to revision %d with transition %d of instance %q",
			u.ID, u.Revision, r.Seq, r.InstanceID)
	}
	if ex.dialect() != Postgres {
		tx, ok := ex.(*Tx)
		if !ok {
			return fmt.Errorf("persistence: advance instance %q: %s needs a transaction", u.ID, ex.dialect())
		}
		if err := InstanceUpdate(ctx, tx, u); err != nil {
			return err
		}
		if err := TransitionInsert(ctx, tx, r); err != nil {
			return err
		}
		if u.Timers != nil {
			if err := TimersReplace(ctx, tx, u.ID, u.Timers.Cancel, u.Revision, u.Timers.Arms); err != nil {
				return err
			}
		}
		return OutboxInsert(ctx, tx, u.Outbox)
	}
	timers, notify := 0, 0
	args := []any{u.Version, u.State, jsonArg(u.Context, "{}"), u.Revision, u.Final,
		timeArg(Postgres, u.UpdatedAt), timeArg(Postgres, u.EnteredAt), u.ID, u.ExpectRevision}
	if u.Timers != nil {
		timers = 1
		n := len(u.Timers.Arms)
		idx, events, dues := make([]int64, n), make([]string, n), make([]string, n)
		for i, a := range u.Timers.Arms {
			idx[i], events[i], dues[i] = int64(i), a.Event, a.DueAt.UTC().Format(time.RFC3339Nano)
		}
		args = append(args, u.Timers.Cancel, pq.Array(idx), pq.Array(events), pq.Array(dues))
	}
	if len(u.Outbox) > 0 {
		notify = 1
		n := len(u.Outbox)
		ids, hooks, urls, dests, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, o := range u.Outbox {
			if o.InstanceID != u.ID || o.Seq != u.Revision {
				return fmt.Errorf("persistence: advance instance %q to revision %d with the outbox row of %q %d", u.ID, u.Revision, o.InstanceID, o.Seq)
			}
			ids[i], hooks[i], urls[i], dests[i], bodies[i] = o.ID, o.Webhook, o.URL, o.Destination, string(o.Body)
		}
		first := u.Outbox[0]
		args = append(args, pq.Array(hooks), first.Definition, first.Version, timeArg(Postgres, first.NextTryAt),
			timeArg(Postgres, first.CreatedAt), pq.Array(ids), pq.Array(hooks), pq.Array(urls), pq.Array(dests), pq.Array(bodies))
	}
	query := advanceQueries[timers][notify]
	res, err := execContext(ctx, ex, query, append(args,
		r.Seq, r.Event, r.From, r.To, r.Branch,
		jsonArg(r.Guards, "[]"), jsonArg(r.Payload, "{}"),
		jsonArg(r.ContextBefore, "{}"), jsonArg(r.ContextAfter, "{}"),
		r.Source, r.RequestID, nullString(r.IdempotencyKey), r.RequestHash, r.DefinitionVersion,
		nullInt(r.FromVersion), timeArg(Postgres, r.At), nullString(r.Dropped), nullString(r.Actor))...)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: advance instance %q to revision %d: %w", u.ID, u.Revision, err)))
	}
	return conflictUnlessOne(res, "instance %q is not at revision %d", u.ID, u.ExpectRevision)
}
