package persistence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// MigrationRow is one migration of running instances to a newer version (the migrations table).
type MigrationRow struct {
	ID          string
	Definition  string
	ToVersion   int
	FromVersion int    // the filter: only instances of this version; 0 for every older one
	FromState   string // the filter: only instances in this state; "" for any
	Status      string // running, done, failed
	Total       int64
	Migrated    int64
	Stranded    int64
	Result      []byte // a JSON object: the plan's shape of what was done
	Error       string
	StartedAt   time.Time
	FinishedAt  time.Time // zero while running
}

type migrationRow struct {
	ID          string `db:"id"`
	Definition  string `db:"definition"`
	ToVersion   int    `db:"to_version"`
	FromVersion int    `db:"from_version"`
	FromState   string `db:"from_state"`
	Status      string `db:"status"`
	Total       int64  `db:"total"`
	Migrated    int64  `db:"migrated"`
	Stranded    int64  `db:"stranded"`
	Result      []byte `db:"result"`
	Error       string `db:"error"`
	StartedAt   dbTime `db:"started_at"`
	FinishedAt  dbTime `db:"finished_at"` // NULL scans as the zero time
}

func (r migrationRow) row() MigrationRow {
	return MigrationRow{ID: r.ID, Definition: r.Definition, ToVersion: r.ToVersion, FromVersion: r.FromVersion,
		FromState: r.FromState, Status: r.Status, Total: r.Total, Migrated: r.Migrated, Stranded: r.Stranded,
		Result: r.Result, Error: r.Error, StartedAt: r.StartedAt.Time(), FinishedAt: r.FinishedAt.Time()}
}

const migrationColumns = `id, definition, to_version, from_version, from_state, status, total, migrated, stranded, result, error, started_at, finished_at`

// MigrationInsert records a new migration.
func MigrationInsert(ctx context.Context, tx *Tx, m MigrationRow) error {
	_, err := execContext(ctx, tx, `INSERT INTO migrations (`+migrationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Definition, m.ToVersion, m.FromVersion, m.FromState, m.Status, m.Total, m.Migrated, m.Stranded,
		jsonArg(m.Result, "{}"), m.Error, timeArg(tx.Dialect, m.StartedAt), nullTimeArg(tx.Dialect, m.FinishedAt))
	if err != nil {
		return translate(fmt.Errorf("persistence: insert migration %q: %w", m.ID, err))
	}
	return nil
}

// MigrationUpdate writes a migration's progress, status and result.
func MigrationUpdate(ctx context.Context, ex Executor, m MigrationRow) error {
	res, err := execContext(ctx, ex, `UPDATE migrations SET status = ?, total = ?, migrated = ?, stranded = ?, result = ?, error = ?, finished_at = ? WHERE id = ?`,
		m.Status, m.Total, m.Migrated, m.Stranded, jsonArg(m.Result, "{}"), m.Error, nullTimeArg(ex.dialect(), m.FinishedAt), m.ID)
	if err != nil {
		return translate(fmt.Errorf("persistence: update migration %q: %w", m.ID, err))
	}
	return conflictUnlessOne(res, "no migration %q", m.ID)
}

// MigrationGet returns a migration. ErrNotFound when there is none.
func MigrationGet(ctx context.Context, ex Executor, id string) (MigrationRow, error) {
	var r migrationRow
	if err := getContext(ctx, ex, &r, `SELECT `+migrationColumns+` FROM migrations WHERE id = ?`, id); err != nil {
		return MigrationRow{}, notFound(err, "migration %q", id)
	}
	return r.row(), nil
}

// MigrationGetForUpdate returns a migration and locks it until tx ends (SELECT ... FOR UPDATE on
// PostgreSQL; SQLite's transaction holds the write lock): a transaction still writing its progress
// is waited for. ErrNotFound when there is none.
func MigrationGetForUpdate(ctx context.Context, tx *Tx, id string) (MigrationRow, error) {
	query := `SELECT ` + migrationColumns + ` FROM migrations WHERE id = ?`
	if tx.Dialect == Postgres {
		query += ` FOR UPDATE`
	}
	var r migrationRow
	if err := getContext(ctx, tx, &r, query, id); err != nil {
		return MigrationRow{}, notFound(err, "migration %q", id)
	}
	return r.row(), nil
}

// MigrationFail ends a migration as failed, with why, leaving its progress as the batches that
// committed wrote it (whatever the run knows of them): ErrConflict when there is no such migration.
func MigrationFail(ctx context.Context, ex Executor, id, why string, at time.Time) error {
	res, err := execContext(ctx, ex, `UPDATE migrations SET status = 'failed', error = ?, finished_at = ? WHERE id = ?`,
		why, nullTimeArg(ex.dialect(), at), id)
	if err != nil {
		return translate(fmt.Errorf("persistence: fail migration %q: %w", id, err))
	}
	return conflictUnlessOne(res, "no migration %q", id)
}

// MigrationGetRunning returns the migration of a definition that is running. ErrNotFound when
// none is.
func MigrationGetRunning(ctx context.Context, ex Executor, definition string) (MigrationRow, error) {
	var r migrationRow
	err := getContext(ctx, ex, &r, `SELECT `+migrationColumns+` FROM migrations WHERE definition = ? AND status = 'running'`, definition)
	if err != nil {
		return MigrationRow{}, notFound(err, "running migration of %q", definition)
	}
	return r.row(), nil
}

// MigrationListParams selects a page of a definition's migrations, newest first.
type MigrationListParams struct {
	Definition string
	After      string // the id of the last migration of the previous page; "" for the first
	Limit      int
	MaxBytes   int // stop after the row that takes their Bytes past it; 0 for no bound
}

// Bytes is about the size of the row as JSON (TransitionRow.Bytes): its result grows with the
// states and versions of its definition.
func (r MigrationRow) Bytes() int {
	return len(r.Result) + len(r.Error) + len(r.ID) + len(r.Definition) + len(r.FromState) + rowOverhead
}

// MigrationList returns a page of a definition's migrations, newest first (started_at, then id,
// descending), after the migration p.After.
func MigrationList(ctx context.Context, ex Executor, p MigrationListParams) ([]MigrationRow, error) {
	query := `SELECT ` + migrationColumns + ` FROM migrations WHERE definition = ?`
	args := []any{p.Definition}
	if p.After != "" {
		query += ` AND (started_at, id) < (SELECT started_at, id FROM migrations WHERE id = ?)`
		args = append(args, p.After)
	}
	query += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	out, err := selectBounded(ctx, ex, p.MaxBytes, migrationRow.row, query, append(args, p.Limit)...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list the migrations of %q: %w", p.Definition, err)))
	}
	return out, nil
}

// MigrationListRunning returns the migrations still running (interrupted, after a crash), oldest
// first.
func MigrationListRunning(ctx context.Context, ex Executor) ([]MigrationRow, error) {
	var rows []migrationRow
	if err := selectContext(ctx, ex, &rows, `SELECT `+migrationColumns+` FROM migrations WHERE status = 'running' ORDER BY started_at, id`); err != nil {
		return nil, translate(fmt.Errorf("persistence: list running migrations: %w", err))
	}
	out := make([]MigrationRow, len(rows))
	for i, r := range rows {
		out[i] = r.row()
	}
	return out, nil
}

// RunningBatchParams selects a batch of the running instances of one version of a definition.
type RunningBatchParams struct {
	Definition string
	Version    int
	State      string // "" for any
	After      string // the last id of the previous batch
	Limit      int
	Lock       bool // FOR UPDATE on PostgreSQL (SQLite's transaction holds the write lock)
	// Misshapen, when set (PostgreSQL), selects only the instances whose context does not have that
	// shape: those InstanceMoveStates leaves.
	Misshapen *ContextShape
}

// InstanceRunningBatch returns running instances of one version of a definition, in id order.
func InstanceRunningBatch(ctx context.Context, ex Executor, p RunningBatchParams) ([]InstanceRow, error) {
	query := `SELECT ` + instanceColumns + ` FROM instances`
	var args []any
	misshapen := p.Misshapen != nil && ex.dialect() == Postgres
	if misshapen {
		query += ` ` + shapeJoin
		args = p.Misshapen.joinArgs()
	}
	query += ` WHERE definition = ? AND version = ? AND NOT final AND id > ?`
	args = append(args, p.Definition, p.Version, p.After)
	if p.State != "" { // its own condition, so that PostgreSQL can use the (definition, state, id) index
		query += ` AND state = ?`
		args = append(args, p.State)
	}
	if misshapen {
		query += ` AND ` + p.Misshapen.fails()
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, p.Limit)
	lockAfter := p.Lock && ex.citus()
	if p.Lock && ex.dialect() == Postgres && !lockAfter {
		query += ` FOR UPDATE OF instances`
	}
	var rows []instanceRow
	err := selectContext(ctx, ex, &rows, query, args...)
	if err == nil && lockAfter && len(rows) > 0 {
		rows, err = lockRunning(ctx, ex, p, rows)
	}
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: running instances of %s version %d: %w", p.Definition, p.Version, err))
	}
	out := make([]InstanceRow, len(rows))
	for i, r := range rows {
		out[i] = r.row()
	}
	return out, nil
}

// lockRunning locks the rows InstanceRunningBatch read, on Citus, which refuses FOR UPDATE in a
// query over every shard: an update that changes nothing locks them (waiting for one an event
// holds) and returns them as they are once locked, those still running the version only.
func lockRunning(ctx context.Context, ex Executor, p RunningBatchParams, read []instanceRow) ([]instanceRow, error) {
	ids := make([]string, len(read))
	for i, r := range read {
		ids[i] = r.ID
	}
	var rows []instanceRow
	if err := selectContext(ctx, ex, &rows, `UPDATE instances SET revision = revision
		WHERE id = ANY(?) AND definition = ? AND version = ? AND NOT final AND (? = '' OR state = ?) RETURNING `+instanceColumns,
		pq.Array(ids), p.Definition, p.Version, p.State, p.State); err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b instanceRow) int { return strings.Compare(a.ID, b.ID) })
	return rows, nil
}

// VersionCount is how many running instances a version of a definition has.
type VersionCount struct {
	Version int   `db:"version"`
	N       int64 `db:"n"`
}

// InstanceCountRunningByVersion returns the running instances of a definition per version, in
// version order.
func InstanceCountRunningByVersion(ctx context.Context, ex Executor, definition string) ([]VersionCount, error) {
	var rows []VersionCount
	err := selectContext(ctx, ex, &rows, `SELECT version, COUNT(*) AS n FROM instances
		WHERE definition = ? AND NOT final GROUP BY version ORDER BY version`, definition)
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: count running instances of %s: %w", definition, err))
	}
	return rows, nil
}

// nullTimeArg is t as an argument, NULL for the zero time.
func nullTimeArg(d Dialect, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timeArg(d, t)
}

// InstanceCountMisshapen counts, per state, the running instances of one version of a definition in
// states whose context does not have shape (PostgreSQL only): what InstanceMoveStates would leave
// there, in one pass over them all instead of a read per state.
func InstanceCountMisshapen(ctx context.Context, ex Executor, definition string, version int, states []string, shape ContextShape) (map[string]int64, error) {
	if ex.dialect() != Postgres {
		return nil, errors.New("persistence: checking contexts in SQL needs PostgreSQL")
	}
	var rows []struct {
		State string `db:"state"`
		N     int64  `db:"n"`
	}
	query := `SELECT state, count(*) AS n FROM instances ` + shapeJoin + `
		WHERE definition = ? AND version = ? AND NOT final AND state = ANY(?) AND ` + shape.fails() + `
		GROUP BY state`
	args := append(shape.joinArgs(), definition, version, pq.Array(states))
	if err := selectContext(ctx, ex, &rows, query, args...); err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: check the contexts of %s version %d: %w", definition, version, err)))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}
