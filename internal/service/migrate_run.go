package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// The executor of a migration: it records the migration (startMigration), then moves its groups
// batch by batch (runMigration). One runner per migration, however many processes try (a database
// lock, not a transaction: it is held for the whole run). Its transactions are the service's, three
// kinds of them:
//   - the record: the migration inserted as running, refused while another of its definition runs;
//   - one per batch: the batch's instances locked and moved with their audit rows, and the
//     migration's progress, together, so that a run stopped anywhere (a crash, Close) resumes after
//     its last batch and moves no instance twice;
//   - the end: done with its result, or failed with the error (the progress left as the committed
//     batches wrote it), under a context of its own, so that it is written whatever became of the
//     run's.
//
// A batch whose connection broke during its COMMIT may have committed without the answer coming
// back: the run reads its progress row back before going on (settle), and goes on when it did.

// MigrationStatus is a migration's progress and result (api.md).
type MigrationStatus struct {
	ID         string         `json:"id" validate:"required"`
	Definition string         `json:"definition" validate:"required"`
	ToVersion  int            `json:"to_version" validate:"required"`
	Status     string         `json:"status" validate:"required" enums:"running,done,failed"` // running, done, failed
	Migrated   int64          `json:"migrated" validate:"required"`
	Stranded   int64          `json:"stranded" validate:"required"`
	Total      int64          `json:"total" validate:"required"`
	Error      string         `json:"error,omitempty"`
	Result     *MigrationPlan `json:"result,omitempty"` // once done: what moved and what stayed, as a plan shows it
	StartedAt  time.Time      `json:"started_at" validate:"required" format:"date-time"`
	FinishedAt *time.Time     `json:"finished_at" validate:"required" format:"date-time" extensions:"x-nullable"` // null while running
}

func migrationStatus(r persistence.MigrationRow) MigrationStatus {
	s := MigrationStatus{ID: r.ID, Definition: r.Definition, ToVersion: r.ToVersion, Status: r.Status, Migrated: r.Migrated,
		Stranded: r.Stranded, Total: r.Total, Error: r.Error, StartedAt: r.StartedAt}
	if !r.FinishedAt.IsZero() {
		f := r.FinishedAt
		s.FinishedAt = &f
	}
	if r.Status == "done" {
		var p MigrationPlan
		if json.Unmarshal(r.Result, &p) == nil {
			s.Result = &p
		}
	}
	return s
}

// getMigration returns a migration's status: NotFoundError when there is no such migration.
func (s *Service) getMigration(ctx context.Context, id string) (MigrationStatus, error) {
	r, err := persistence.MigrationGet(ctx, s.db, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return MigrationStatus{}, &NotFoundError{What: "migration", Key: id}
	}
	if err != nil {
		return MigrationStatus{}, err
	}
	return migrationStatus(r), nil
}

// MigrationRunningError refuses a migration while another of the same definition runs: the two
// would take the same instances.
type MigrationRunningError struct {
	Definition string
	ID         string // the running one
	ToVersion  int
}

func (e *MigrationRunningError) Error() string {
	return fmt.Sprintf("migration %s of %q to version %d is running: wait until it is done (GET /v1/migrations/%s), then ask again",
		e.ID, e.Definition, e.ToVersion, e.ID)
}

// Code is the API's error code for it.
func (e *MigrationRunningError) Code() string { return code.MigrationRunning }

// startMigration records a migration as running and returns it; runMigration executes it. A
// definition has one migration running at a time: a second is refused with a MigrationRunningError
// naming the first.
func (s *Service) startMigration(ctx context.Context, id, name string, req MigrationRequest) (MigrationStatus, error) {
	to, toVersion, err := s.migrationTarget(name, req)
	if err != nil {
		return MigrationStatus{}, err
	}
	groups, err := s.migrationGroups(ctx, name, to, toVersion, req)
	if err != nil {
		return MigrationStatus{}, err
	}
	var total int64
	for _, g := range groups {
		total += g.n
	}
	row := persistence.MigrationRow{ID: id, Definition: name, ToVersion: toVersion, FromVersion: req.fromVersion(),
		FromState: req.fromState(), Status: "running", Total: total, StartedAt: s.now()}
	insert := func(ctx context.Context) error {
		return s.db.WithTx(ctx, func(tx *persistence.Tx) error {
			if err := persistence.MigrationInsert(ctx, tx, row); err != nil {
				return err
			}
			if req.auto {
				return behind(ctx, tx, name, toVersion)
			}
			return nil
		})
	}
	for try := 1; ; try++ {
		// Inserting the same row again settles a COMMIT whose answer was lost (outcome.go).
		err = s.settled(ctx, "migration", id, insert)
		if !errors.Is(err, persistence.ErrConflict) {
			break
		}
		// A conflict with a migration of this (new) id is this one, recorded by a try above.
		if _, gerr := persistence.MigrationGet(ctx, s.db, id); gerr == nil {
			err = nil
			break
		}
		running, rerr := persistence.MigrationGetRunning(ctx, s.db, name)
		if rerr == nil {
			return MigrationStatus{}, &MigrationRunningError{Definition: name, ID: running.ID, ToVersion: running.ToVersion}
		}
		if !errors.Is(rerr, persistence.ErrNotFound) || try == 3 {
			break
		}
		// The running migration ended between the insert and the read: insert again.
	}
	if err != nil {
		return MigrationStatus{}, err
	}
	return migrationStatus(row), nil
}

// errNothingToMove: an automatic migration found, once recorded, no running instance left on an
// older version (the migration that ran meanwhile moved them), and was not recorded.
var errNothingToMove = errors.New("no running instance is on an older version")

// behind returns errNothingToMove unless a running instance of name is on a version older than to,
// read in tx: after the migration's row is inserted, so that a migration that ended just before is
// seen with what it moved.
func behind(ctx context.Context, tx *persistence.Tx, name string, to int) error {
	counts, err := persistence.InstanceCountRunningByVersion(ctx, tx, name)
	if err != nil {
		return err
	}
	for _, c := range counts {
		if c.Version < to {
			return nil
		}
	}
	return errNothingToMove
}

// errRunElsewhere: another process is running the migration (runMigration returns it at once).
var errRunElsewhere = errors.New("the migration is being run by another process")

// runMigration executes a started (or interrupted) migration to the end, group by group and batch
// by batch: each batch's instances are locked, moved with their audit rows, and the migration's
// progress written, in one transaction. Instances already moved are on the new version and not
// selected again, so running it again after a crash finishes the rest and moves none twice.
// Stranded instances stay on their version and are counted again by every run.
func (s *Service) runMigration(ctx context.Context, id string) (MigrationStatus, error) {
	// One runner per migration: processes resuming the running migrations at start, and fsmd
	// migrate run resuming one, may try at once. The lock goes with its holder, however it dies.
	release, ok, err := s.db.TryLock(ctx, "migration "+id)
	if err != nil {
		return MigrationStatus{}, err
	}
	if !ok {
		return MigrationStatus{}, errRunElsewhere
	}
	defer release()
	row, err := persistence.MigrationGet(ctx, s.db, id)
	if err != nil {
		return MigrationStatus{}, err
	}
	if row.Status != "running" {
		return migrationStatus(row), nil // finished by another runner meanwhile
	}
	to, _, err := s.reg.get(row.Definition, row.ToVersion)
	if err != nil {
		return MigrationStatus{}, s.finishMigration(ctx, row, nil, err)
	}
	r := &migrationRun{s: s, start: row, row: row, agg: newTally(row.Definition, row.ToVersion)}
	var done MigrationPlan // what earlier runs of this migration moved (their stranded are counted again)
	if len(row.Result) > 0 && json.Unmarshal(row.Result, &done) == nil {
		for _, mv := range done.Moves {
			r.agg.moves[MigrationMove{FromVersion: mv.FromVersion, FromState: mv.FromState, ToState: mv.ToState}] += mv.Count
		}
		r.agg.p.Total = done.migrated()
	}
	req := MigrationRequest{ToVersion: row.ToVersion, Filter: &MigrationFilter{Version: row.FromVersion, State: row.FromState}}
	groups, err := s.migrationGroups(ctx, row.Definition, to, row.ToVersion, req)
	if err == nil {
		err = r.moveGroups(ctx, groups)
	}
	if err != nil && ctx.Err() != nil {
		return MigrationStatus{}, err // stopped, not failed: it stays running, and the next start resumes it
	}
	if err != nil {
		return MigrationStatus{}, s.finishMigration(ctx, r.row, nil, err)
	}
	p := r.agg.plan()
	if err := s.finishMigration(ctx, r.row, &p, nil); err != nil {
		return MigrationStatus{}, err
	}
	return s.getMigration(ctx, id)
}

// migrationRun is one execution of a migration: its counts and progress row as of the last commit.
type migrationRun struct {
	s     *Service
	start persistence.MigrationRow // as read at the start, for its id, definition and versions: never written
	// mu is held by a batch from its progress write to its commit, so that the progress row, written
	// by batches of several groups moving at once, follows their commits in order.
	mu  sync.Mutex
	row persistence.MigrationRow // under mu
	agg *tally
}

// migrationEvent is the event name of a migration's audit row (its source says migration).
const migrationEvent = "migrate"

// commit writes a batch with write, which counts what it does on a tally of its own, and the
// progress it makes, the run's counts with the batch's, in the same transaction; the counts and row
// become those once it commits. It returns how many instances the batch had: 0 when there were
// none left.
func (r *migrationRun) commit(ctx context.Context, write func(tx *persistence.Tx, batch *tally) (int, error)) (int, error) {
	var (
		next    *tally
		nextRow persistence.MigrationRow
		n       int
		held    bool // r.mu, from the progress write to the commit (a retry of the batch keeps it)
	)
	defer func() {
		if held {
			r.mu.Unlock()
		}
	}()
	err := r.s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		// The batch's commit does not wait for the disk: a crash of the server loses whole batches,
		// which the resumed run moves again; the run's end, written synchronously, flushes them all.
		if err := persistence.CommitLazily(ctx, tx); err != nil {
			return err
		}
		batch := newTally(r.start.Definition, r.start.ToVersion)
		var err error
		if n, err = write(tx, batch); err != nil || n == 0 {
			return err
		}
		if !held {
			r.mu.Lock()
			held = true
		}
		next = r.agg.clone()
		next.merge(batch)
		p := next.plan()
		nextRow = r.row
		nextRow.Migrated, nextRow.Stranded = p.migrated(), p.Total-p.migrated()
		nextRow.Result, _ = json.Marshal(p)
		return persistence.MigrationUpdate(ctx, tx, nextRow)
	})
	if err != nil && held && errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err) {
		// The connection broke during the batch: its COMMIT may have applied without the answer
		// coming back. Found out before any other batch writes its progress (r.mu is held), so that
		// the run's counts are those committed.
		var committed bool
		if committed, err = r.settle(ctx, nextRow, err); committed {
			err = nil
		}
	}
	if err == nil && n > 0 {
		r.agg, r.row = next, nextRow
	}
	return n, err
}

// settle finds out, after the connection broke during the commit of a batch whose progress was
// to be want, whether it committed, from the progress row: the batches write it one at a time, in
// the order they commit (r.mu), each with the instances it took added, so it is either want (the
// batch committed) or r.row (it did not). The row is locked on a new connection, which waits for
// a transaction still committing. Not committed, cause is returned: nothing of the batch was
// written. Unreadable within resolveWindow, or neither, the error says the batch's outcome is
// unknown.
func (r *migrationRun) settle(ctx context.Context, want persistence.MigrationRow, cause error) (bool, error) {
	var got persistence.MigrationRow
	err := r.s.retryUncertain(ctx, "migration", want.ID, cause, func(rctx context.Context) error {
		return r.s.db.WithTx(rctx, func(tx *persistence.Tx) error {
			var err error
			got, err = persistence.MigrationGetForUpdate(rctx, tx, want.ID)
			return err
		})
	})
	switch {
	case err != nil:
		return false, fmt.Errorf("migration %s: a batch's connection broke during its commit, and whether it committed could not be read back: %w",
			want.ID, errors.Join(cause, err))
	case got.Migrated == want.Migrated && got.Stranded == want.Stranded:
		return true, nil
	case got.Migrated == r.row.Migrated && got.Stranded == r.row.Stranded:
		return false, cause
	}
	return false, fmt.Errorf("migration %s: a batch's connection broke during its commit, and its progress (%d migrated, %d stranded) "+
		"is neither the batch's nor the one before: %w", want.ID, got.Migrated, got.Stranded, cause)
}

// evaluate moves the instances of a group after the id after ("" for all) whose data decides, batch
// by batch: each instance's move is decided in Go, and the batch's moves written together.
func (r *migrationRun) evaluate(ctx context.Context, g group, after string) error {
	mv := persistence.MigrationBatch{FromVersion: g.version, ToVersion: r.start.ToVersion, MigrationID: r.start.ID, Event: migrationEvent}
	p := persistence.RunningBatchParams{Definition: r.start.Definition, Version: g.version, State: g.state,
		After: after, Limit: r.s.migrationBatch(), Lock: true}
	for {
		var last string
		n, err := r.commit(ctx, func(tx *persistence.Tx, batch *tally) (int, error) {
			rows, err := persistence.InstanceRunningBatch(ctx, tx, p)
			if err != nil || len(rows) == 0 {
				return 0, err
			}
			last = rows[len(rows)-1].ID
			mv.At = r.s.now()
			moved := make([]persistence.MovedInstance, 0, len(rows))
			for _, row := range rows {
				o := migrationOutcome(g.mp, row, mv.At)
				batch.add(row, o)
				if o.Stranded() {
					continue
				}
				after, err := encodeContext(o.Context)
				if err != nil {
					return 0, err
				}
				moved = append(moved, persistence.MovedInstance{ID: row.ID, Revision: row.Revision, FromState: row.State,
					ToState: o.To, Before: row.Context, After: after, Final: g.mp.To.Final(o.To), EnteredAt: row.EnteredAt,
					Timers: arms(o.Timers)})
			}
			return len(rows), audit.AppendMoves(ctx, tx, mv, moved)
		})
		if err != nil || n < p.Limit {
			return err
		}
		p.After = last
	}
}

// finishMigration writes the end of a run: done with its result, or failed with the error (then
// returned).
func (s *Service) finishMigration(ctx context.Context, row persistence.MigrationRow, p *MigrationPlan, runErr error) error {
	row.FinishedAt = s.now()
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
	// coming) instead of racing them for the lock. A failure leaves the progress as the batches that
	// committed wrote it: the run's own counts may lack a batch whose commit's outcome it could not
	// learn.
	err := s.db.WithTx(wctx, func(tx *persistence.Tx) error {
		if runErr != nil {
			return persistence.MigrationFail(wctx, tx, row.ID, row.Error, row.FinishedAt)
		}
		return persistence.MigrationUpdate(wctx, tx, row)
	})
	if err != nil {
		return errors.Join(runErr, err)
	}
	if runErr == nil {
		s.log.Info("migration done", slog.String("migration", row.ID), slog.String("definition", row.Definition),
			slog.Int("to_version", row.ToVersion), slog.Int64("migrated", row.Migrated), slog.Int64("stranded", row.Stranded))
	}
	return runErr
}
