package persistence

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// The one statement that writes an accepted transition on PostgreSQL: the instance's update,
// provided it is still at the revision read (updated), then, from the updated row only, the
// timers' change (untimed, armed), the webhooks' outbox rows (busy, outboxed), the messages it
// sends (sent) and the audit row.
// There is no ON CONFLICT: a seq or idempotency key taken already fails the whole statement, so the
// update is never kept without its row (which matters when the statement is its own transaction).
// Each part below is its SQL; advanceStatement puts each next to its arguments.

// advanceUpdate is the instance's update, provided it is still at the revision read.
const advanceUpdate = `
	WITH updated AS (
		UPDATE instances
		SET version = ?, state = ?, context = ?, revision = ?, final = ?, updated_at = ?, entered_at = ?,
			children = COALESCE(?::jsonb, children),
			assignees = CASE WHEN ?::boolean THEN ?::jsonb ELSE assignees END,
			due_at = CASE WHEN ?::boolean THEN ?::timestamptz ELSE due_at END
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

// advanceMessages inserts the messages the transition sends (arrays of id, target, event and
// payload, in the order sent), as MessagesInsert does: each is the next of its (sender, target)
// pair, after the pair's rows still in the table.
const advanceMessages = `, sent AS (
		INSERT INTO messages (` + messageInsertColumns + `)
		SELECT m.id, updated.id, updated.revision, m.target,
			COALESCE((SELECT max(x.seq) FROM messages x WHERE x.sender = updated.id AND x.target = m.target), 0)
				+ row_number() OVER (PARTITION BY m.target ORDER BY m.ord),
			m.event, m.payload::jsonb, ?::timestamptz, m.child_final
		FROM updated CROSS JOIN unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::boolean[])
			WITH ORDINALITY AS m(id, target, event, payload, child_final, ord)
	)`

// advanceInsert is the audit row, inserted from the updated row.
const advanceInsert = `
	INSERT INTO transitions (` + transitionReadColumns + `)
	SELECT id, ?::bigint, ?::text, ?::text, ?::text, ?::integer, ?::jsonb, ?::jsonb, ?::jsonb, ?::jsonb,
		?::text, ?::text, ?::text, ?::text, ?::integer, ?::integer, ?::timestamptz, ?::text, ?::text, ?::text
	FROM updated`

// advanceQueries are the eight forms of the statement (with or without timers, with or without
// outbox rows, with or without messages), prepared at Open.
var advanceQueries = func() []string {
	var out []string
	for _, timers := range []string{"", advanceTimers} {
		for _, outbox := range []string{"", advanceOutbox} {
			for _, messages := range []string{"", advanceMessages} {
				out = append(out, advanceUpdate+timers+outbox+messages+advanceInsert)
			}
		}
	}
	return out
}()

// statement is SQL written part by part, each part with its arguments.
type statement struct {
	sql  strings.Builder
	args []any
}

func (st *statement) add(sql string, args ...any) {
	st.sql.WriteString(sql)
	st.args = append(st.args, args...)
}

// advanceStatement is InstanceAdvance's statement on PostgreSQL, and its arguments.
func advanceStatement(u InstanceUpdateParams, r TransitionRow) (string, []any) {
	var st statement
	st.add(advanceUpdate, u.Version, u.State, jsonArg(u.Context, "{}"), u.Revision, u.Final,
		timeArg(Postgres, u.UpdatedAt), timeArg(Postgres, u.EnteredAt), jsonOrNull(u.Children))
	st.add("", u.setTask(Postgres)...)
	st.add("", u.ID, u.ExpectRevision)
	if t := u.Timers; t != nil {
		st.add(advanceTimers, append([]any{t.Cancel}, armArrays(t.Arms)...)...)
	}
	if len(u.Outbox) > 0 {
		first, arrays := u.Outbox[0], outboxArrays(u.Outbox)
		st.add(advanceOutbox, arrays[1], first.Definition, first.Version, timeArg(Postgres, first.NextTryAt),
			timeArg(Postgres, first.CreatedAt))
		st.add("", arrays...)
	}
	if len(u.Messages) > 0 {
		st.add(advanceMessages, timeArg(Postgres, u.Messages[0].CreatedAt))
		st.add("", messageArrays(u.Messages)...)
	}
	st.add(advanceInsert, advanceRowArgs(r)...)
	return st.sql.String(), st.args
}

// armArrays is the timers armed as the arrays of index, event and due time that the PostgreSQL
// statement and Citus's function take.
func armArrays(arms []Arm) []any {
	n := len(arms)
	idx, events, dues := make([]int64, n), make([]string, n), make([]string, n)
	for i, a := range arms {
		idx[i], events[i], dues[i] = int64(i), a.Event, a.DueAt.UTC().Format(time.RFC3339Nano)
	}
	return []any{pq.Array(idx), pq.Array(events), pq.Array(dues)}
}

// outboxArrays is the webhook deliveries as the arrays of id, webhook, url, destination and body.
func outboxArrays(rows []OutboxRow) []any {
	n := len(rows)
	ids, hooks, urls, dests, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, o := range rows {
		ids[i], hooks[i], urls[i], dests[i], bodies[i] = o.ID, o.Webhook, o.URL, o.Destination, string(o.Body)
	}
	return []any{pq.Array(ids), pq.Array(hooks), pq.Array(urls), pq.Array(dests), pq.Array(bodies)}
}

// messageArrays is the messages sent as the arrays of id, target, event, payload and child_final.
func messageArrays(rows []MessageRow) []any {
	n := len(rows)
	ids, targets, events, payloads, finals := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]bool, n)
	for i, m := range rows {
		ids[i], targets[i], events[i], payloads[i], finals[i] = m.ID, m.Target, m.Event, jsonArg(m.Payload, "{}").(string), m.ChildFinal
	}
	return []any{pq.Array(ids), pq.Array(targets), pq.Array(events), pq.Array(payloads), pq.Array(finals)}
}

// advanceRowArgs is the audit row's values, in the order of transitionReadColumns.
func advanceRowArgs(r TransitionRow) []any {
	return []any{r.Seq, r.Event, r.From, r.To, r.Branch,
		jsonArg(r.Guards, "[]"), jsonArg(r.Payload, "{}"), jsonArg(r.ContextBefore, "{}"), jsonArg(r.ContextAfter, "{}"),
		r.Source, r.RequestID, nullString(r.IdempotencyKey), r.RequestHash, r.DefinitionVersion,
		nullInt(r.FromVersion), timeArg(Postgres, r.At), nullString(r.Dropped), nullString(r.Actor), r.ActorKind}
}

// InstanceAdvance writes an accepted transition: u, the instance's new state, provided it is still
// at u.ExpectRevision, and r, its audit row, together or not at all, with u.Timers and u.Outbox
// when set. ErrConflict when the instance is not at that revision (another transition came first),
// or r's seq or idempotency key is taken.
//
// ex may be the caller's transaction or the database itself, on either database: on PostgreSQL the
// write is one statement (its own transaction when ex is the database: an event then costs two
// round trips, the read and this, instead of five); SQLite cannot update in a WITH clause, so there
// the writes are statements in ex, or in a short transaction of their own when ex is the database
// (SQLite's write lock is held for the write, never while the event is decided).
func InstanceAdvance(ctx context.Context, ex Executor, u InstanceUpdateParams, r TransitionRow) error {
	if err := checkAdvance(u, r); err != nil {
		return err
	}
	return advanceOn(ctx, ex, u, r)
}

// advanceOn is InstanceAdvance once checked: the one statement on PostgreSQL, the statements of
// advanceInTx on SQLite (in a transaction of their own when ex is the database).
func advanceOn(ctx context.Context, ex Executor, u InstanceUpdateParams, r TransitionRow) error {
	// On Citus the one statement would be pulled to the coordinator (its INSERT ... SELECT reads a
	// CTE): on its own the write is one call of a function the worker holding the instance runs
	// (advanceCitus); in the caller's transaction, the statements of advanceInTx, each filtering on
	// the instance, so each is routed to that worker and the transaction stays on it.
	switch ex := ex.(type) {
	case *DB:
		if ex.Citus {
			return advanceCitusKeyed(ctx, ex, u, r)
		}
		if ex.Dialect != Postgres {
			return ex.WithTx(ctx, func(tx *Tx) error { return advanceInTx(ctx, tx, u, r) })
		}
	case *Tx:
		if ex.Dialect != Postgres || ex.db.Citus {
			return advanceInTx(ctx, ex, u, r)
		}
	}
	query, args := advanceStatement(u, r)
	res, err := execContext(ctx, ex, query, args...)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: advance instance %q to revision %d: %w", u.ID, u.Revision, err)))
	}
	return conflictUnlessOne(res, "instance %q is not at revision %d", u.ID, u.ExpectRevision)
}

// checkAdvance checks that an update, its audit row, its outbox rows and its messages are of one
// instance and one revision.
func checkAdvance(u InstanceUpdateParams, r TransitionRow) error {
	if u.ID != r.InstanceID || u.Revision != r.Seq {
		return fmt.Errorf("persistence: advance instance %q to revision %d with transition %d of instance %q",
			u.ID, u.Revision, r.Seq, r.InstanceID)
	}
	for _, o := range u.Outbox {
		if o.InstanceID != u.ID || o.Seq != u.Revision {
			return fmt.Errorf("persistence: advance instance %q to revision %d with the outbox row of %q %d", u.ID, u.Revision, o.InstanceID, o.Seq)
		}
	}
	for _, m := range u.Messages {
		if m.Sender != u.ID || m.SenderSeq != u.Revision {
			return fmt.Errorf("persistence: advance instance %q to revision %d with the message of %q %d", u.ID, u.Revision, m.Sender, m.SenderSeq)
		}
	}
	return nil
}

// advanceInTx is InstanceAdvance as statements in a transaction (SQLite): the update, then the
// rest (advanceEffects).
func advanceInTx(ctx context.Context, tx *Tx, u InstanceUpdateParams, r TransitionRow) error {
	if err := InstanceUpdate(ctx, tx, u); err != nil {
		return err
	}
	return advanceEffects(ctx, tx, u, r)
}

// advanceEffects is what advanceInTx writes after the update: the audit row, the timers' change,
// the outbox rows and the messages.
func advanceEffects(ctx context.Context, tx *Tx, u InstanceUpdateParams, r TransitionRow) error {
	if err := TransitionInsert(ctx, tx, r); err != nil {
		return err
	}
	if u.Timers != nil {
		if err := TimersReplace(ctx, tx, u.ID, u.Timers.Cancel, u.Revision, u.Timers.Arms); err != nil {
			return err
		}
	}
	if err := OutboxInsert(ctx, tx, u.Outbox); err != nil {
		return err
	}
	return MessagesInsert(ctx, tx, u.Messages)
}
