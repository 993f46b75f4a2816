// Package audit is fsmd's audit log: one row per accepted event (or timer, or migration) of an
// instance, written in the transaction that changes the instance, read back as the instance's
// history.
//
// audit never begins a transaction: Append takes the caller's, so the instance update and its audit
// row commit or vanish together, and the reads take whatever Executor they are given (a *DB, or the
// caller's *Tx). The SQL is in package persistence (the transitions table); audit is the log's
// interface and its rules (a known source, seq from 1).
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// The sources of a transition.
const (
	SourceAPI       = "api"       // an event sent through the API
	SourceTimer     = "timer"     // a timer of the state fired
	SourceMigration = "migration" // the instance moved to another version of its definition
)

// Row is one transition of an instance.
type Row struct {
	InstanceID        string
	Seq               int64 // 1, 2, 3... per instance with no gap: the instance's revision after it
	Event             string
	From, To          string
	Branch            int
	Guards            []byte // a JSON array; nil is stored as []
	Payload           []byte // a JSON object; nil is stored as {}
	ContextBefore     []byte // a JSON object; nil is stored as {}
	ContextAfter      []byte // a JSON object; nil is stored as {}
	Source            string // SourceAPI, SourceTimer, SourceMigration
	RequestID         string
	IdempotencyKey    string // "" (no key) is stored as NULL, and never conflicts
	RequestHash       string // of the request, to tell a replay from a mismatch
	DefinitionVersion int
	At                time.Time
}

// Append writes r with the caller's transaction. persistence.ErrConflict when the instance has a
// row with r's seq or r's idempotency key already; the transaction stays usable.
func Append(ctx context.Context, tx *persistence.Tx, r Row) error {
	switch r.Source {
	case SourceAPI, SourceTimer, SourceMigration:
	default:
		return fmt.Errorf("audit: transition %d of instance %q: unknown source %q", r.Seq, r.InstanceID, r.Source)
	}
	if r.Seq < 1 {
		return fmt.Errorf("audit: transition of instance %q: seq %d, want 1 or more", r.InstanceID, r.Seq)
	}
	return persistence.TransitionInsert(ctx, tx, persistence.TransitionRow(r))
}

// ByIdempotencyKey returns the row an instance recorded with an idempotency key.
// persistence.ErrNotFound when there is none.
func ByIdempotencyKey(ctx context.Context, ex persistence.Executor, instanceID, key string) (Row, error) {
	r, err := persistence.TransitionGetByIdempotencyKey(ctx, ex, instanceID, key)
	if err != nil {
		return Row{}, err
	}
	return Row(r), nil
}

// History returns the rows of an instance whose seq is greater than afterSeq, oldest first, at
// most limit of them (no limit when limit is 0 or less): keyset pagination, the last seq of a page
// is the afterSeq of the next. An instance without rows (or no such instance) has an empty history.
func History(ctx context.Context, ex persistence.Executor, instanceID string, afterSeq int64, limit int) ([]Row, error) {
	rows, err := persistence.TransitionList(ctx, ex, persistence.TransitionListParams{
		InstanceID: instanceID, AfterSeq: afterSeq, Limit: limit,
	})
	if err != nil {
		return nil, err
	}
	out := make([]Row, len(rows))
	for i, r := range rows {
		out[i] = Row(r)
	}
	return out, nil
}
