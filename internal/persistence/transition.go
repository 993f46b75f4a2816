package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// TransitionRow is one row of the audit log (package audit is its interface: see audit.Row).
type TransitionRow struct {
	InstanceID        string
	Seq               int64 // 1, 2, 3... per instance with no gap: the instance's revision after it
	Event             string
	From, To          string
	Branch            int
	Guards            []byte // a JSON array; nil is stored as []
	Payload           []byte // a JSON object; nil is stored as {}
	ContextBefore     []byte // a JSON object; nil is stored as {}
	ContextAfter      []byte // a JSON object; nil is stored as {}
	Source            string // api, timer, migration (audit's Source constants)
	RequestID         string
	IdempotencyKey    string // "" (no key) is stored as NULL, and never conflicts
	RequestHash       string // of the request, to tell a replay from a mismatch
	DefinitionVersion int
	FromVersion       int // a migration's: the version the instance came from; 0 (NULL) otherwise
	At                time.Time
	Dropped           string // a timer's event the state refused: why ("" is stored as NULL); nothing else changed
	Actor             string // the name of the actor that sent the event ("" is stored as NULL)
	ActorKind         string // its kind: user, timer, message, migration or system ("" for none recorded)
}

// TransitionListParams selects a page of an instance's transitions, in seq order.
type TransitionListParams struct {
	InstanceID string
	AfterSeq   int64 // the transitions whose seq is greater (0 for the first page)
	Limit      int   // at most this many; 0 or less for no limit
	MaxBytes   int   // stop after the row that takes their Bytes past it; 0 for no bound
}

// Bytes is about the size of the row as JSON: its stored JSON and text, and a little for the rest.
func (r TransitionRow) Bytes() int {
	return len(r.Guards) + len(r.Payload) + len(r.ContextBefore) + len(r.ContextAfter) + len(r.Event) + len(r.From) +
		len(r.To) + len(r.RequestID) + len(r.IdempotencyKey) + len(r.Dropped) + len(r.Actor) + rowOverhead
}

// rowOverhead is what a row's JSON adds to its stored values (names, numbers, times), in Bytes.
const rowOverhead = 256

// transitionRow is TransitionRow as scanned.
type transitionRow struct {
	InstanceID        string         `db:"instance_id"`
	Seq               int64          `db:"seq"`
	Event             string         `db:"event"`
	From              string         `db:"from_state"`
	To                string         `db:"to_state"`
	Branch            int            `db:"branch"`
	Guards            []byte         `db:"guards"`
	Payload           []byte         `db:"payload"`
	ContextBefore     []byte         `db:"context_before"`
	ContextAfter      []byte         `db:"context_after"`
	Source            string         `db:"source"`
	RequestID         string         `db:"request_id"`
	IdempotencyKey    sql.NullString `db:"idempotency_key"`
	RequestHash       string         `db:"request_hash"`
	DefinitionVersion int            `db:"definition_version"`
	FromVersion       sql.NullInt64  `db:"from_version"`
	At                dbTime         `db:"at"`
	Dropped           sql.NullString `db:"dropped"`
	Actor             sql.NullString `db:"actor"`
	ActorKind         string         `db:"actor_kind"`
}

func (r transitionRow) row() TransitionRow {
	return TransitionRow{
		InstanceID: r.InstanceID, Seq: r.Seq, Event: r.Event, From: r.From, To: r.To,
		Branch: r.Branch, Guards: r.Guards, Payload: r.Payload,
		ContextBefore: r.ContextBefore, ContextAfter: r.ContextAfter, Source: r.Source,
		RequestID: r.RequestID, IdempotencyKey: r.IdempotencyKey.String, RequestHash: r.RequestHash,
		DefinitionVersion: r.DefinitionVersion, FromVersion: int(r.FromVersion.Int64), At: r.At.Time(),
		Dropped: r.Dropped.String, Actor: r.Actor.String, ActorKind: r.ActorKind,
	}
}

// transitionColumns are the columns every insert sets; dropped and actor only by TransitionInsert
// and InstanceAdvance (the migrations' inserts leave them NULL), and read with the rest
// (transitionReadColumns).
const (
	transitionColumns = `instance_id, seq, event, from_state, to_state, branch, guards, payload, ` +
		`context_before, context_after, source, request_id, idempotency_key, request_hash, definition_version, from_version, at`
	transitionReadColumns = transitionColumns + `, dropped, actor, actor_kind`
)

// The queries of the transition functions that are prepared on PostgreSQL (see preparedQueries).
const (
	transitionInsertQuery = `
		INSERT INTO transitions (` + transitionReadColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`
	transitionByKeyQuery = `
		SELECT ` + transitionReadColumns + ` FROM transitions
		WHERE instance_id = ? AND idempotency_key = ?`
)

// TransitionInsert appends a row to the audit log. ErrConflict when the instance has that seq or
// that idempotency key already; the transaction stays usable (to read the first answer of the
// key, for instance).
func TransitionInsert(ctx context.Context, tx *Tx, r TransitionRow) error {
	d := tx.Dialect
	res, err := execContext(ctx, tx, transitionInsertQuery,
		r.InstanceID, r.Seq, r.Event, r.From, r.To, r.Branch,
		jsonArg(r.Guards, "[]"), jsonArg(r.Payload, "{}"),
		jsonArg(r.ContextBefore, "{}"), jsonArg(r.ContextAfter, "{}"),
		r.Source, r.RequestID, nullString(r.IdempotencyKey), r.RequestHash, r.DefinitionVersion,
		nullInt(r.FromVersion), timeArg(d, r.At), nullString(r.Dropped), nullString(r.Actor), r.ActorKind)
	if err != nil {
		return translate(fmt.Errorf("persistence: insert transition %d of instance %q: %w", r.Seq, r.InstanceID, err))
	}
	return conflictUnlessOne(res, "instance %q has transition %d or idempotency key %q already",
		r.InstanceID, r.Seq, r.IdempotencyKey)
}

// TransitionGetByIdempotencyKey returns the transition of an instance recorded with an idempotency
// key. ErrNotFound when there is none (or key is "").
func TransitionGetByIdempotencyKey(ctx context.Context, ex Executor, instanceID, key string) (TransitionRow, error) {
	if key == "" {
		return TransitionRow{}, fmt.Errorf("persistence: transition of instance %q with an empty idempotency key: %w", instanceID, ErrNotFound)
	}
	var r transitionRow
	if err := getOf(ctx, ex, instanceID, &r, transitionByKeyQuery, instanceID, key); err != nil {
		return TransitionRow{}, notFound(err, "transition of instance %q with idempotency key %q", instanceID, key)
	}
	return r.row(), nil
}

// TransitionList returns a page of an instance's transitions in seq order (keyset pagination: pass
// the last seq of a page as AfterSeq for the next).
func TransitionList(ctx context.Context, ex Executor, p TransitionListParams) ([]TransitionRow, error) {
	var b strings.Builder
	b.WriteString(`SELECT ` + transitionReadColumns + ` FROM transitions WHERE instance_id = ? AND seq > ? ORDER BY seq`)
	args := []any{p.InstanceID, p.AfterSeq}
	if p.Limit > 0 {
		b.WriteString(` LIMIT ?`)
		args = append(args, p.Limit)
	}
	out, err := selectBounded(ctx, ex, p.MaxBytes, transitionRow.row, b.String(), args...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list transitions of instance %q: %w", p.InstanceID, err)))
	}
	return out, nil
}

// TransitionGet returns the transition seq of an instance. ErrNotFound when it has none (yet).
func TransitionGet(ctx context.Context, ex Executor, instanceID string, seq int64) (TransitionRow, error) {
	var r transitionRow
	err := getContext(ctx, ex, &r, `SELECT `+transitionReadColumns+` FROM transitions WHERE instance_id = ? AND seq = ?`, instanceID, seq)
	if err != nil {
		return TransitionRow{}, notFound(err, "transition %d of instance %q", seq, instanceID)
	}
	return r.row(), nil
}
