// Package analysis proves facts about the guards of a handler, the ordered branches a state has for
// one event: a guard that no input can make true (unsatisfiable), a branch the branches before it
// always take first (shadowed), and a handler whose guards can all be false (not_exhaustive, with a
// witness).
//
// It reads guards as expr syntax trees and understands only comparisons of a field with constants
// (==, !=, <, <=, >, >=, `in` a literal list, a bool field alone), joined by &&, ||, ! and the
// ternary. Each field has the domain its schema type gives: integer or float intervals, the finite
// set of an enum or a bool, strings compared for equality, and nil when the type is optional.
// Everything else (arithmetic, calls, fields compared with fields, lists, times, `any`) is an opaque
// unknown that may be true or false, and a finding is reported only when it holds whatever the
// unknown parts are: soundness first, precision second. The work is bounded; past the bound a
// handler gets no finding at all.
package analysis

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// The kinds of finding (Diagnostic.Kind).
const (
	Unsatisfiable = "unsatisfiable"
	Shadowed      = "shadowed"
	NotExhaustive = "not_exhaustive"
)

// Env is what a handler's guards may read, with the types the analysis reasons from.
type Env struct {
	Context  *schema.Type // ctx; nil: no field
	Event    *schema.Type // event, the handled event's payload; nil: no field
	Children *schema.Type // children; nil: unknown
	// States are the values `state` can have where the handler is used: the states that share it.
	// Empty: any string.
	States []string
}

// Branch is one branch of a handler, in order.
type Branch struct {
	Guard string     // the guard's source; "" for an unguarded branch
	Pos   source.Pos // where the guard is written
	// Restricted marks a branch not every actor may take (`allow`): for the branches after it, it
	// may be skipped whatever its guard says.
	Restricted bool
}

// Handler is the ordered branches of one event in a state.
type Handler struct {
	Branches []Branch
	Pos      source.Pos
}

// Finding is one fact proved about a handler.
type Finding struct {
	Kind     string
	Severity source.Severity
	Pos      source.Pos
	Branch   int    // the branch's index from 0; -1 for not_exhaustive, which is about the handler
	Message  string // one line, without the handler's name
	Witness  []Binding
}

// Binding is one input of a witness: the path has this value (or, NotNil, any value but nil).
type Binding struct {
	Path   string
	Value  any // nil, int64, float64, string or bool
	NotNil bool
}

func (b Binding) String() string {
	if b.NotNil {
		return b.Path + " != nil"
	}
	return b.Path + " == " + exprLiteral(b.Value)
}

// Analyze returns what can be proved about h's guards, in branch order, the handler's finding last.
// It never fails: what it cannot read or reason about within its bounds yields no finding.
func Analyze(h Handler, env Env) []Finding {
	guarded := false
	for _, b := range h.Branches {
		guarded = guarded || b.Guard != ""
	}
	if !guarded { // most handlers: nothing to prove, and nothing to spend
		return nil
	}
	a := newAnalyzer(env)
	return a.handler(h)
}

func (a *analyzer) handler(h Handler) (out []Finding) {
	guards := make([]*formula, len(h.Branches))
	last := len(h.Branches) // branches after an unguarded one for every actor are an error already
	for i, b := range h.Branches {
		if b.Guard == "" {
			guards[i] = opaqueF
			if !b.Restricted {
				last = i + 1
				break
			}
			continue
		}
		guards[i] = a.guard(b.Guard)
		if b.Restricted { // taken only when both the guard holds and the actor may take it
			guards[i] = and(guards[i], opaqueF)
		}
	}
	h.Branches, guards = h.Branches[:last], guards[:last]
	a.guards = guards
	if len(a.vars) > maxVars {
		return nil
	}
	a.cells()
	defer func() {
		if a.over { // the bound was hit: nothing about this handler is reported
			out = nil
		}
	}()
	unsat := make([]bool, len(guards))
	for i, b := range h.Branches {
		if b.Guard == "" {
			continue
		}
		if !a.satisfiable(guards[i], nil) {
			unsat[i] = true
			out = append(out, Finding{Kind: Unsatisfiable, Severity: source.SevError, Pos: b.Pos, Branch: i,
				Message: "the guard is unsatisfiable: " + a.noValue(guards[i])})
			continue
		}
		if i > 0 && !a.satisfiable(guards[i], upTo(i)) {
			out = append(out, Finding{Kind: Shadowed, Severity: source.SevWarning, Pos: b.Pos, Branch: i,
				Message: fmt.Sprintf("branch %d is shadowed: %s, so it is never taken", i+1, a.covering(guards, i))})
		}
		if a.over {
			return nil
		}
	}
	if w, ok := a.witness(h, guards); ok {
		out = append(out, Finding{Kind: NotExhaustive, Severity: source.SevWarning, Pos: h.Pos, Branch: -1,
			Message: notExhaustive(w), Witness: w})
	}
	return out
}

// covering says which earlier branches take every input branch i's guard holds for: one of them
// alone when one does.
func (a *analyzer) covering(guards []*formula, i int) string {
	for j := range i {
		if !a.satisfiable(guards[i], []int{j}) {
			return fmt.Sprintf("whenever its guard holds, the guard of branch %d holds too", j+1)
		}
	}
	return "whenever its guard holds, one of the branches before it is taken"
}

func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// noValue names the inputs of an unsatisfiable guard.
func (a *analyzer) noValue(f *formula) string {
	seen := map[int]bool{}
	f.vars(a, seen)
	var names []string
	for v := range seen {
		names = append(names, a.vars[v].path)
	}
	slices.Sort(names)
	switch len(names) {
	case 0:
		return "it is never true"
	case 1:
		return "no value of " + names[0] + " makes it true"
	}
	return "no values of " + strings.Join(names, ", ") + " make it true"
}

func notExhaustive(w []Binding) string {
	if len(w) == 0 {
		return "not exhaustive: every guard is false whatever the input, so no branch is ever taken"
	}
	parts := make([]string, len(w))
	for i, b := range w {
		parts[i] = b.String()
	}
	return "not exhaustive: every guard is false when " + strings.Join(parts, " and ") + ", and no branch is taken"
}
