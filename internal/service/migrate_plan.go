package service

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// The planner of a migration: internal/migration's decisions applied to the live running
// instances, counted and changing nothing (PlanMigration). The executor (migrate_run.go) walks the
// same groups and batches to move them.

// MigrationPlan is what a migration would do (a dry run), or what one did (its result): api.md's
// shape.
type MigrationPlan struct {
	Definition string              `json:"definition" validate:"required"`
	ToVersion  int                 `json:"to_version" validate:"required"`
	Total      int64               `json:"total" validate:"required"`
	Moves      []MigrationMove     `json:"moves" validate:"required"`
	Stranded   []MigrationStranded `json:"stranded" validate:"required"`
}

// MigrationMove counts the instances of one (version, state) that go to one state.
type MigrationMove struct {
	FromVersion int    `json:"from_version" validate:"required"`
	FromState   string `json:"from_state" validate:"required"`
	ToState     string `json:"to_state" validate:"required"`
	Count       int64  `json:"count" validate:"required"`
}

// MigrationStranded counts the instances of one (version, state) that stay, by reason.
type MigrationStranded struct {
	FromVersion int      `json:"from_version" validate:"required"`
	FromState   string   `json:"from_state" validate:"required"`
	Reason      string   `json:"reason" validate:"required" enums:"state_unmapped,rule_failed,context_invalid"`
	Count       int64    `json:"count" validate:"required"`
	Detail      string   `json:"detail" validate:"required"`
	Sample      []string `json:"sample" validate:"required"`
}

// sampleSize is how many ids of stranded instances a plan shows per (version, state, reason).
const sampleSize = 5

// fromVersion is the older version the request takes alone, 0 for every older one.
func (r MigrationRequest) fromVersion() int {
	if r.Filter == nil {
		return 0
	}
	return r.Filter.Version
}

// fromState is the state the request takes alone, "" for every state.
func (r MigrationRequest) fromState() string {
	if r.Filter == nil {
		return ""
	}
	return r.Filter.State
}

// selects reports whether the request takes the running instances of version, given the target.
func (r MigrationRequest) selects(version, toVersion int) bool {
	return version < toVersion && (r.fromVersion() == 0 || version == r.fromVersion())
}

// migrationTarget resolves the request's version: BadRequestError for versions that cannot be
// migrated from and to, NotFoundError for a definition or version that is not registered.
func (s *Service) migrationTarget(name string, req MigrationRequest) (*machine.Definition, int, error) {
	if req.ToVersion < 0 || req.fromVersion() < 0 {
		return nil, 0, &BadRequestError{"versions are 1 or more"}
	}
	def, row, err := s.reg.get(name, req.ToVersion)
	if err != nil {
		return nil, 0, err
	}
	version := row.Version
	if req.fromVersion() >= version {
		return nil, 0, &BadRequestError{fmt.Sprintf("from_version %d is not older than to_version %d", req.fromVersion(), version)}
	}
	if req.fromState() != "" && !s.migrationHasState(name, req, version) {
		return nil, 0, &BadRequestError{fmt.Sprintf("filter.state %q: no version of %q the migration takes (older than %d) has that state",
			req.fromState(), name, version)}
	}
	return def, version, nil
}

// migrationHasState reports whether an older version the request takes has its state.
func (s *Service) migrationHasState(name string, req MigrationRequest, toVersion int) bool {
	for v := 1; v < toVersion; v++ {
		if !req.selects(v, toVersion) {
			continue
		}
		if def, _, err := s.reg.get(name, v); err == nil && def.States[req.fromState()] != nil {
			return true
		}
	}
	return false
}

// group is the running instances of one (version, state) a migration takes, and how they move.
// Only guarded rules and contexts that change type need each instance's data: the other groups
// are decided once for all their instances (migration.Mapping.Group).
type group struct {
	version int
	state   string
	n       int64 // when counted
	mp      *migration.Mapping
	how     how
	to      string            // inSQL: the state they all go to
	timers  []migration.Delay // inSQL: the timers of that state
	reason  string            // stranded: why they all stay
	detail  string
}

type how int

const (
	evaluate how = iota // each instance's move is decided in Go, on its data
	inSQL               // all go to one state, contexts rewritten by SQL (where the database can)
	stranded            // none can move, whatever its data
)

// migrationGroups counts the running instances the request selects per (version, state), and
// decides for each group how it moves, in version and state order.
func (s *Service) migrationGroups(ctx context.Context, name string, to *machine.Definition, toVersion int, req MigrationRequest) ([]group, error) {
	counts, err := persistence.InstanceCountRunningByState(ctx, s.db, name)
	if err != nil {
		return nil, err
	}
	mappings := map[int]*migration.Mapping{}
	var out []group
	for _, c := range counts {
		if !req.selects(c.Version, toVersion) || (req.fromState() != "" && c.State != req.fromState()) {
			continue
		}
		mp := mappings[c.Version]
		if mp == nil {
			from, _, err := s.reg.get(name, c.Version)
			if err != nil {
				return nil, err
			}
			mp = migration.Compile(from, to)
			mp.ToVersion = toVersion
			mappings[c.Version] = mp
		}
		out = append(out, s.classify(group{version: c.Version, state: c.State, n: c.N, mp: mp}))
	}
	return out, nil
}

// classify decides how g moves: as the mapping decides for its state, in SQL where the database
// can move a group in SQL.
func (s *Service) classify(g group) group {
	d := g.mp.Group(g.state)
	switch {
	case d.Stranded():
		g.how, g.reason, g.detail = stranded, d.Reason, d.Detail
	case d.Together && s.db.MovesInSQL() && !s.mig.perInstance:
		g.how, g.to, g.timers = inSQL, d.To, d.Timers
	default:
		g.how = evaluate
	}
	return g
}

// planMigration evaluates the migration against the live running instances and changes nothing.
func (s *Service) planMigration(ctx context.Context, name string, req MigrationRequest) (MigrationPlan, error) {
	to, toVersion, err := s.migrationTarget(name, req)
	if err != nil {
		return MigrationPlan{}, err
	}
	groups, err := s.migrationGroups(ctx, name, to, toVersion, req)
	if err != nil {
		return MigrationPlan{}, err
	}
	agg := newTally(name, toVersion)
	now := s.now()
	// What SQL would move is counted; the contexts it would leave (of another shape: written outside
	// fsmd) are counted in one pass per version, on a connection of its own while the groups decided
	// in Go are read on another, and then read and decided here in Go, as the run will.
	type counted struct {
		misshapen map[groupKey]int64
		err       error
	}
	checked := make(chan counted, 1)
	go func() {
		m, err := s.countMisshapen(ctx, name, groups)
		checked <- counted{m, err}
	}()

	for _, g := range groups {
		if err != nil {
			break
		}
		switch g.how {
		case stranded:
			err = agg.addStranded(ctx, s.db, name, g)
		case evaluate:
			err = s.runningBatches(ctx, name, g, nil, func(rows []persistence.InstanceRow) {
				for i, o := range decideAll(g.mp, rows, now) {
					agg.add(rows[i], o)
				}
			})
		}
	}
	c := <-checked
	if err = cmp.Or(err, c.err); err != nil {
		return MigrationPlan{}, err
	}
	for _, g := range groups {
		if g.how != inSQL {
			continue
		}
		var misshapen int64
		if c.misshapen[groupKey{g.version, g.state}] > 0 {
			shape := contextShape(g.mp.Rewrite())
			err := s.runningBatches(ctx, name, g, &shape, func(rows []persistence.InstanceRow) {
				misshapen += int64(len(rows))
				for i, o := range decideAll(g.mp, rows, now) {
					agg.add(rows[i], o)
				}
			})
			if err != nil {
				return MigrationPlan{}, err
			}
		}
		agg.addMoves(g, g.to, g.n-misshapen)
	}
	return agg.plan(), nil
}

// groupKey names a group: a (version, state).
type groupKey struct {
	version int
	state   string
}

// countMisshapen counts, per group that moves in SQL, its instances whose context SQL would leave
// (not of its version's shape): one query per version.
func (s *Service) countMisshapen(ctx context.Context, name string, groups []group) (map[groupKey]int64, error) {
	states := map[int][]string{}
	shapes := map[int]persistence.ContextShape{}
	for _, g := range groups {
		if g.how == inSQL {
			states[g.version] = append(states[g.version], g.state)
			shapes[g.version] = contextShape(g.mp.Rewrite()) // one Mapping per version: one shape
		}
	}
	out := map[groupKey]int64{}
	for _, v := range slices.Sorted(maps.Keys(states)) {
		counts, err := persistence.InstanceCountMisshapen(ctx, s.db, name, v, states[v], shapes[v])
		if err != nil {
			return nil, err
		}
		for state, n := range counts {
			out[groupKey{v, state}] = n
		}
	}
	return out, nil
}

// runningBatches calls fn with the running instances of g, a batch at a time in id order, read
// plainly: all of them, or with misshapen only those whose context does not have that shape. The
// next batch is read while fn works on one: the database and the decisions in Go overlap.
func (s *Service) runningBatches(ctx context.Context, name string, g group, misshapen *persistence.ContextShape,
	fn func(rows []persistence.InstanceRow)) error {
	p := persistence.RunningBatchParams{Definition: name, Version: g.version, State: g.state, Limit: s.migrationBatch(), Misshapen: misshapen}
	type batch struct {
		rows []persistence.InstanceRow
		err  error
	}
	read := func(after string) <-chan batch {
		c := make(chan batch, 1)
		go func() {
			q := p
			q.After = after
			rows, err := persistence.InstanceRunningBatch(ctx, s.db, q)
			c <- batch{rows, err}
		}()
		return c
	}
	next := read("")
	for {
		b := <-next
		if b.err != nil {
			return b.err
		}
		full := len(b.rows) == p.Limit
		if full {
			next = read(b.rows[len(b.rows)-1].ID)
		}
		fn(b.rows)
		if !full {
			return nil
		}
	}
}

// migrationBatch is how many instances a migration takes per batch (Options.MigrationBatch).
func (s *Service) migrationBatch() int { return cmp.Or(s.mig.batch, 1000) }

// migrationWorkers is how many groups a migration moves at once (Options.MigrationWorkers): one
// where the database takes one writer at a time (SQLite).
func (s *Service) migrationWorkers() int {
	if !s.db.MovesInSQL() {
		return 1
	}
	return cmp.Or(s.mig.workers, 2)
}

// contextShape is the shape SQL checks a stored context against before it moves it with rw.
func contextShape(rw *migration.Rewrite) persistence.ContextShape {
	kinds := slices.Clone(rw.Kinds)
	for i, nullable := range rw.Nullable {
		if nullable {
			kinds[i] = persistence.OptionalKind(kinds[i])
		}
	}
	return persistence.ContextShape{Fields: rw.Fields, Kinds: kinds, MaxText: rw.MaxText()}
}

// decideAll decides where each of rows goes (migrationOutcome), in their order, on as many
// goroutines as the process has CPUs (at most 4): the decisions are independent, and for a
// population decided in Go they are most of a plan's time.
func decideAll(mp *migration.Mapping, rows []persistence.InstanceRow, now time.Time) []migration.Outcome {
	out := make([]migration.Outcome, len(rows))
	k := min(runtime.GOMAXPROCS(0), 4)
	chunk := max(1, (len(rows)+k-1)/k)
	var wg sync.WaitGroup
	for start := 0; start < len(rows); start += chunk {
		wg.Go(func() {
			for i := start; i < min(start+chunk, len(rows)); i++ {
				out[i] = migrationOutcome(mp, rows[i], now)
			}
		})
	}
	wg.Wait()
	return out
}

// migrationOutcome decides where an instance goes from its stored row, typed as every event types
// it (snapshot): a stored context that does not fit its version stays, context_invalid.
func migrationOutcome(mp *migration.Mapping, r persistence.InstanceRow, now time.Time) migration.Outcome {
	snap, err := snapshot(mp.From, r)
	if err != nil {
		return migration.Outcome{Reason: migration.ContextInvalid, Detail: err.Error()}
	}
	return mp.Decide(snap, now)
}

// tally aggregates outcomes into a MigrationPlan.
type tally struct {
	p        MigrationPlan
	moves    map[MigrationMove]int64 // Count zero in the key
	stranded map[strandedKey]*MigrationStranded
}

type strandedKey struct {
	version       int
	state, reason string
}

func newTally(name string, to int) *tally {
	return &tally{p: MigrationPlan{Definition: name, ToVersion: to}, moves: map[MigrationMove]int64{},
		stranded: map[strandedKey]*MigrationStranded{}}
}

func (t *tally) add(r persistence.InstanceRow, o migration.Outcome) {
	t.p.Total++
	if !o.Stranded() {
		t.moves[MigrationMove{FromVersion: r.Version, FromState: r.State, ToState: o.To}]++
		return
	}
	k := strandedKey{r.Version, r.State, o.Reason}
	s := t.stranded[k]
	if s == nil {
		s = &MigrationStranded{FromVersion: r.Version, FromState: r.State, Reason: o.Reason, Detail: o.Detail, Sample: []string{}}
		t.stranded[k] = s
	}
	s.Count++
	if len(s.Sample) < sampleSize {
		s.Sample = append(s.Sample, r.ID)
	}
}

func (t *tally) plan() MigrationPlan {
	p := t.p
	p.Moves, p.Stranded = []MigrationMove{}, []MigrationStranded{}
	for k, n := range t.moves {
		k.Count = n
		p.Moves = append(p.Moves, k)
	}
	for _, s := range t.stranded {
		p.Stranded = append(p.Stranded, *s)
	}
	slices.SortFunc(p.Moves, func(a, b MigrationMove) int {
		return cmp.Or(cmp.Compare(a.FromVersion, b.FromVersion), cmp.Compare(a.FromState, b.FromState), cmp.Compare(a.ToState, b.ToState))
	})
	slices.SortFunc(p.Stranded, func(a, b MigrationStranded) int {
		return cmp.Or(cmp.Compare(a.FromVersion, b.FromVersion), cmp.Compare(a.FromState, b.FromState), cmp.Compare(a.Reason, b.Reason))
	})
	return p
}

// addMoves counts n instances of g moving to state to.
func (t *tally) addMoves(g group, to string, n int64) {
	t.p.Total += n
	t.moves[MigrationMove{FromVersion: g.version, FromState: g.state, ToState: to}] += n
}

// addStranded counts the instances of g, which all stay, with a sample of their ids.
func (t *tally) addStranded(ctx context.Context, ex persistence.Executor, name string, g group) error {
	sample, err := persistence.InstanceRunningSample(ctx, ex, name, g.version, g.state, sampleSize)
	if err != nil {
		return err
	}
	t.p.Total += g.n
	k := strandedKey{g.version, g.state, g.reason}
	s := t.stranded[k]
	if s == nil {
		s = &MigrationStranded{FromVersion: g.version, FromState: g.state, Reason: g.reason, Detail: g.detail, Sample: []string{}}
		t.stranded[k] = s
	}
	s.Count += g.n
	for _, id := range sample {
		if len(s.Sample) < sampleSize && !slices.Contains(s.Sample, id) {
			s.Sample = append(s.Sample, id)
		}
	}
	return nil
}

// migrated counts the moves of a plan.
func (p MigrationPlan) migrated() (n int64) {
	for _, m := range p.Moves {
		n += m.Count
	}
	return n
}

// merge adds the counts of o (a batch's) to t, and o's sample ids to t's while it has room.
func (t *tally) merge(o *tally) {
	t.p.Total += o.p.Total
	for k, n := range o.moves {
		t.moves[k] += n
	}
	for k, os := range o.stranded {
		s := t.stranded[k]
		if s == nil {
			c := *os
			c.Sample = slices.Clone(os.Sample)
			t.stranded[k] = &c
			continue
		}
		s.Count += os.Count
		for _, id := range os.Sample {
			if len(s.Sample) < sampleSize && !slices.Contains(s.Sample, id) {
				s.Sample = append(s.Sample, id)
			}
		}
	}
}

// clone copies the tally, so that a batch can be counted on the copy.
func (t *tally) clone() *tally {
	c := &tally{p: t.p, moves: maps.Clone(t.moves), stranded: make(map[strandedKey]*MigrationStranded, len(t.stranded))}
	for k, v := range t.stranded {
		s := *v
		s.Sample = slices.Clone(v.Sample)
		c.stranded[k] = &s
	}
	return c
}
