package machine

import (
	"github.com/fsmd-io/fsmd/internal/analysis"
	"github.com/fsmd-io/fsmd/internal/source"
)

// analyzeGuards reports what guard analysis proves about each handler (internal/analysis): an
// unsatisfiable guard (an error), a shadowed branch and a handler that is not exhaustive (warnings).
// A handler shared by several states (an alias) is one place in the file: it is analyzed once, with
// `state` any of the states that share it. A handler with a guard that did not compile is left out:
// its error is reported already, and its types are not known.
func analyzeGuards(def *Definition, r *source.Reporter) {
	states := map[*Handler][]string{}
	var order []*Handler
	first := map[*Handler]string{}
	for _, name := range def.StateOrder {
		s := def.States[name]
		for _, ev := range s.OnOrder {
			h := s.On[ev]
			if _, ok := states[h]; !ok {
				order = append(order, h)
				first[h] = name
			}
			states[h] = append(states[h], name)
		}
	}
	for _, h := range order {
		in, ok := analysisHandler(h)
		if !ok {
			continue
		}
		env := analysis.Env{Context: def.Context, Children: def.childrenType, States: states[h]}
		if ev := def.Events[h.Event]; ev != nil {
			env.Event = ev.Payload
		}
		deliberate := refusesOnPurpose(h)
		for _, f := range analysis.Analyze(in, env) {
			if deliberate && f.Kind == analysis.NotExhaustive {
				continue
			}
			r.Finding(f.Pos, f.Severity, f.Kind, "on.%s in state %q: %s", h.Event, first[h], f.Message)
		}
	}
}

func analysisHandler(h *Handler) (analysis.Handler, bool) {
	in := analysis.Handler{Pos: h.Pos, Branches: make([]analysis.Branch, len(h.Branches))}
	for i, b := range h.Branches {
		if b.GuardSource != "" && b.Guard == nil {
			return in, false
		}
		in.Branches[i] = analysis.Branch{Guard: b.GuardSource, Pos: b.GuardPos, Restricted: b.Allow != nil}
	}
	return in, true
}

// refusesOnPurpose reports whether every branch of h is guarded and says, in its guard_message, what
// its refusal means: the author has written down that an event none of them takes is refused
// (guard_rejected, with those messages), so a handler that is not exhaustive is what was meant, not
// an oversight worth a warning. A branch without a message leaves the question open.
func refusesOnPurpose(h *Handler) bool {
	for _, b := range h.Branches {
		if b.GuardSource == "" || b.GuardMessage == "" {
			return false
		}
	}
	return true
}
