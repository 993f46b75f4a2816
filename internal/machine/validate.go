package machine

import (
	"path/filepath"
	"strings"

	"github.com/fsmd-io/fsmd/internal/source"
)

// validate checks what spans the whole definition: names that refer to states and events, and the
// shape of the graph. Parse errors leave parts out of the model, never malformed, so it runs after
// them too and every error is reported at once. The warnings about the graph wait for a definition
// without errors: on a model with parts left out they would be consequences of the errors (an event
// dropped for its bad name leaves its state without a way out), not problems of their own.
func validate(def *Definition, r *source.Reporter) {
	if def.Initial != "" && def.States[def.Initial] == nil {
		r.Errorf(def.InitialPos, "initial state %q is not a declared state", def.Initial)
	}
	if def.Initial == "" && def.InitialPos.Line > 0 { // given, but empty (a block scalar with no line)
		r.Errorf(def.InitialPos, "initial is empty: name the state instances start in")
	}
	finals := 0
	// A handler or timer that states share (an alias) is one place in the file: its error is
	// reported once, for the first of them.
	checked, reported := map[*Handler]bool{}, map[*Timer]bool{}
	for _, name := range def.StateOrder {
		s := def.States[name]
		if s.Final {
			finals++
		}
		for _, ev := range s.OnOrder {
			if checked[s.On[ev]] {
				continue
			}
			checked[s.On[ev]] = true
			for _, b := range s.On[ev].Branches {
				if !b.Stays() && def.States[b.To] == nil {
					r.Errorf(b.Pos, "on.%s in state %q goes to %q, which is not a declared state", ev, name, b.To)
				}
			}
		}
		for _, t := range s.Timers {
			if t.Event != "" && s.On[t.Event] == nil && !reported[t] {
				reported[t] = true
				r.Errorf(t.Pos, "timer event %q is not handled in `on` of state %q", t.Event, name)
			}
		}
	}
	if def.Migrate != nil {
		for _, rule := range def.Migrate.States {
			for _, b := range rule.Branches {
				if def.States[b.To] == nil {
					r.Errorf(b.Pos, "migrate: state %q maps to %q, which this version does not have", rule.From, b.To)
				}
			}
		}
	}
	validateNotify(def, r)
	validateChildren(def, r)
	analyzeGuards(def, r)
	if r.Diags.Errors() > 0 {
		return
	}
	warnGraph(def, r, finals)
	warnNotify(def, r)
}

// warnGraph reports what is legal but likely a mistake.
func warnGraph(def *Definition, r *source.Reporter, finals int) {
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(r.File), ".yaml"), ".yml")
	if def.Name != base && r.File != "" {
		r.Warnf(def.NamePos, "definition %q is in a file named %s; name the file %s.yaml", def.Name, filepath.Base(r.File), def.Name)
	}
	reached := map[string]bool{def.Initial: true}
	queue := []string{def.Initial}
	for len(queue) > 0 {
		s := def.States[queue[0]]
		queue = queue[1:]
		for _, ev := range s.OnOrder {
			for _, b := range s.On[ev].Branches {
				if !b.Stays() && !reached[b.To] { // a stay reaches no other state
					reached[b.To] = true
					queue = append(queue, b.To)
				}
			}
		}
	}
	handled := map[string]bool{}
	for _, name := range def.StateOrder {
		s := def.States[name]
		if !reached[name] {
			r.Warnf(s.Pos, "state %q is unreachable from the initial state %q", name, def.Initial)
		}
		out := false
		for _, ev := range s.OnOrder {
			handled[ev] = true
			for _, b := range s.On[ev].Branches {
				out = out || b.Target(name) != name // neither a stay nor a re-entry is a way out
			}
		}
		if !s.Final && !out {
			r.Warnf(s.Pos, "state %q is not final and has no way out: no transition leads to another state", name)
		}
	}
	for name, ev := range def.Events {
		if !handled[name] {
			r.Warnf(ev.Pos, "event %q is declared but no state handles it", name)
		}
	}
	if finals == 0 {
		r.Warnf(def.NamePos, "definition %q has no final state: its instances never finish", def.Name)
	}
}
