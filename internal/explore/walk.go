package explore

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Defaults of Options.
const (
	DefaultDepth   = 8
	DefaultMax     = 20000
	DefaultTimeout = time.Minute
)

// Start is the time the walk starts at: a transition table's default `now`, so that the cases it
// writes need none.
var Start = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Options bound a walk.
type Options struct {
	Depth int // steps (events and clock advances) from the initial state; 0: DefaultDepth
	Max   int // instances visited at most, all initial contexts together; 0: DefaultMax
	// Timeout ends a walk that takes longer (reported as stopped); 0: DefaultTimeout. A definition
	// whose expressions each run up to their time budget would otherwise take Max times that.
	Timeout time.Duration
}

// Step is one step of a sequence: an event with its payload, or a clock advance that fires the
// timers falling due.
type Step struct {
	Event   string
	Payload map[string]any // loosely typed, as a table writes it; nil: none
	Advance time.Duration  // when Event is ""
}

// node is an instance as the walk reached it: what the engine needs, the virtual clock, the armed
// timers, and the step from its parent (the shortest way to it, since the walk is breadth-first).
type node struct {
	snap    machine.Snapshot
	clock   time.Time
	pending []machine.Due
	parent  *node
	step    Step
	depth   int
	ctx     map[string]any // of a root: the context it was created with, loosely typed
}

// walker is one walk of one definition.
type walker struct {
	def      *machine.Definition
	opts     Options
	actor    machine.Actor
	payloads map[string][]map[string]any
	seen     map[[sha256.Size]byte]bool // the keys of the instances visited, hashed: a context may be large
	bytes    int                        // the size of the keys hashed, a measure of the contexts held
	startErr error                      // why the first initial context was refused
	queue    []*node
	reached  map[string]*node
	order    []string // states in the order first reached
	attempts map[string]*attempts
	guards   map[branchKey]*guardStats
	relevant map[string]bool // the context fields that tell instances apart; nil: all
	stopped  bool            // Max was reached
	timedOut bool            // so was the Timeout
	deadline time.Time
	full     bool                // maxBytes was reached
	preds    map[string][]string // the states with a branch into each state; built for the report
	contexts int
}

type attempts struct {
	n, failed int
	err       string // the first expression_failed
}

type branchKey struct {
	state, event string
	branch       int
}

// guardStats count the evaluations of one guard: how many held, how many failed.
type guardStats struct{ evaluated, held, failed int }

// Explore walks def and reports what it reached.
func Explore(def *machine.Definition, opts Options) *Report {
	if opts.Depth <= 0 {
		opts.Depth = DefaultDepth
	}
	if opts.Max <= 0 {
		opts.Max = DefaultMax
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}

	g := &gen{consts: guardConsts(def), now: Start}
	w := &walker{def: def, opts: opts, actor: actorOf(def), payloads: map[string][]map[string]any{},
		deadline: time.Now().Add(opts.Timeout), relevant: relevant(def), seen: map[[sha256.Size]byte]bool{},
		reached: map[string]*node{}, attempts: map[string]*attempts{}, guards: map[branchKey]*guardStats{}}
	for _, name := range slices.Sorted(maps.Keys(def.Events)) {
		w.payloads[name] = append(w.payloads[name], g.object(def.Events[name].Payload, "event", 0)...)
	}
	for _, ctx := range g.contexts(def) {
		w.root(ctx)
	}
	for i := 0; i < len(w.queue); i++ {
		if w.late() {
			break
		}
		n := w.queue[i]
		w.queue[i] = nil // what a node needs is kept by its children; the rest can go
		if n.depth < opts.Depth && !def.Final(n.snap.State) {
			w.expand(n)
		}
	}
	return w.report()
}

// actorOf is the actor the walk sends events as: a user in every group any branch allows, so that
// `allow` keeps no branch out (the name is a table's default actor's).
func actorOf(def *machine.Definition) machine.Actor {
	groups := map[string]bool{}
	for _, st := range def.States {
		for _, h := range st.On {
			for _, b := range h.Branches {
				for _, g := range b.Allow {
					groups[g] = true
				}
			}
		}
	}
	return machine.Actor{Name: machine.TestActor.Name, Groups: slices.Sorted(maps.Keys(groups)), Kind: machine.ActorUser}
}

// root creates an instance with ctx, as the service would; a context the schema refuses (a
// generated value outside a constraint) is left out.
func (w *walker) root(ctx map[string]any) {
	b, err := machine.Limits{}.Begin(w.def, machine.Snapshot{ID: "test", Version: 1, Context: ctx}, Start)
	if err != nil {
		if w.startErr == nil {
			w.startErr = err
		}
		return
	}
	w.contexts++
	n := &node{snap: b.Snapshot, clock: Start, pending: b.Arm, ctx: ctx}
	n.snap.Children = started(b.Start)
	w.add(n)
}

// maxBytes bounds the contexts a walk holds, measured as the size of the instances' keys: with
// contexts near their bound (schema.MaxContextSize), Max instances alone would not bound memory.
const maxBytes = 256 << 20

// add queues n unless an instance alike was reached before (or Max or maxBytes is reached).
func (w *walker) add(n *node) {
	k := key(n, w.relevant)
	h := sha256.Sum256(k)
	if w.seen[h] {
		return
	}
	if len(w.seen) >= w.opts.Max || w.bytes+len(k) > maxBytes {
		w.stopped, w.full = true, w.full || len(w.seen) < w.opts.Max
		return
	}
	w.seen[h] = true
	w.bytes += len(k)
	w.queue = append(w.queue, n)
	if w.reached[n.snap.State] == nil {
		w.reached[n.snap.State] = n
		w.order = append(w.order, n.snap.State)
	}
}

// expand tries every event the state handles with every payload generated for it, then advancing
// the clock to the next timer. An event of one of the state's timers is left to the timer: sent by
// hand it would do what the timer does, and the sequence found would not show the wait.
func (w *walker) expand(n *node) {
	st := w.def.States[n.snap.State]
	for _, ev := range st.OnOrder {
		if slices.ContainsFunc(st.Timers, func(t *machine.Timer) bool { return t.Event == ev }) {
			continue
		}
		payloads := w.payloads[ev]
		if payloads == nil {
			payloads = []map[string]any{nil}
		}
		for _, p := range payloads {
			if w.late() {
				return
			}
			c := n.child(Step{Event: ev, Payload: p})
			if w.fire(c, w.actor, ev, p) == nil {
				w.add(c)
			}
		}
	}
	if len(n.pending) > 0 {
		w.advance(n)
	}
}

// late reports whether the walk is past its deadline, and marks it stopped when it is.
func (w *walker) late() bool {
	if !w.timedOut && time.Now().After(w.deadline) {
		w.stopped, w.timedOut = true, true
	}
	return w.timedOut
}

func (n *node) child(s Step) *node {
	return &node{snap: n.snap, clock: n.clock, pending: n.pending, parent: n, step: s, depth: n.depth + 1}
}

// advance moves the clock to the next deadline and fires the timers due then, in deadline order,
// each at its own deadline, as a transition table's `advance` does. A refused timer event has no
// effect; one whose expression fails ends the step.
func (w *walker) advance(n *node) {
	pending := slices.Clone(n.pending)
	sort.SliceStable(pending, func(i, j int) bool { return pending[i].At.Before(pending[j].At) })
	until := pending[0].At
	if until.Before(n.clock) {
		until = n.clock
	}
	c := n.child(Step{Advance: until.Sub(n.clock)})
	c.pending = pending
	for len(c.pending) > 0 {
		next := c.pending[0]
		if next.At.After(until) {
			break
		}
		c.pending = c.pending[1:]
		if next.At.After(c.clock) {
			c.clock = next.At
		}
		err := w.fire(c, machine.Actor{Kind: machine.ActorTimer, Groups: []string{}}, next.Event, nil)
		if code.Of(err) == code.ExpressionFailed {
			return
		}
		if err == nil { // the state's timers may have changed: keep them in deadline order
			sort.SliceStable(c.pending, func(i, j int) bool { return c.pending[i].At.Before(c.pending[j].At) })
		}
	}
	c.clock = until
	w.add(c)
}

// fire handles one event on c, in place, and records the attempt. An event that is the on_final of
// a child group of the state counts as a child's outcome received, as a transition table counts it.
func (w *walker) fire(c *node, actor machine.Actor, event string, payload map[string]any) error {
	if st := w.def.States[c.snap.State]; st != nil {
		for _, g := range st.Children {
			if cc, ok := c.snap.Children[g.Name]; ok && g.OnFinal == event && cc.Running > 0 {
				cc.Final, cc.Running = cc.Final+1, cc.Running-1
				c.snap.Children = maps.Clone(c.snap.Children)
				c.snap.Children[g.Name] = cc.WithIDs("test", g.Name, 1)
			}
		}
	}
	t, err := machine.Limits{}.FireAs(w.def, c.snap, actor, event, payload, c.clock)
	w.record(c.snap.State, event, t, err)
	if err != nil {
		return err
	}
	c.snap.Context = t.ContextAfter
	if !t.Stayed {
		c.snap.State, c.snap.EnteredAt = t.To, c.clock
		c.pending = t.Arm
		c.snap.Children = started(t.Start)
	}
	return nil
}

// record counts an attempt of event in state: whether it failed with expression_failed, and what
// each guard evaluated to (a guard_rejected evaluated every guard false: the walk's actor may take
// every branch).
func (w *walker) record(state, event string, t *machine.Transition, err error) {
	a := w.attempts[event]
	if a == nil {
		a = &attempts{}
		w.attempts[event] = a
	}
	switch c := code.Of(err); c {
	case "":
		a.n++
		for _, r := range t.Guards {
			w.guard(state, event, r.Branch, r.Result)
		}
	case code.ExpressionFailed:
		a.n++
		a.failed++
		if a.err == "" {
			a.err = err.Error()
		}
		var e *machine.ExpressionError
		if errors.As(err, &e) && strings.HasPrefix(e.Where, "guard of branch ") {
			if i, err := strconv.Atoi(strings.TrimPrefix(e.Where, "guard of branch ")); err == nil {
				w.guard(state, event, i-1, false).failed++
			}
		}
	case code.GuardRejected:
		a.n++
		for _, b := range w.def.States[state].On[event].Branches {
			if b.Guard != nil {
				w.guard(state, event, b.Index, false)
			}
		}
	}
}

func (w *walker) guard(state, event string, branch int, held bool) *guardStats {
	k := branchKey{state, event, branch}
	s := w.guards[k]
	if s == nil {
		s = &guardStats{}
		w.guards[k] = s
	}
	s.evaluated++
	if held {
		s.held++
	}
	return s
}

// started are the child counts of a state entered: every child it starts, running.
func started(starts []machine.ChildStart) map[string]machine.ChildCounts {
	var m map[string]machine.ChildCounts
	for _, s := range starts {
		if m == nil {
			m = map[string]machine.ChildCounts{}
		}
		n := len(s.Contexts)
		m[s.Group.Name] = (machine.ChildCounts{Total: n, Running: n}).WithIDs("test", s.Group.Name, 1)
	}
	return m
}

// key identifies an instance for the walk: two nodes with the same key behave alike from then on.
func key(n *node, relevant map[string]bool) []byte {
	var b bytes.Buffer
	b.WriteString(n.snap.State)
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(n.clock.Unix(), 10))
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(n.snap.EnteredAt.Unix(), 10))
	b.WriteByte('|')
	ctx, _ := json.Marshal(schema.Encode(only(n.snap.Context, relevant)))
	b.Write(ctx)
	for _, d := range n.pending {
		b.WriteString("|" + d.Event + "@" + strconv.FormatInt(d.At.UnixNano(), 10))
	}
	for _, g := range slices.Sorted(maps.Keys(n.snap.Children)) {
		c := n.snap.Children[g]
		b.WriteString("|" + g + ":" + strconv.Itoa(c.Total) + "," + strconv.Itoa(c.Running) + "," + strconv.Itoa(c.Final))
	}
	return b.Bytes()
}

// only is ctx with the fields of keep; all of it when keep is nil.
func only(ctx map[string]any, keep map[string]bool) map[string]any {
	if keep == nil {
		return ctx
	}
	out := make(map[string]any, len(keep))
	for k := range keep {
		if v, ok := ctx[k]; ok {
			out[k] = v
		}
	}
	return out
}
