package migration

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Check compiles def's migrate rules (branch guards and context expressions) against the context of
// each older version, as a migration of its instances would, so that a rule that cannot work is
// found when the version is registered rather than when a plan strands instances with it.
//
// An expression that compiles against no older version (a string for an int field, a field none of
// them has) can never move an instance: an error. One that fails against only some of them is a
// warning: a rule may be written for some older versions only. older holds the versions stored
// before def, by number; with none, there is nothing to check.
func Check(def *machine.Definition, older map[int]*machine.Definition) source.Diagnostics {
	if def.Migrate == nil || len(older) == 0 {
		return nil
	}
	versions := slices.Sorted(maps.Keys(older))
	var diags source.Diagnostics
	check := func(pos machine.Pos, what string, compile func(env guards.Env) error) {
		var failed []string
		var first error
		for _, v := range versions {
			if err := compile(guards.Env{Context: older[v].Context, NoEvent: true}); err != nil {
				failed = append(failed, fmt.Sprint(v))
				if first == nil {
					first = err
				}
			}
		}
		if len(failed) == 0 {
			return
		}
		d := source.Diagnostic{File: def.File, Line: pos.Line, Col: pos.Col, Severity: source.SevWarning}
		if len(failed) == len(versions) {
			d.Severity = source.SevError
			d.Message = fmt.Sprintf("%s does not compile against the context of any older version (%s): %v", what, strings.Join(failed, ", "), first)
		} else {
			d.Message = fmt.Sprintf("%s does not compile against the context of version %s, whose instances it would strand (rule_failed): %v",
				what, strings.Join(failed, ", "), first)
		}
		diags = append(diags, d)
	}
	for _, name := range slices.Sorted(maps.Keys(def.Migrate.States)) {
		for _, b := range def.Migrate.States[name].Branches {
			if b.Guard == "" {
				continue
			}
			check(b.Pos, fmt.Sprintf("the guard of the migrate rule for state %q (%s)", name, b.Guard), func(env guards.Env) error {
				_, err := guards.CompileGuard(b.Guard, env)
				return err
			})
		}
	}
	for _, a := range def.Migrate.Context {
		f := def.Context.Path(a.Path)
		if f == nil {
			continue // validation reports it
		}
		check(a.Pos, fmt.Sprintf("migrate context %s (%s)", strings.Join(a.Path, "."), a.Expr), func(env guards.Env) error {
			_, err := guards.CompileValue(a.Expr, env, f.Type)
			return err
		})
	}
	slices.SortStableFunc(diags, func(a, b source.Diagnostic) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return diags
}
