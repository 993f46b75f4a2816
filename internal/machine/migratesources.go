package machine

import (
	"fmt"
	"sort"

	"github.com/fsmd-io/fsmd/internal/source"
)

// MigrateSourceWarnings checks the old states of def's `migrate.states` rules against the versions
// stored before it (older, in any order): a rule for a state that no older version has is never used
// (a typo, or a state that never existed), which is worth a warning but no reason to refuse the
// version. With no older version there is nothing to migrate from, and no warning. The warnings are
// in the order of the rules in the file, at each rule's line:col.
func MigrateSourceWarnings(def *Definition, older []*Definition) source.Diagnostics {
	if def == nil || def.Migrate == nil || len(def.Migrate.States) == 0 || len(older) == 0 {
		return nil
	}
	rules := make([]*MigrateRule, 0, len(def.Migrate.States))
	for _, r := range def.Migrate.States {
		if !anyHasState(older, r.From) {
			rules = append(rules, r)
		}
	}
	sort.Slice(rules, func(i, j int) bool {
		a, b := rules[i].Pos, rules[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return rules[i].From < rules[j].From
	})
	var diags source.Diagnostics
	for _, r := range rules {
		diags = append(diags, source.Diagnostic{File: def.File, Line: r.Pos.Line, Col: r.Pos.Col, Severity: source.SevWarning,
			Message: fmt.Sprintf("migrate rule for state %q: no older version of %q has a state %q", r.From, def.Name, r.From)})
	}
	return diags
}

func anyHasState(defs []*Definition, state string) bool {
	for _, d := range defs {
		if d != nil && d.States[state] != nil {
			return true
		}
	}
	return false
}
