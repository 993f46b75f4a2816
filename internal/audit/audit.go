// Package audit is fsmd's audit log: one row per accepted event (or timer, or migration) of an
// instance, written in the transaction that changes the instance, read back as the instance's
// history.
//
// audit never begins a transaction: Append takes the caller's, and AppendWithUpdate writes the row
// in one statement with the instance update it records, so the two commit or vanish together. The
// reads take whatever Executor they are given (a *DB, or the caller's *Tx). The SQL is in package
// persistence (the transitions table); audit is the log's interface and its rules (a known source,
// seq from 1).
package audit

import (
	"context"
	"fmt"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// The sources of a transition.
const (
	SourceAPI       = "api"       // an event sent through the API
	SourceTimer     = "timer"     // a timer of the state fired
	SourceMigration = "migration" // the instance moved to another version of its definition
	SourceMessage   = "message"   // another instance sent the event (a `send` of its transition)
	SourceAssign    = "assign"    // the instance's assignees were replaced (POST /v1/instances/{id}/assign)
	SourceAdmin     = "admin"     // an operator suspended, resumed or terminated the instance
	SourceRepair    = "repair"    // an operator put the instance in a state (POST /v1/instances/{id}/repair)
	SourceBulk      = "bulk"      // a bulk sent the event (or applied its action): request_id is the bulk's id
)

// Row is one transition of an instance: the row persistence stores (its fields are documented
// there), named for the log.
type Row = persistence.TransitionRow

// Append writes r with the caller's transaction. persistence.ErrConflict when the instance has a
// row with r's seq or r's idempotency key already; the transaction stays usable.
func Append(ctx context.Context, tx *persistence.Tx, r Row) error {
	if err := check(r); err != nil {
		return err
	}
	return persistence.TransitionInsert(ctx, tx, r)
}

// AppendWithUpdate writes r together with u, the update of its instance that r records, provided
// the instance is still at u.ExpectRevision: both or neither (persistence.InstanceAdvance).
// persistence.ErrConflict when the instance moved on, or r's seq or idempotency key is taken. ex is
// the caller's transaction, or on PostgreSQL the database: the one statement is then its own
// transaction (audit still begins none).
func AppendWithUpdate(ctx context.Context, ex persistence.Executor, u persistence.InstanceUpdateParams, r Row) error {
	if err := check(r); err != nil {
		return err
	}
	return persistence.InstanceAdvance(ctx, ex, u, r)
}

// AppendGroup writes the transitions of several instances, each with the update of its instance
// as AppendWithUpdate writes it, in one transaction of db that they share (group commit:
// persistence.AdvanceGroup). It returns each item's error in order: nil once the transaction has
// committed, else what AppendWithUpdate would have returned for it alone.
func AppendGroup(ctx context.Context, db *persistence.DB, items []persistence.Advance) []error {
	errs := make([]error, len(items))
	valid := make([]persistence.Advance, 0, len(items))
	at := make([]int, 0, len(items)) // where each valid item is in items
	for i, it := range items {
		if errs[i] = check(it.Row); errs[i] == nil {
			valid = append(valid, it)
			at = append(at, i)
		}
	}
	for k, err := range persistence.AdvanceGroup(ctx, db, valid) {
		errs[at[k]] = err
	}
	return errs
}

// AppendMany writes several transitions of one instance without other effects, and deletes the
// messages that caused them, in tx (persistence.InstanceAdvanceMany).
func AppendMany(ctx context.Context, tx *persistence.Tx, u persistence.InstanceUpdateParams, rows []Row, messages []string) error {
	for _, r := range rows {
		if err := check(r); err != nil {
			return err
		}
	}
	return persistence.InstanceAdvanceMany(ctx, tx, u, rows, messages)
}

// AppendMoves moves instances a migration decided in Go to m.ToVersion, each with its audit row
// (source migration, event m.Event, seq the instance's new revision), in the caller's transaction,
// which holds their locks (persistence.InstanceMoveRows: one statement a batch on PostgreSQL).
func AppendMoves(ctx context.Context, tx *persistence.Tx, m persistence.MigrationBatch, rows []persistence.MovedInstance) error {
	return persistence.InstanceMoveRows(ctx, tx, m, rows)
}

// AppendMovesInSQL moves the next batch of the running instances of some states of one version to
// m.ToVersion, each with its audit row, without reading them into the client
// (persistence.InstanceMoveStates, PostgreSQL). It returns the batch's size, last id and moves.
func AppendMovesInSQL(ctx context.Context, tx *persistence.Tx, m persistence.MigrationBatch, s persistence.MoveStates) (persistence.MovedStates, error) {
	return persistence.InstanceMoveStates(ctx, tx, m, s)
}

// Assign replaces the assignees of an instance, with r, the audit row that records it, in tx: both
// or neither (persistence.InstanceAssign).
func Assign(ctx context.Context, tx *persistence.Tx, assignees []string, r Row) error {
	if err := check(r); err != nil {
		return err
	}
	return persistence.InstanceAssign(ctx, tx, assignees, r)
}

// check enforces the log's rules on a row: a known source, and a seq from 1.
func check(r Row) error {
	switch r.Source {
	case SourceAPI, SourceTimer, SourceMigration, SourceMessage, SourceAssign, SourceAdmin, SourceRepair, SourceBulk:
	default:
		return fmt.Errorf("audit: transition %d of instance %q: unknown source %q", r.Seq, r.InstanceID, r.Source)
	}
	if r.Seq < 1 {
		return fmt.Errorf("audit: transition of instance %q: seq %d, want 1 or more", r.InstanceID, r.Seq)
	}
	return nil
}

// ByIdempotencyKey returns the row an instance recorded with an idempotency key.
// persistence.ErrNotFound when there is none.
func ByIdempotencyKey(ctx context.Context, ex persistence.Executor, instanceID, key string) (Row, error) {
	r, err := persistence.TransitionGetByIdempotencyKey(ctx, ex, instanceID, key)
	if err != nil {
		return Row{}, err
	}
	return r, nil
}

// History returns the rows of an instance whose seq is greater than afterSeq, oldest first, at
// most limit of them (no limit when limit is 0 or less): keyset pagination, the last seq of a page
// is the afterSeq of the next. An instance without rows (or no such instance) has an empty history.
// With maxBytes over 0 it stops after the row that takes their Bytes past it.
func History(ctx context.Context, ex persistence.Executor, instanceID string, afterSeq int64, limit, maxBytes int) ([]Row, error) {
	return persistence.TransitionList(ctx, ex, persistence.TransitionListParams{
		InstanceID: instanceID, AfterSeq: afterSeq, Limit: limit, MaxBytes: maxBytes,
	})
}
