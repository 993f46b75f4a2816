package migration

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
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
}

// Request selects what to migrate: to a version (0: the latest), optionally only the instances of
// one older version and/or one state.
type Request struct {
	ToVersion   int
	FromVersion int
	FromState   string
}

// Plan is what a migration would do (a dry run), or what one did (its result): api.md's shape.
type Plan struct {
	Definition string     `json:"definition"`
	ToVersion  int        `json:"to_version"`
	Total      int64      `json:"total"`
	Moves      []Move     `json:"moves"`
	Stranded   []Stranded `json:"stranded"`
}

// Move counts the instances of one (version, state) that go to one state.
type Move struct {
	FromVersion int    `json:"from_version"`
	FromState   string `json:"from_state"`
	ToState     string `json:"to_state"`
	Count       int64  `json:"count"`
}

// Stranded counts the instances of one (version, state) that stay, by reason.
type Stranded struct {
	FromVersion int      `json:"from_version"`
	FromState   string   `json:"from_state"`
	Reason      string   `json:"reason"`
	Count       int64    `json:"count"`
	Detail      string   `json:"detail"`
	Sample      []string `json:"sample"`
}

// sampleSize is how many ids of stranded instances a plan shows per (version, state, reason).
const sampleSize = 5

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
	return def, version, nil
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

// Plan evaluates the migration against the live running instances and changes nothing.
func (m *Migrator) Plan(ctx context.Context, name string, req Request) (Plan, error) {
	to, toVersion, err := m.target(name, req)
	if err != nil {
		return Plan{}, err
	}
	agg := newTally(name, toVersion)
	now := m.Now()
	err = m.each(ctx, name, to, toVersion, req, false, func(_ *persistence.Tx, mp *Mapping, rows []persistence.InstanceRow) error {
		for _, r := range rows {
			agg.add(r, move(mp, r, now))
		}
		return nil
	}, nil)
	if err != nil {
		return Plan{}, err
	}
	return agg.plan(), nil
}

// each calls fn with the running instances the request selects, a batch at a time, version by
// version: in a transaction that locks them when lock is set (fn then writes with it, and may run
// again for the same batch when the transaction is retried; committed follows each commit), read
// plainly otherwise (tx is nil).
func (m *Migrator) each(ctx context.Context, name string, to *machine.Definition, toVersion int, req Request, lock bool,
	fn func(tx *persistence.Tx, mp *Mapping, rows []persistence.InstanceRow) error, committed func()) error {
	counts, err := persistence.InstanceCountRunningByVersion(ctx, m.DB, name)
	if err != nil {
		return err
	}
	batch := cmp.Or(m.Batch, 1000)
	for _, c := range counts {
		if !req.selects(c.Version, toVersion) {
			continue
		}
		from, _, err := m.Defs(name, c.Version)
		if err != nil {
			return err
		}
		mp := Compile(from, to)
		after := ""
		for {
			p := persistence.RunningBatchParams{Definition: name, Version: c.Version, State: req.FromState, After: after, Limit: batch, Lock: lock}
			var n int
			work := func(tx *persistence.Tx, ex persistence.Executor) error {
				rows, err := persistence.InstanceRunningBatch(ctx, ex, p)
				if err != nil {
					return err
				}
				n = len(rows)
				if n == 0 {
					return nil
				}
				after = rows[n-1].ID
				return fn(tx, mp, rows)
			}
			if lock {
				if err = m.DB.WithTx(ctx, func(tx *persistence.Tx) error { return work(tx, tx) }); err == nil && n > 0 {
					committed()
				}
			} else {
				err = work(nil, m.DB)
			}
			if err != nil {
				return err
			}
			if n < batch {
				break
			}
		}
	}
	return nil
}

// move computes an instance's outcome from its stored row.
func move(mp *Mapping, r persistence.InstanceRow, now time.Time) Outcome {
	snap, err := snapshot(mp.From, r)
	if err != nil {
		return Outcome{Reason: ContextInvalid, Detail: err.Error()}
	}
	return mp.Move(snap, now)
}

func snapshot(def *machine.Definition, r persistence.InstanceRow) (machine.Snapshot, error) {
	raw := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(r.Context))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return machine.Snapshot{}, fmt.Errorf("the stored context is corrupt: %w", err)
	}
	typed, err := def.Context.Decode(raw, "ctx", schema.Options{})
	if err != nil {
		return machine.Snapshot{}, fmt.Errorf("the stored context does not fit its version: %w", err)
	}
	return machine.Snapshot{ID: r.ID, Version: r.Version, State: r.State, Context: typed.(map[string]any),
		CreatedAt: r.CreatedAt, EnteredAt: r.EnteredAt}, nil
}

// tally aggregates outcomes into a Plan.
type tally struct {
	p        Plan
	moves    map[Move]int64 // Count zero in the key
	stranded map[strandedKey]*Stranded
}

type strandedKey struct {
	version       int
	state, reason string
}

func newTally(name string, to int) *tally {
	return &tally{p: Plan{Definition: name, ToVersion: to}, moves: map[Move]int64{}, stranded: map[strandedKey]*Stranded{}}
}

func (t *tally) add(r persistence.InstanceRow, o Outcome) {
	t.p.Total++
	if !o.Stranded() {
		t.moves[Move{FromVersion: r.Version, FromState: r.State, ToState: o.To}]++
		return
	}
	k := strandedKey{r.Version, r.State, o.Reason}
	s := t.stranded[k]
	if s == nil {
		s = &Stranded{FromVersion: r.Version, FromState: r.State, Reason: o.Reason, Detail: o.Detail, Sample: []string{}}
		t.stranded[k] = s
	}
	s.Count++
	if len(s.Sample) < sampleSize {
		s.Sample = append(s.Sample, r.ID)
	}
}

func (t *tally) plan() Plan {
	p := t.p
	p.Moves, p.Stranded = []Move{}, []Stranded{}
	for k, n := range t.moves {
		k.Count = n
		p.Moves = append(p.Moves, k)
	}
	for _, s := range t.stranded {
		p.Stranded = append(p.Stranded, *s)
	}
	slices.SortFunc(p.Moves, func(a, b Move) int {
		return cmp.Or(cmp.Compare(a.FromVersion, b.FromVersion), cmp.Compare(a.FromState, b.FromState), cmp.Compare(a.ToState, b.ToState))
	})
	slices.SortFunc(p.Stranded, func(a, b Stranded) int {
		return cmp.Or(cmp.Compare(a.FromVersion, b.FromVersion), cmp.Compare(a.FromState, b.FromState), cmp.Compare(a.Reason, b.Reason))
	})
	return p
}

// migrated counts the moves of a plan.
func (p Plan) migrated() (n int64) {
	for _, m := range p.Moves {
		n += m.Count
	}
	return n
}

// Status is a migration's progress and result (api.md).
type Status struct {
	ID         string     `json:"id"`
	Definition string     `json:"definition"`
	ToVersion  int        `json:"to_version"`
	Status     string     `json:"status"` // running, done, failed
	Migrated   int64      `json:"migrated"`
	Stranded   int64      `json:"stranded"`
	Total      int64      `json:"total"`
	Error      string     `json:"error,omitempty"`
	Result     *Plan      `json:"result,omitempty"` // once done: what moved and what stayed, as a plan shows it
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
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

// Start records a migration as running and returns it; Run executes it.
func (m *Migrator) Start(ctx context.Context, id, name string, req Request) (Status, error) {
	_, toVersion, err := m.target(name, req)
	if err != nil {
		return Status{}, err
	}
	counts, err := persistence.InstanceCountRunningByVersion(ctx, m.DB, name)
	if err != nil {
		return Status{}, err
	}
	var total int64
	for _, c := range counts {
		if req.selects(c.Version, toVersion) {
			total += c.N
		}
	}
	row := persistence.MigrationRow{ID: id, Definition: name, ToVersion: toVersion, FromVersion: req.FromVersion,
		FromState: req.FromState, Status: "running", Total: total, StartedAt: m.Now()}
	if err := m.DB.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.MigrationInsert(ctx, tx, row) }); err != nil {
		return Status{}, err
	}
	return status(row), nil
}

// Run executes a started (or interrupted) migration to the end, batch by batch: each batch's
// instances are locked, moved with their audit rows, and the migration's progress written, in one
// transaction. Instances already moved are on the new version and not selected again, so running
// it again after a crash finishes the rest and moves none twice. Stranded instances stay on their
// version and are counted again by every run.
func (m *Migrator) Run(ctx context.Context, id string) (Status, error) {
	row, err := persistence.MigrationGet(ctx, m.DB, id)
	if err != nil {
		return Status{}, err
	}
	to, _, err := m.Defs(row.Definition, row.ToVersion)
	if err != nil {
		return Status{}, m.finish(ctx, row, nil, err)
	}
	agg := newTally(row.Definition, row.ToVersion)
	var done Plan // what earlier runs of this migration moved (their stranded are counted again)
	if len(row.Result) > 0 && json.Unmarshal(row.Result, &done) == nil {
		for _, mv := range done.Moves {
			agg.moves[Move{FromVersion: mv.FromVersion, FromState: mv.FromState, ToState: mv.ToState}] += mv.Count
		}
		agg.p.Total = done.migrated()
	}
	req := Request{ToVersion: row.ToVersion, FromVersion: row.FromVersion, FromState: row.FromState}
	// The counts and progress with the batch in hand: they become agg and row once it commits.
	var (
		next    *tally
		nextRow persistence.MigrationRow
	)
	err = m.each(ctx, row.Definition, to, row.ToVersion, req, true, func(tx *persistence.Tx, mp *Mapping, rows []persistence.InstanceRow) error {
		now := m.Now()
		next = agg.clone()
		for _, r := range rows {
			o := move(mp, r, now)
			if !o.Stranded() {
				if err := m.write(ctx, tx, id, mp, r, o, row.ToVersion, now); err != nil {
					return err
				}
			}
			next.add(r, o)
		}
		p := next.plan()
		nextRow = row
		nextRow.Migrated, nextRow.Stranded = p.migrated(), p.Total-p.migrated()
		nextRow.Result, _ = json.Marshal(p)
		return persistence.MigrationUpdate(ctx, tx, nextRow)
	}, func() { agg, row = next, nextRow })
	if err != nil && ctx.Err() != nil {
		return Status{}, err // stopped, not failed: it stays running, and the next start resumes it
	}
	if err != nil {
		return Status{}, m.finish(ctx, row, nil, err)
	}
	p := agg.plan()
	if err := m.finish(ctx, row, &p, nil); err != nil {
		return Status{}, err
	}
	return m.Get(ctx, id)
}

// write moves one instance with its audit row.
func (m *Migrator) write(ctx context.Context, tx *persistence.Tx, id string, mp *Mapping, r persistence.InstanceRow, o Outcome, toVersion int, now time.Time) error {
	after, err := json.Marshal(schema.Encode(o.Context))
	if err != nil {
		return err
	}
	rev := r.Revision + 1
	u := persistence.InstanceUpdateParams{ID: r.ID, ExpectRevision: r.Revision, Version: toVersion, State: o.To,
		Context: after, Revision: rev, Final: mp.To.Final(o.To), UpdatedAt: now, EnteredAt: r.EnteredAt}
	a := audit.Row{InstanceID: r.ID, Seq: rev, Event: Event, From: r.State, To: o.To, Guards: []byte("[]"),
		Payload: []byte("{}"), ContextBefore: r.Context, ContextAfter: after, Source: audit.SourceMigration,
		RequestID: id, DefinitionVersion: toVersion, FromVersion: r.Version, At: now}
	return audit.AppendWithUpdate(ctx, tx, u, a)
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
	if err := persistence.MigrationUpdate(wctx, m.DB, row); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr == nil && m.Log != nil {
		m.Log.Info("migration done", slog.String("migration", row.ID), slog.String("definition", row.Definition),
			slog.Int("to_version", row.ToVersion), slog.Int64("migrated", row.Migrated), slog.Int64("stranded", row.Stranded))
	}
	return runErr
}

// clone copies the tally, so that a batch can be counted on the copy.
func (t *tally) clone() *tally {
	c := &tally{p: t.p, moves: maps.Clone(t.moves), stranded: make(map[strandedKey]*Stranded, len(t.stranded))}
	for k, v := range t.stranded {
		s := *v
		s.Sample = slices.Clone(v.Sample)
		c.stranded[k] = &s
	}
	return c
}
