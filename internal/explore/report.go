package explore

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Report is what a walk found in one definition.
type Report struct {
	Def       *machine.Definition
	Actor     machine.Actor // who sent the events
	Reached   []Reach       // in the order of the definition's states
	Unreached []Miss        // likewise
	Failing   []Failing     // events every attempt of which ended in expression_failed, by name
	Nodes     int           // instances visited
	Contexts  int           // initial contexts the walk started from
	Stopped   bool          // Options.Max (or the bound on memory) ended the walk before Options.Depth did
	Depth     int
	TimedOut  bool // Options.Timeout ended it
	Full      bool // the bound on the contexts held (256 MiB) ended it
	Timeout   time.Duration
	// StartErr is why an initial context was refused when none was accepted: no instance could be
	// created (a required field of a type the walk cannot make, an `at` timer that fails).
	StartErr error
}

// Reach is a state reached, and a shortest way to it: the context the instance was created with
// (loosely typed) and the steps from there.
type Reach struct {
	State string
	Ctx   map[string]any
	Steps []Step
	// Children are the child groups the initial state started (a table's given.children).
	Children map[string]machine.ChildCounts
}

// Miss is a state never reached.
type Miss struct {
	State string
	// Nearest is the reached state closest to it in the definition's graph, Distance transitions
	// away; "" when no reached state leads to it at all.
	Nearest  string
	Distance int
	// Blocked is the branch of Nearest into State that was never taken (set when Distance is 1).
	Blocked *Blocked
}

// Blocked is a branch that was never taken, and why as far as the walk saw.
type Blocked struct {
	Event     string
	Branch    int         // from 1, as the engine's errors count them
	Guard     string      // its source; "" for a branch without guard
	Pos       machine.Pos // of the guard, or of the branch without one
	Evaluated int         // how often the guard was evaluated; it never held
	Failed    int         // how many of those evaluations failed (expression_failed)
	Attempts  int         // how often the event was tried, in any state
}

// Failing is an event that was tried and always failed with expression_failed.
type Failing struct {
	Event    string
	Attempts int
	Err      string // the first failure
}

func (w *walker) report() *Report {
	r := &Report{Def: w.def, Actor: w.actor, Nodes: len(w.seen), Contexts: w.contexts, Stopped: w.stopped, Depth: w.opts.Depth,
		TimedOut: w.timedOut, Timeout: w.opts.Timeout, Full: w.full}
	if w.contexts == 0 {
		r.StartErr = w.startErr
	}
	for _, name := range w.def.StateOrder {
		if n := w.reached[name]; n != nil {
			r.Reached = append(r.Reached, path(n))
		} else {
			r.Unreached = append(r.Unreached, w.miss(name))
		}
	}
	for _, ev := range slices.Sorted(maps.Keys(w.attempts)) {
		if a := w.attempts[ev]; a.n > 0 && a.failed == a.n {
			r.Failing = append(r.Failing, Failing{Event: ev, Attempts: a.n, Err: a.err})
		}
	}
	return r
}

// path is the way to n from its root.
func path(n *node) Reach {
	state := n.snap.State
	var steps []Step
	for ; n.parent != nil; n = n.parent {
		steps = append(steps, n.step)
	}
	slices.Reverse(steps)
	return Reach{State: state, Ctx: n.ctx, Steps: steps, Children: n.snap.Children}
}

// miss explains why state was not reached: the reached state nearest to it in the graph and,
// when that one has a branch into it, the branch.
func (w *walker) miss(state string) Miss {
	m := Miss{State: state}
	if w.preds == nil {
		w.preds = predecessors(w.def)
	}
	// Breadth-first backwards from state over the definition's branches.
	dist := map[string]int{state: 0}
	frontier := []string{state}
	for d := 1; len(frontier) > 0 && m.Nearest == ""; d++ {
		var next []string
		for _, to := range frontier {
			for _, from := range w.preds[to] {
				if _, ok := dist[from]; ok {
					continue
				}
				dist[from] = d
				next = append(next, from)
				if w.reached[from] != nil && (m.Nearest == "" || w.reached[from].depth < w.reached[m.Nearest].depth) {
					m.Nearest, m.Distance = from, d
				}
			}
		}
		frontier = next
	}
	if m.Distance == 1 {
		m.Blocked = w.blocked(m.Nearest, state)
	}
	return m
}

// predecessors lists, for each state, the states with a branch into it, in the definition's order.
func predecessors(def *machine.Definition) map[string][]string {
	preds := map[string][]string{}
	for _, from := range def.StateOrder {
		st := def.States[from]
		for _, ev := range st.OnOrder {
			for _, b := range st.On[ev].Branches {
				to := b.Target(from)
				if ps := preds[to]; len(ps) == 0 || ps[len(ps)-1] != from {
					preds[to] = append(ps, from)
				}
			}
		}
	}
	return preds
}

// blocked is the first branch of from into to, with what the walk saw of its guard.
func (w *walker) blocked(from, to string) *Blocked {
	st := w.def.States[from]
	for _, ev := range st.OnOrder {
		for _, b := range st.On[ev].Branches {
			if b.Target(from) != to {
				continue
			}
			bl := &Blocked{Event: ev, Branch: b.Index + 1, Guard: b.GuardSource, Pos: b.GuardPos}
			if b.Guard == nil {
				bl.Pos = b.Pos
			}
			if s := w.guards[branchKey{from, ev, b.Index}]; s != nil {
				bl.Evaluated, bl.Failed = s.evaluated, s.failed
			}
			if a := w.attempts[ev]; a != nil {
				bl.Attempts = a.n
			}
			return bl
		}
	}
	return nil
}

// WriteText writes the report as `fsmd test --explore` prints it: the definition, each state
// reached with a shortest sequence, each state not reached with why, and the failing events.
func (r *Report) WriteText(out io.Writer) {
	file := r.Def.File
	if file == "" {
		file = r.Def.Name
	}
	fmt.Fprintf(out, "%s: %s: %d of %d states reached (%s from %s, depth %d)\n", file, r.Def.Name, len(r.Reached),
		len(r.Reached)+len(r.Unreached), count(r.Nodes, "instance", "instances"), count(r.Contexts, "initial context", "initial contexts"), r.Depth)
	switch {
	case r.TimedOut:
		fmt.Fprintf(out, "    stopped after %s at %d instances: deeper states may be reachable\n", r.Timeout, r.Nodes)
	case r.Full:
		fmt.Fprintf(out, "    stopped at %d instances, holding %d MiB of contexts: deeper states may be reachable\n", r.Nodes, maxBytes>>20)
	case r.Stopped:
		fmt.Fprintf(out, "    stopped at %d instances (--max): deeper states may be reachable\n", r.Nodes)
	}
	if r.StartErr != nil {
		fmt.Fprintf(out, "    no instance could be created from the generated contexts: %v\n", r.StartErr)
	}
	for _, re := range r.Reached {
		fmt.Fprintf(out, "  reached     %s: %s\n", re.State, re.Sequence())
	}
	for _, m := range r.Unreached {
		fmt.Fprintf(out, "  NOT REACHED %s: %s\n", m.State, m.why(file))
	}
	for _, f := range r.Failing {
		fmt.Fprintf(out, "  FAILING     event %s: expression_failed in every one of %s: %s\n", f.Event, plural(f.Attempts, "attempt"), f.Err)
	}
}

func (m Miss) why(file string) string {
	switch {
	case m.Nearest == "":
		return "no reached state leads to it"
	case m.Blocked == nil:
		return fmt.Sprintf("nearest reached state %s is %d transitions away", m.Nearest, m.Distance)
	}
	b := m.Blocked
	at := fmt.Sprintf("%s:%d:%d", file, b.Pos.Line, b.Pos.Col)
	switch {
	case b.Attempts == 0:
		return fmt.Sprintf("nearest reached state %s; its %s was never tried (%s)", m.Nearest, b.Event, at)
	case b.Guard == "":
		return fmt.Sprintf("nearest reached state %s; its %s branch %d, without guard, was never taken: an earlier branch always held (%s)",
			m.Nearest, b.Event, b.Branch, at)
	case b.Failed > 0:
		return fmt.Sprintf("nearest reached state %s; blocked by the guard of its %s branch %d, which failed (expression_failed) in %d of %s: %s (%s)",
			m.Nearest, b.Event, b.Branch, b.Failed, plural(b.Evaluated, "evaluation"), b.Guard, at)
	case b.Evaluated == 0:
		return fmt.Sprintf("nearest reached state %s; the guard of its %s branch %d was never evaluated: %s (%s)",
			m.Nearest, b.Event, b.Branch, b.Guard, at)
	}
	return fmt.Sprintf("nearest reached state %s; blocked by the guard of its %s branch %d, never true in %s: %s (%s)",
		m.Nearest, b.Event, b.Branch, plural(b.Evaluated, "evaluation"), b.Guard, at)
}

// Sequence is the way to the state on one line: the initial context, then each step.
func (re Reach) Sequence() string {
	var parts []string
	if len(re.Ctx) > 0 {
		parts = append(parts, "ctx "+inline(re.Ctx))
	}
	for _, s := range re.Steps {
		parts = append(parts, s.String())
	}
	if len(parts) == 0 {
		return "(initial)"
	}
	return strings.Join(parts, "; ")
}

func (s Step) String() string {
	if s.Event == "" {
		return "advance " + formatDuration(s.Advance)
	}
	if len(s.Payload) == 0 {
		return s.Event
	}
	return s.Event + " " + inline(s.Payload)
}

// inline is a loosely typed value as compact JSON, keys sorted.
func inline(v any) string {
	b, err := json.Marshal(schema.Encode(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// formatDuration writes whole hours and days the way definitions do ("72h", "90m"), rather than
// time.Duration's "72h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// count writes n with its noun: "1 instance", "3 instances".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
