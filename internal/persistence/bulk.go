package persistence

import (
	"context"
	"fmt"
	"time"
)

// Bulks (migrations/postgres/012_admin.sql): an event or an action sent to the running instances of
// a definition that match a filter, in batches in id order, each batch's progress written after
// its instances' transitions.

// BulkRow is a bulk as stored.
type BulkRow struct {
	ID         string
	Definition string
	Request    []byte // the request's JSON
	Status     string // running, done, cancelled, failed
	Total      int64
	Applied    int64
	Refused    int64
	Outcomes   []byte // a JSON array
	Cursor     string // the last id done
	Pending    string // the last id of the batch being done; "" between batches
	Error      string
	Actor      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time // zero while running
}

// bulkRow is BulkRow as scanned.
type bulkRow struct {
	ID         string `db:"id"`
	Definition string `db:"definition"`
	Request    []byte `db:"request"`
	Status     string `db:"status"`
	Total      int64  `db:"total"`
	Applied    int64  `db:"applied"`
	Refused    int64  `db:"refused"`
	Outcomes   []byte `db:"outcomes"`
	Cursor     string `db:"cursor"`
	Pending    string `db:"pending"`
	Error      string `db:"error"`
	Actor      string `db:"actor"`
	CreatedAt  dbTime `db:"created_at"`
	UpdatedAt  dbTime `db:"updated_at"`
	FinishedAt dbTime `db:"finished_at"`
}

func (r bulkRow) row() BulkRow {
	return BulkRow{ID: r.ID, Definition: r.Definition, Request: r.Request, Status: r.Status, Total: r.Total, Applied: r.Applied,
		Refused: r.Refused, Outcomes: r.Outcomes, Cursor: r.Cursor, Pending: r.Pending, Error: r.Error, Actor: r.Actor,
		CreatedAt: r.CreatedAt.Time(), UpdatedAt: r.UpdatedAt.Time(), FinishedAt: r.FinishedAt.Time()}
}

const bulkColumns = `id, definition, request, status, total, applied, refused, outcomes, cursor, pending, error, actor, created_at, updated_at, finished_at`

// BulkInsert stores a new running bulk. ErrConflict when the definition has a running bulk.
func BulkInsert(ctx context.Context, ex Executor, b BulkRow) error {
	d := ex.dialect()
	_, err := execContext(ctx, ex, `INSERT INTO bulks (`+bulkColumns+`) VALUES (?, ?, ?, 'running', ?, 0, 0, '[]', '', '', '', ?, ?, ?, NULL)`,
		b.ID, b.Definition, string(b.Request), b.Total, b.Actor, timeArg(d, b.CreatedAt), timeArg(d, b.CreatedAt))
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: insert bulk %q of %s: %w", b.ID, b.Definition, err)))
	}
	return nil
}

// BulkGet returns a bulk. ErrNotFound when there is none.
func BulkGet(ctx context.Context, ex Executor, id string) (BulkRow, error) {
	var b bulkRow
	if err := getContext(ctx, ex, &b, `SELECT `+bulkColumns+` FROM bulks WHERE id = ?`, id); err != nil {
		return BulkRow{}, notFound(err, "bulk %q", id)
	}
	return b.row(), nil
}

// BulksRunning returns the running bulks, oldest first.
func BulksRunning(ctx context.Context, ex Executor) ([]BulkRow, error) {
	var rows []bulkRow
	if err := selectContext(ctx, ex, &rows, `SELECT `+bulkColumns+` FROM bulks WHERE status = 'running' ORDER BY created_at, id`); err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: running bulks: %w", err)))
	}
	out := make([]BulkRow, len(rows))
	for i, r := range rows {
		out[i] = r.row()
	}
	return out, nil
}

// BulkProgress is what a batch of a bulk did: the cursor it started after (From) and ended at
// (To), its counts and the bulk's outcomes with it.
type BulkProgress struct {
	ID               string
	From, To         string
	Applied, Refused int64
	Outcomes         []byte
	At               time.Time
}

// BulkAdvance records a batch, provided the bulk is still running at p.From: false when it is not
// (it was cancelled, or another process did the batch).
func BulkAdvance(ctx context.Context, ex Executor, p BulkProgress) (bool, error) {
	res, err := execContext(ctx, ex, `UPDATE bulks SET cursor = ?, pending = '', applied = applied + ?, refused = refused + ?, outcomes = ?,
			updated_at = ?
		WHERE id = ? AND status = 'running' AND cursor = ?`,
		p.To, p.Applied, p.Refused, string(p.Outcomes), timeArg(ex.dialect(), p.At), p.ID, p.From)
	if err != nil {
		return false, translate(canceled(ctx, fmt.Errorf("persistence: advance bulk %q: %w", p.ID, err)))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// BulkMark records that the batch after cursor, up to pending, is being done, provided the bulk is
// still running at cursor: false when it is not.
func BulkMark(ctx context.Context, ex Executor, id, cursor, pending string) (bool, error) {
	res, err := execContext(ctx, ex, `UPDATE bulks SET pending = ? WHERE id = ? AND status = 'running' AND cursor = ?`, pending, id, cursor)
	if err != nil {
		return false, translate(canceled(ctx, fmt.Errorf("persistence: mark a batch of bulk %q: %w", id, err)))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// BulkFinish ends a running bulk with status (done, cancelled or failed) and, for failed, why;
// false when it was not running any more.
func BulkFinish(ctx context.Context, ex Executor, id, status, why string, at time.Time) (bool, error) {
	d := ex.dialect()
	res, err := execContext(ctx, ex, `UPDATE bulks SET status = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ? AND status = 'running'`,
		status, why, timeArg(d, at), timeArg(d, at), id)
	if err != nil {
		return false, translate(canceled(ctx, fmt.Errorf("persistence: finish bulk %q: %w", id, err)))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// TransitionsWithRequestID returns, of the instances ids, those with an audit row of requestID (a
// bulk's id), each with its latest such row: one query for a bulk's batch.
func TransitionsWithRequestID(ctx context.Context, ex Executor, requestID string, ids []string) (map[string]TransitionRow, error) {
	out := map[string]TransitionRow{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{requestID}
	for _, id := range ids {
		args = append(args, id)
	}
	var rows []transitionRow
	err := selectContext(ctx, ex, &rows, `SELECT `+transitionReadColumns+` FROM transitions
		WHERE request_id = ? AND instance_id IN (`+placeholders(len(ids))+`) ORDER BY instance_id, seq`, args...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: the transitions %q of %d instances: %w", requestID, len(ids), err)))
	}
	for _, r := range rows {
		out[r.InstanceID] = r.row()
	}
	return out, nil
}

// BulkListParams selects a page of a definition's bulks, newest first.
type BulkListParams struct {
	Definition string
	After      string // the bulks older than this id ("" for the first page)
	Limit      int
	MaxBytes   int // stop after the row that takes their Bytes past it; 0 for no bound
}

// Bytes is about the size of the row as JSON.
func (r BulkRow) Bytes() int { return len(r.Request) + len(r.Outcomes) + len(r.Error) + rowOverhead }

// BulkList returns a page of a definition's bulks, newest first (ids are time-ordered).
func BulkList(ctx context.Context, ex Executor, p BulkListParams) ([]BulkRow, error) {
	query, args := `SELECT `+bulkColumns+` FROM bulks WHERE definition = ?`, []any{p.Definition}
	if p.After != "" {
		query, args = query+` AND id < ?`, append(args, p.After)
	}
	out, err := selectBounded(ctx, ex, p.MaxBytes, bulkRow.row, query+` ORDER BY id DESC LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list the bulks of %s: %w", p.Definition, err)))
	}
	return out, nil
}
