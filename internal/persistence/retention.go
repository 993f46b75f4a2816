package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// RetentionPage selects a page of the instances the retention job (service.ApplyRetention) may
// delete: the final instances of Definition whose ended_at (when they became final) is before
// Before, after the cursor (AfterAt, AfterID: the last instance of the page before, zero for the
// first) in (ended_at, id) order, at most Limit of them.
type RetentionPage struct {
	Definition string
	Before     time.Time
	AfterAt    time.Time
	AfterID    string
	Limit      int
}

// DueInstance is an instance of a RetentionPage: its id, and when it became final (the cursor).
type DueInstance struct {
	ID      string `db:"id"`
	EndedAt dbTime `db:"ended_at"`
}

// At is when it became final.
func (d DueInstance) At() time.Time { return d.EndedAt.Time() }

// retentionDue is what makes an instance due, on instances i: final before a time, and no parent
// left. A child whose parent still exists is left for later (it goes after its parent, so that a
// kept parent's children stay listed).
// ended_at (migration 015) is set, from updated_at, only on final instances.
const retentionDue = retentionFinal + `
	AND (i.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM instances p WHERE p.id = i.parent_id))`

// InstanceListFinalDue reads a page of the instances due for deletion, without locking them,
// through instances_ended_idx: the cursor moves past a waiting child all the same, so that
// a pass reads the index range once.
func InstanceListFinalDue(ctx context.Context, ex Executor, p RetentionPage) ([]DueInstance, error) {
	d := ex.dialect()
	var rows []DueInstance
	query := retentionPageQuery
	if ex.citus() {
		query = retentionPageCitusQuery
	}
	err := selectContext(ctx, ex, &rows, query, retentionPageArgs(d, p)...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list the final instances of %q due for deletion: %w", p.Definition, err)))
	}
	return rows, nil
}

// retentionPageQuery is InstanceListFinalDue's query: a range of instances_ended_idx.
const retentionPageQuery = `SELECT i.id, i.ended_at FROM instances i WHERE ` + retentionDue + `
	AND (i.ended_at, i.id) > (?, ?) ORDER BY i.ended_at, i.id LIMIT ?`

// retentionFinal is retentionDue but for the parent, which Citus cannot look up in the same query
// (a parent is not on its child's worker): there retentionLockRouted asks for the parents by a
// query of its own.
const retentionFinal = `i.definition = ? AND i.ended_at < ?`

// retentionPageCitusQuery is retentionPageQuery on Citus, where a parent is not on its child's
// worker: the page leaves out no child whose parent exists, InstanceDeleteFinal does (as it checks
// every row again), and the cursor moves past it as on PostgreSQL.
const retentionPageCitusQuery = `SELECT i.id, i.ended_at FROM instances i WHERE ` + retentionFinal + `
	AND (i.ended_at, i.id) > (?, ?) ORDER BY i.ended_at, i.id LIMIT ?`

// existing is which of ids are instances.
func existing(ctx context.Context, ex Executor, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var found []string
	if err := selectContext(ctx, ex, &found, `SELECT id FROM instances WHERE id = ANY(?)`, pq.Array(ids)); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

func retentionPageArgs(d Dialect, p RetentionPage) []any {
	return []any{p.Definition, timeArg(d, p.Before), timeArg(d, p.AfterAt), p.AfterID, p.Limit}
}

// InstanceDeleteFinal deletes those of ids that are still due (of definition, final before before,
// without a parent) with everything that names them, in tx: their audit rows and timers (which
// reference them), their webhook deliveries, the messages addressed to them (pending ones could
// never be taken now) and the dead messages they sent. A pending message an instance sent is kept:
// it is its target's event. It returns the ids it deleted.
//
// The instances are locked first, and on PostgreSQL with SKIP LOCKED: an instance that something
// else holds (an event, refused since it is final; an operator's repair) is passed over until the
// next pass, so that the batch waits for nothing and nothing waits long for it. The dependent rows go
// before the instances, which the foreign keys require.
func InstanceDeleteFinal(ctx context.Context, tx *Tx, definition string, before time.Time, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	d := tx.Dialect
	in, args := idList(d, ids)
	query := `SELECT i.id FROM instances i WHERE i.id ` + in + ` AND ` + retentionDue
	if d == Postgres {
		query += ` FOR UPDATE OF i SKIP LOCKED`
	}
	var locked []string
	var err error
	if tx.db.Citus {
		locked, err = retentionLockRouted(ctx, tx, definition, before, ids)
	} else {
		err = selectContext(ctx, tx, &locked, query, append(args, definition, timeArg(d, before))...)
	}
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: lock %d final instances of %q: %w", len(ids), definition, err)))
	}
	if len(locked) == 0 {
		return nil, nil
	}
	in, args = idList(d, locked)
	for _, stmt := range []struct{ what, query string }{
		{"audit rows", `DELETE FROM transitions WHERE instance_id ` + in},
		{"timers", `DELETE FROM timers WHERE instance_id ` + in},
		{"webhook deliveries", `DELETE FROM outbox WHERE instance_id ` + in},
		{"messages to them", `DELETE FROM messages WHERE target ` + in},
		{"dead messages from them", `DELETE FROM messages WHERE status = 'dead' AND sender ` + in},
		{"rows", `DELETE FROM instances WHERE id ` + in},
	} {
		if _, err := execContext(ctx, tx, stmt.query, args...); err != nil {
			return nil, translate(canceled(ctx, fmt.Errorf("persistence: delete the %s of %d final instances of %q: %w",
				stmt.what, len(locked), definition, err)))
		}
	}
	return locked, nil
}

// retentionLockRouted is InstanceDeleteFinal's lock on Citus, which refuses FOR UPDATE over several
// shards: an update that changes nothing locks the rows still due (waiting for one held, where
// PostgreSQL skips it), then those whose parent still exists are left out.
func retentionLockRouted(ctx context.Context, tx *Tx, definition string, before time.Time, ids []string) ([]string, error) {
	var rows []struct {
		ID     string         `db:"id"`
		Parent sql.NullString `db:"parent_id"`
	}
	if err := selectContext(ctx, tx, &rows, `UPDATE instances i SET revision = i.revision WHERE i.id = ANY(?) AND `+retentionFinal+`
		RETURNING i.id, i.parent_id`, pq.Array(ids), definition, timeArg(Postgres, before)); err != nil {
		return nil, err
	}
	var parents []string
	for _, r := range rows {
		if r.Parent.Valid {
			parents = append(parents, r.Parent.String)
		}
	}
	alive, err := existing(ctx, tx, parents)
	if err != nil {
		return nil, err
	}
	var locked []string
	for _, r := range rows {
		if !r.Parent.Valid || !alive[r.Parent.String] {
			locked = append(locked, r.ID)
		}
	}
	return locked, nil
}

// idList is `= ANY(?)` with the ids as one array on PostgreSQL (one plan whatever their number),
// `IN (?, ?, ...)` with an argument each on SQLite.
func idList(d Dialect, ids []string) (string, []any) {
	if d == Postgres {
		return `= ANY(?)`, []any{pq.Array(ids)}
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return `IN (` + placeholders(len(ids)) + `)`, args
}
