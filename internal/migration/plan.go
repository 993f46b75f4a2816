package migration

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Plan is what a migration would do (a dry run), or what one did (its result): api.md's shape.
type Plan struct {
	Definition string     `json:"definition" validate:"required"`
	ToVersion  int        `json:"to_version" validate:"required"`
	Total      int64      `json:"total" validate:"required"`
	Moves      []Move     `json:"moves" validate:"required"`
	Stranded   []Stranded `json:"stranded" validate:"required"`
}

// Move counts the instances of one (version, state) that go to one state.
type Move struct {
	FromVersion int    `json:"from_version" validate:"required"`
	FromState   string `json:"from_state" validate:"required"`
	ToState     string `json:"to_state" validate:"required"`
	Count       int64  `json:"count" validate:"required"`
}

// Stranded counts the instances of one (version, state) that stay, by reason.
type Stranded struct {
	FromVersion int      `json:"from_version" validate:"required"`
	FromState   string   `json:"from_state" validate:"required"`
	Reason      string   `json:"reason" validate:"required" enums:"state_unmapped,rule_failed,context_invalid"`
	Count       int64    `json:"count" validate:"required"`
	Detail      string   `json:"detail" validate:"required"`
	Sample      []string `json:"sample" validate:"required"`
}

// sampleSize is how many ids of stranded instances a plan shows per (version, state, reason).
const sampleSize = 5

// group is the running instances of one (version, state) a migration takes, and how they move.
// Only guarded rules and contexts that change type need each instance's data: the other groups
// are decided once for all their instances.
type group struct {
	version int
	state   string
	n       int64 // when counted
	mp      *Mapping
	how     how
	to      string // inSQL: the state they all go to
	reason  string // stranded: why they all stay
	detail  string
}

type how int

const (
	evaluate how = iota // each instance's move is decided in Go, on its data
	inSQL               // all go to one state, contexts rewritten by SQL (PostgreSQL)
	stranded            // none can move, whatever its data
)

// groups counts the running instances the request selects per (version, state), and decides for
// each group how it moves, in version and state order.
func (m *Migrator) groups(ctx context.Context, name string, to *machine.Definition, toVersion int, req Request) ([]group, error) {
	counts, err := persistence.InstanceCountRunningByState(ctx, m.DB, name)
	if err != nil {
		return nil, err
	}
	mappings := map[int]*Mapping{}
	var out []group
	for _, c := range counts {
		if !req.selects(c.Version, toVersion) || (req.FromState != "" && c.State != req.FromState) {
			continue
		}
		mp := mappings[c.Version]
		if mp == nil {
			from, _, err := m.Defs(name, c.Version)
			if err != nil {
				return nil, err
			}
			mp = Compile(from, to)
			mp.ToVersion = toVersion
			mappings[c.Version] = mp
		}
		out = append(out, m.classify(group{version: c.Version, state: c.State, n: c.N, mp: mp}))
	}
	return out, nil
}

// classify decides how g moves.
func (m *Migrator) classify(g group) group {
	if err := g.mp.Err(); err != nil {
		g.how, g.reason, g.detail = stranded, RuleFailed, err.Error()
		return g
	}
	to, ok := g.mp.Target(g.state)
	switch {
	case ok && g.mp.Rewrite() != nil && m.DB.Dialect == persistence.Postgres && !m.perInstance && g.mp.timersInSQL(to):
		g.how, g.to = inSQL, to
	case !ok && g.mp.unmapped(g.state):
		g.how, g.reason, g.detail = stranded, StateUnmapped, unmappedDetail(g.state)
	default:
		g.how = evaluate
	}
	return g
}

// Plan evaluates the migration against the live running instances and changes nothing.
func (m *Migrator) Plan(ctx context.Context, name string, req Request) (Plan, error) {
	to, toVersion, err := m.target(name, req)
	if err != nil {
		return Plan{}, err
	}
	groups, err := m.groups(ctx, name, to, toVersion, req)
	if err != nil {
		return Plan{}, err
	}
	agg := newTally(name, toVersion)
	now := m.Now()
	for _, g := range groups {
		switch g.how {
		case inSQL:
			// What SQL would move is counted; the contexts it would leave (of another shape: written
			// outside fsmd) are decided here in Go, as the run will.
			shape := g.mp.Rewrite().shape()
			var misshapen int64
			err := m.batches(ctx, name, g, &shape, func(rows []persistence.InstanceRow) {
				misshapen += int64(len(rows))
				for _, r := range rows {
					agg.add(r, move(g.mp, r, now))
				}
			})
			if err != nil {
				return Plan{}, err
			}
			agg.addMoves(g, g.to, g.n-misshapen)
		case stranded:
			if err := agg.addStranded(ctx, m.DB, name, g); err != nil {
				return Plan{}, err
			}
		case evaluate:
			err := m.batches(ctx, name, g, nil, func(rows []persistence.InstanceRow) {
				for _, r := range rows {
					agg.add(r, move(g.mp, r, now))
				}
			})
			if err != nil {
				return Plan{}, err
			}
		}
	}
	return agg.plan(), nil
}

// batches calls fn with the running instances of g, a batch at a time in id order, read plainly:
// all of them, or with misshapen only those whose context does not have that shape. The next batch
// is read while fn works on one: the database and the decisions in Go overlap.
func (m *Migrator) batches(ctx context.Context, name string, g group, misshapen *persistence.ContextShape,
	fn func(rows []persistence.InstanceRow)) error {
	p := persistence.RunningBatchParams{Definition: name, Version: g.version, State: g.state, Limit: m.batch(), Misshapen: misshapen}
	type batch struct {
		rows []persistence.InstanceRow
		err  error
	}
	read := func(after string) <-chan batch {
		c := make(chan batch, 1)
		go func() {
			q := p
			q.After = after
			rows, err := persistence.InstanceRunningBatch(ctx, m.DB, q)
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

func (m *Migrator) batch() int { return cmp.Or(m.Batch, 1000) }

// timersInSQL reports whether SQL can arm the timers of state (none is computed by an expression).
func (m *Mapping) timersInSQL(state string) bool {
	_, _, ok := m.afterTimers(state)
	return ok
}

// sqlTimers are the timers of state as SQL arms them.
func (m *Mapping) sqlTimers(state string) []persistence.After {
	events, after, _ := m.afterTimers(state)
	out := make([]persistence.After, len(events))
	for i := range events {
		out[i] = persistence.After{Event: events[i], After: after[i]}
	}
	return out
}

// shape is the context shape SQL checks before it moves an instance. Its size bound keeps SQL from
// moving a context that the defaults would take past schema.MaxContextSize (PostgreSQL's text of a
// context is never shorter than its JSON as measured): a longer one is decided in Go, exactly, and
// stranded as context_invalid when it would be over.
func (r *Rewrite) shape() persistence.ContextShape {
	return persistence.ContextShape{Fields: r.Fields, Kinds: r.Kinds, MaxText: max(1, schema.MaxContextSize-len(r.Defaults))}
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

// addMoves counts n instances of g moving to state to.
func (t *tally) addMoves(g group, to string, n int64) {
	t.p.Total += n
	t.moves[Move{FromVersion: g.version, FromState: g.state, ToState: to}] += n
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
		s = &Stranded{FromVersion: g.version, FromState: g.state, Reason: g.reason, Detail: g.detail, Sample: []string{}}
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
func (p Plan) migrated() (n int64) {
	for _, m := range p.Moves {
		n += m.Count
	}
	return n
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
