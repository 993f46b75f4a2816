package machine_test

import (
	"slices"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
)

func TestMigrateSourceWarnings(t *testing.T) {
	t.Parallel()
	parse := func(t *testing.T, src string) *machine.Definition {
		t.Helper()
		def, diags := machine.Parse("order.yaml", []byte(src))
		if diags.Errors() > 0 {
			t.Fatalf("%s", (&machine.InvalidDefinitionError{Diagnostics: diags}).Error())
		}
		return def
	}
	const (
		v1 = "name: order\ninitial: created\nstates:\n  created: {on: {pay: paid}}\n  paid: {final: true}\n"
		v2 = "name: order\ninitial: created\nstates:\n  created: {on: {pay: paid, hold: on_hold}}\n  on_hold: {on: {pay: paid}}\n  paid: {final: true}\n"
		// v2renamed has no state created: only v1 has it.
		v2renamed = "name: order\ninitial: fresh\nstates:\n  fresh: {on: {pay: paid, hold: on_hold}}\n  on_hold: {on: {pay: paid}}\n  paid: {final: true}\n"
		v3ok      = "name: order\ninitial: open\nmigrate:\n  states: {created: open, on_hold: open}\nstates:\n  open: {on: {pay: paid}}\n  paid: {final: true}\n"
		// The new version: created becomes open; the rules name states of v1 and v2, and two that
		// no version has (line 6 and 8).
		v3 = `name: order
initial: open
migrate:
  states:
    created: open
    nowhere: open
    on_hold: [{to: open, guard: 'ctx != nil'}]
    typo_paid: paid
states:
  open: {on: {pay: paid}}
  paid: {final: true}
`
	)
	tests := []struct {
		name  string
		def   string
		older []string
		want  []string // diagnostic lines
	}{
		{name: "no migrate section", def: v2, older: []string{v1}},
		{name: "every rule's state in some older version", def: v3ok, older: []string{v1, v2}},
		{name: "states of no older version", def: v3, older: []string{v1, v2}, want: []string{
			`order.yaml:6:5: warning: migrate rule for state "nowhere": no older version of "order" has a state "nowhere"`,
			`order.yaml:8:5: warning: migrate rule for state "typo_paid": no older version of "order" has a state "typo_paid"`,
		}},
		{name: "a state only version 1 has", def: v3, older: []string{v2renamed, v1}, want: []string{
			`order.yaml:6:5: warning: migrate rule for state "nowhere": no older version of "order" has a state "nowhere"`,
			`order.yaml:8:5: warning: migrate rule for state "typo_paid": no older version of "order" has a state "typo_paid"`,
		}},
		{name: "only version 1 has on_hold's absence", def: v3, older: []string{v1}, want: []string{
			`order.yaml:6:5: warning: migrate rule for state "nowhere": no older version of "order" has a state "nowhere"`,
			`order.yaml:7:5: warning: migrate rule for state "on_hold": no older version of "order" has a state "on_hold"`,
			`order.yaml:8:5: warning: migrate rule for state "typo_paid": no older version of "order" has a state "typo_paid"`,
		}},
		// A first version (the examples' loan.yaml on a fresh database) has nothing to migrate from.
		{name: "no older version: no warning", def: v3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var older []*machine.Definition
			for _, src := range tt.older {
				older = append(older, parse(t, src))
			}
			var got []string
			for _, d := range machine.MigrateSourceWarnings(parse(t, tt.def), older) {
				got = append(got, d.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if got := machine.MigrateSourceWarnings(nil, nil); got != nil {
		t.Errorf("nil definition: %v", got)
	}
}
