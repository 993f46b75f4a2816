package migration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Definitions returns a registered version of a definition and its number; version 0 is the latest.
type Definitions func(name string, version int) (*machine.Definition, int, error)

// Migrator plans and runs migrations over a database.
type Migrator struct {
	DB    *persistence.DB
	Defs  Definitions
	Now   func() time.Time // UTC, to the microsecond
	Log   *slog.Logger
	Batch int // instances per transaction; 1000 when 0

	perInstance bool // decide and write every instance in Go (tests: export_test.go)
}

// Request selects what to migrate: to a version (0: the latest), optionally only the instances of
// one older version and/or one state.
type Request struct {
	ToVersion   int
	FromVersion int
	FromState   string
}

// NotFoundError: no such definition version (or migration).
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + " not found" }

// Code is the API's error code for it.
func (e *NotFoundError) Code() string { return "not_found" }

// target resolves the request's version.
func (m *Migrator) target(name string, req Request) (*machine.Definition, int, error) {
	if req.ToVersion < 0 || req.FromVersion < 0 {
		return nil, 0, &BadRequestError{"versions are 1 or more"}
	}
	def, version, err := m.Defs(name, req.ToVersion)
	if err != nil {
		return nil, 0, err
	}
	if req.FromVersion >= version {
		return nil, 0, &BadRequestError{fmt.Sprintf("from_version %d is not older than to_version %d", req.FromVersion, version)}
	}
	if req.FromState != "" && !m.hasState(name, req, version) {
		return nil, 0, &BadRequestError{fmt.Sprintf("filter.state %q: no version of %q the migration takes (older than %d) has that state",
			req.FromState, name, version)}
	}
	return def, version, nil
}

// hasState reports whether an older version the request takes has its state.
func (m *Migrator) hasState(name string, req Request, toVersion int) bool {
	for v := 1; v < toVersion; v++ {
		if !req.selects(v, toVersion) {
			continue
		}
		if def, _, err := m.Defs(name, v); err == nil && def.States[req.FromState] != nil {
			return true
		}
	}
	return false
}

// selects reports whether the request takes the running instances of version, given the target.
func (req Request) selects(version, toVersion int) bool {
	return version < toVersion && (req.FromVersion == 0 || version == req.FromVersion)
}

// BadRequestError is a request that cannot be planned as it is.
type BadRequestError struct{ Detail string }

func (e *BadRequestError) Error() string { return e.Detail }

// Code is the API's error code for it.
func (e *BadRequestError) Code() string { return "invalid_request" }

// Status is a migration's progress and result (api.md).
type Status struct {
	ID         string     `json:"id" validate:"required"`
	Definition string     `json:"definition" validate:"required"`
	ToVersion  int        `json:"to_version" validate:"required"`
	Status     string     `json:"status" validate:"required" enums:"running,done,failed"` // running, done, failed
	Migrated   int64      `json:"migrated" validate:"required"`
	Stranded   int64      `json:"stranded" validate:"required"`
	Total      int64      `json:"total" validate:"required"`
	Error      string     `json:"error,omitempty"`
	Result     *Plan      `json:"result,omitempty"` // once done: what moved and what stayed, as a plan shows it
	StartedAt  time.Time  `json:"started_at" validate:"required" format:"date-time"`
	FinishedAt *time.Time `json:"finished_at" validate:"required" format:"date-time" extensions:"x-nullable"` // null while running
}

func status(r persistence.MigrationRow) Status {
	s := Status{ID: r.ID, Definition: r.Definition, ToVersion: r.ToVersion, Status: r.Status, Migrated: r.Migrated,
		Stranded: r.Stranded, Total: r.Total, Error: r.Error, StartedAt: r.StartedAt}
	if !r.FinishedAt.IsZero() {
		f := r.FinishedAt
		s.FinishedAt = &f
	}
	if r.Status == "done" {
		var p Plan
		if json.Unmarshal(r.Result, &p) == nil {
			s.Result = &p
		}
	}
	return s
}

// Get returns a migration's status.
func (m *Migrator) Get(ctx context.Context, id string) (Status, error) {
	r, err := persistence.MigrationGet(ctx, m.DB, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return Status{}, &NotFoundError{What: fmt.Sprintf("migration %q", id)}
	}
	if err != nil {
		return Status{}, err
	}
	return status(r), nil
}

// List returns the newest migrations of a definition, newest first, at most limit.
func (m *Migrator) List(ctx context.Context, name string, limit int) ([]Status, error) {
	rows, err := persistence.MigrationList(ctx, m.DB, name, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(rows))
	for i, r := range rows {
		out[i] = status(r)
	}
	return out, nil
}

// Start records a migration as running and returns it; Run executes it. A definition has one
// migration running at a time: a second is refused with a RunningError naming the first.
func (m *Migrator) Start(ctx context.Context, id, name string, req Request) (Status, error) {
	to, toVersion, err := m.target(name, req)
	if err != nil {
		return Status{}, err
	}
	groups, err := m.groups(ctx, name, to, toVersion, req)
	if err != nil {
		return Status{}, err
	}
	var total int64
	for _, g := range groups {
		total += g.n
	}
	row := persistence.MigrationRow{ID: id, Definition: name, ToVersion: toVersion, FromVersion: req.FromVersion,
		FromState: req.FromState, Status: "running", Total: total, StartedAt: m.Now()}
	err = m.DB.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.MigrationInsert(ctx, tx, row) })
	if errors.Is(err, persistence.ErrConflict) {
		if running, rerr := persistence.MigrationGetRunning(ctx, m.DB, name); rerr == nil {
			return Status{}, &RunningError{Definition: name, ID: running.ID, ToVersion: running.ToVersion}
		}
	}
	if err != nil {
		return Status{}, err
	}
	return status(row), nil
}

// RunningError refuses a migration while another of the same definition runs: the two would take
// the same instances.
type RunningError struct {
	Definition string
	ID         string // the running one
	ToVersion  int
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("migration %s of %q to version %d is running: wait until it is done (GET /v1/migrations/%s), then ask again",
		e.ID, e.Definition, e.ToVersion, e.ID)
}

// Code is the API's error code for it.
func (e *RunningError) Code() string { return code.MigrationRunning }

// Run executes a started (or interrupted) migration to the end, group by group and batch by batch:
// each batch's instances are locked, moved with their audit rows, and the migration's progress
// written, in one transaction. Instances already moved are on the new version and not selected
// again, so running it again after a crash finishes the rest and moves none twice. Stranded
// instances stay on their version and are counted again by every run.
func (m *Migrator) Run(ctx context.Context, id string) (Status, error) {
	// One runner per migration: processes resuming the running migrations at start, and fsmd
	// migrate run resuming one, may try at once. The lock goes with its holder, however it dies.
	release, ok, err := m.DB.TryLock(ctx, "migration "+id)
	if err != nil {
		return Status{}, err
	}
	if !ok {
		return Status{}, ErrRunElsewhere
	}
	defer release()
	row, err := persistence.MigrationGet(ctx, m.DB, id)
	if err != nil {
		return Status{}, err
	}
	if row.Status != "running" {
		return status(row), nil // finished by another runner meanwhile
	}
	to, _, err := m.Defs(row.Definition, row.ToVersion)
	if err != nil {
		return Status{}, m.finish(ctx, row, nil, err)
	}
	r := &run{m: m, row: row, agg: newTally(row.Definition, row.ToVersion)}
	var done Plan // what earlier runs of this migration moved (their stranded are counted again)
	if len(row.Result) > 0 && json.Unmarshal(row.Result, &done) == nil {
		for _, mv := range done.Moves {
			r.agg.moves[Move{FromVersion: mv.FromVersion, FromState: mv.FromState, ToState: mv.ToState}] += mv.Count
		}
		r.agg.p.Total = done.migrated()
	}
	req := Request{ToVersion: row.ToVersion, FromVersion: row.FromVersion, FromState: row.FromState}
	groups, err := m.groups(ctx, row.Definition, to, row.ToVersion, req)
	for _, g := range groups {
		if err != nil {
			break
		}
		switch g.how {
		case stranded:
			err = r.agg.addStranded(ctx, m.DB, row.Definition, g)
		case inSQL:
			err = r.inSQL(ctx, g)
		case evaluate:
			err = r.evaluate(ctx, g)
		}
	}
	if err != nil && ctx.Err() != nil {
		return Status{}, err // stopped, not failed: it stays running, and the next start resumes it
	}
	if err != nil {
		return Status{}, m.finish(ctx, r.row, nil, err)
	}
	p := r.agg.plan()
	if err := m.finish(ctx, r.row, &p, nil); err != nil {
		return Status{}, err
	}
	return m.Get(ctx, id)
}

// ErrRunElsewhere: another process is running the migration (Run returns it at once).
var ErrRunElsewhere = errors.New("the migration is being run by another process")

// run is one execution of a migration: its counts and progress row as of the last commit.
type run struct {
	m   *Migrator
	row persistence.MigrationRow
	agg *tally
}

// commit writes a batch with write, and the progress it makes (counted by count on a copy of the
// counts) in the same transaction; the counts and row become the copy's once it commits. It
// returns how many instances the batch had: 0 when there were none left.
func (r *run) commit(ctx context.Context, write func(tx *persistence.Tx, next *tally) (int, error)) (int, error) {
	var (
		next    *tally
		nextRow persistence.MigrationRow
		n       int
	)
	err := r.m.DB.WithTx(ctx, func(tx *persistence.Tx) error {
		next = r.agg.clone()
		var err error
		if n, err = write(tx, next); err != nil || n == 0 {
			return err
		}
		p := next.plan()
		nextRow = r.row
		nextRow.Migrated, nextRow.Stranded = p.migrated(), p.Total-p.migrated()
		nextRow.Result, _ = json.Marshal(p)
		return persistence.MigrationUpdate(ctx, tx, nextRow)
	})
	if err == nil && n > 0 {
		r.agg, r.row = next, nextRow
	}
	return n, err
}

// inSQL moves a group whose instances all go to one state with a context SQL rewrites, batch by
// batch, none of them read into Go; then the few SQL leaves, in Go.
func (r *run) inSQL(ctx context.Context, g group) error {
	rw := g.mp.Rewrite()
	mv := persistence.Move{FromVersion: g.version, ToVersion: r.row.ToVersion, MigrationID: r.row.ID, Event: Event}
	sel := persistence.MoveState{Definition: r.row.Definition, FromState: g.state, Limit: r.m.batch(), ToState: g.to,
		Final: g.mp.To.Final(g.to), Defaults: rw.Defaults, Drop: rw.Drop, Shape: rw.shape(), Timers: g.mp.sqlTimers(g.to)}
	for {
		var last string
		n, err := r.commit(ctx, func(tx *persistence.Tx, next *tally) (int, error) {
			mv.At = r.m.Now()
			n, l, err := audit.AppendMovesInSQL(ctx, tx, mv, sel)
			next.addMoves(g, g.to, int64(n))
			last = l
			return n, err
		})
		if err != nil {
			return err
		}
		if n < sel.Limit {
			// What SQL left (contexts of another shape, written outside fsmd) is decided in Go.
			return r.evaluate(ctx, g)
		}
		sel.After = last
	}
}

// evaluate moves a group whose instances' data decides, batch by batch: each instance's move is
// decided in Go, and the batch's moves written together.
func (r *run) evaluate(ctx context.Context, g group) error {
	mv := persistence.Move{FromVersion: g.version, ToVersion: r.row.ToVersion, MigrationID: r.row.ID, Event: Event}
	p := persistence.RunningBatchParams{Definition: r.row.Definition, Version: g.version, State: g.state,
		Limit: r.m.batch(), Lock: true}
	for {
		var last string
		n, err := r.commit(ctx, func(tx *persistence.Tx, next *tally) (int, error) {
			rows, err := persistence.InstanceRunningBatch(ctx, tx, p)
			if err != nil || len(rows) == 0 {
				return 0, err
			}
			last = rows[len(rows)-1].ID
			mv.At = r.m.Now()
			moved := make([]persistence.MovedInstance, 0, len(rows))
			for _, row := range rows {
				o := move(g.mp, row, mv.At)
				next.add(row, o)
				if o.Stranded() {
					continue
				}
				after, err := json.Marshal(schema.Encode(o.Context))
				if err != nil {
					return 0, err
				}
				timers := make([]persistence.Arm, len(o.Timers))
				for i, d := range o.Timers {
					timers[i] = persistence.Arm{Event: d.Event, DueAt: d.At}
				}
				moved = append(moved, persistence.MovedInstance{ID: row.ID, Revision: row.Revision, FromState: row.State,
					ToState: o.To, Before: row.Context, After: after, Final: g.mp.To.Final(o.To), EnteredAt: row.EnteredAt,
					Timers: timers})
			}
			return len(rows), audit.AppendMoves(ctx, tx, mv, moved)
		})
		if err != nil || n < p.Limit {
			return err
		}
		p.After = last
	}
}

// Event is the event name of a migration's audit row (its source says migration).
const Event = "migrate"

// finish writes the end of a run: done with its result, or failed with the error (then returned).
func (m *Migrator) finish(ctx context.Context, row persistence.MigrationRow, p *Plan, runErr error) error {
	row.FinishedAt = m.Now()
	if runErr != nil {
		row.Status, row.Error = "failed", runErr.Error()
	} else {
		row.Status = "done"
		row.Result, _ = json.Marshal(p)
		row.Migrated, row.Stranded = p.migrated(), p.Total-p.migrated()
	}
	// The run's context may be the one that ended it: the outcome is written regardless.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// In a transaction: on SQLite that queues it with the process's other writers (events keep
	// coming) instead of racing them for the lock.
	if err := m.DB.WithTx(wctx, func(tx *persistence.Tx) error { return persistence.MigrationUpdate(wctx, tx, row) }); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr == nil && m.Log != nil {
		m.Log.Info("migration done", slog.String("migration", row.ID), slog.String("definition", row.Definition),
			slog.Int("to_version", row.ToVersion), slog.Int64("migrated", row.Migrated), slog.Int64("stranded", row.Stranded))
	}
	return runErr
}
