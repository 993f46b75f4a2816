package persistence

import (
	"context"
	"fmt"
	"strings"
)

// InstanceAdvanceMany writes several transitions of one instance in tx, in three statements
// whatever their number: the pending messages that caused them are deleted (ids), their audit rows
// r inserted (seqs u.ExpectRevision+1 to u.Revision, in order), and the instance updated to u, its
// state after the last. The transitions must have no other effect (timers, outbox rows, messages,
// children): they are the stays and the refusals of a batch of messages to one target. ErrConflict
// when a message is not pending any more, the instance is not at u.ExpectRevision, or a seq is
// taken: the caller's transaction then fails as a whole.
func InstanceAdvanceMany(ctx context.Context, tx *Tx, u InstanceUpdateParams, r []TransitionRow, ids []string) error {
	if len(r) == 0 {
		return nil
	}
	if u.Timers != nil || len(u.Outbox) > 0 || len(u.Messages) > 0 || int64(len(r)) != u.Revision-u.ExpectRevision {
		return fmt.Errorf("persistence: advance instance %q by %d transitions from %d to %d, with effects", u.ID, len(r), u.ExpectRevision, u.Revision)
	}
	for i, t := range r {
		if t.InstanceID != u.ID || t.Seq != u.ExpectRevision+int64(i)+1 {
			return fmt.Errorf("persistence: advance instance %q from %d with transition %d of %q", u.ID, u.ExpectRevision, t.Seq, t.InstanceID)
		}
	}
	if err := MessagesDelete(ctx, tx, ids); err != nil {
		return err
	}
	if err := InstanceUpdate(ctx, tx, u); err != nil {
		return err
	}
	if err := transitionsInsert(ctx, tx, r); err != nil {
		return fmt.Errorf("persistence: the transitions of instance %q: %w", u.ID, err)
	}
	return nil
}

// transitionsInsert inserts audit rows: on PostgreSQL in one statement from arrays (unnest), whose
// text is the same whatever their number (a row of 20 placeholders each would be parsed and
// planned afresh, and cost more than the insert); on SQLite (embedded: no round trips) one
// statement prepared once and run for each row, as parsing is most of what SQLite's inserts cost.
// ErrConflict when a seq or an idempotency key is taken: the caller's transaction then fails as a
// whole.
func transitionsInsert(ctx context.Context, tx *Tx, r []TransitionRow) error {
	d := tx.Dialect
	if d == Postgres {
		return transitionsInsertArrays(ctx, tx, r)
	}
	st, err := prepareInTx(ctx, tx, `INSERT INTO transitions (`+transitionReadColumns+`) VALUES (`+placeholders(20)+`)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, t := range r {
		if _, err := st.ExecContext(ctx, t.InstanceID, t.Seq, t.Event, t.From, t.To, t.Branch,
			jsonArg(t.Guards, "[]"), jsonArg(t.Payload, "{}"), jsonArg(t.ContextBefore, "{}"), jsonArg(t.ContextAfter, "{}"),
			t.Source, t.RequestID, nullString(t.IdempotencyKey), t.RequestHash, t.DefinitionVersion,
			nullInt(t.FromVersion), timeArg(d, t.At), nullString(t.Dropped), nullString(t.Actor), t.ActorKind); err != nil {
			return translate(canceled(ctx, fmt.Errorf("insert transition %d of instance %q: %w", t.Seq, t.InstanceID, err)))
		}
	}
	return nil
}

// transitionsInsertArrays is transitionsInsert on PostgreSQL: a column each as an array. The
// columns that may be NULL go as ” (0 for from_version), which is what NULL stands for in them.
const transitionsInsertArraysQuery = `INSERT INTO transitions (` + transitionReadColumns + `)
	SELECT id, seq, event, from_state, to_state, branch, guards, payload, context_before, context_after, source, request_id,
		NULLIF(idempotency_key, ''), request_hash, definition_version, NULLIF(from_version, 0), at, NULLIF(dropped, ''),
		NULLIF(actor, ''), actor_kind
	FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::integer[], ?::jsonb[], ?::jsonb[], ?::jsonb[], ?::jsonb[],
		?::text[], ?::text[], ?::text[], ?::text[], ?::integer[], ?::integer[], ?::timestamptz[], ?::text[], ?::text[], ?::text[])
		AS r(id, seq, event, from_state, to_state, branch, guards, payload, context_before, context_after, source, request_id,
			idempotency_key, request_hash, definition_version, from_version, at, dropped, actor, actor_kind)`

func transitionsInsertArrays(ctx context.Context, tx *Tx, r []TransitionRow) error {
	a := newRowArrays(len(r))
	for i, t := range r {
		a.add(i, t)
	}
	if _, err := execContext(ctx, tx, transitionsInsertArraysQuery, a.args()...); err != nil {
		return translate(canceled(ctx, fmt.Errorf("insert %d transitions: %w", len(r), err)))
	}
	return nil
}

// placeholders is n comma-separated placeholders.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// MessagesDelete deletes pending messages, all of them or none: ErrConflict when one is not
// pending any more (another process delivered it), and the caller's transaction then fails.
func MessagesDelete(ctx context.Context, tx *Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	res, err := execContext(ctx, tx, `DELETE FROM messages WHERE status = 'pending' AND id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: delete %d messages: %w", len(ids), err)))
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(ids)) {
		return fmt.Errorf("persistence: %d of %d messages were pending: %w", n, len(ids), ErrConflict)
	}
	return nil
}
