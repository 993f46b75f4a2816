package migration_test

import (
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
)

// TestCheck: the migrate rules of a new version compiled against each older version at
// registration: what can work for no older version is an error, what fails for some is a warning.
func TestCheck(t *testing.T) {
	t.Parallel()
	v1 := parse(t, shopV1)
	// shopV1 without legacy: a rule reading it compiles against v1 only.
	v1b := parse(t, strings.Replace(shopV1, "  legacy: string\n", "", 1))
	tests := []struct {
		name    string
		context string // under context:
		migrate string // under migrate:, before its states
		states  string // under migrate: states:
		older   map[int]*machine.Definition
		want    []string // "severity: the start of the message"
		at      string   // what the line of the diagnostics holds
	}{
		{name: "rules that compile: nothing", migrate: "  context:\n    note: 'ctx.legacy ?? \"\"'",
			older: map[int]*machine.Definition{1: v1}},
		{name: "no older version: nothing to check", migrate: "  context:\n    note: '42'",
			older: nil},
		{name: "a context expression of the wrong type", migrate: "  context:\n    note: '42'",
			older: map[int]*machine.Definition{1: v1, 2: v1b},
			want:  []string{`error: migrate context note (42) does not compile against the context of any older version (1, 2)`}, at: "note: '42'"},
		{name: "a field one older version lacks", migrate: "  context:\n    note: 'ctx.legacy'",
			older: map[int]*machine.Definition{1: v1, 2: v1b},
			want:  []string{`warning: migrate context note (ctx.legacy) does not compile against the context of version 2, whose instances it would strand`}, at: "note: 'ctx.legacy'"},
		{name: "a guard that is not bool", states: "    on_hold:\n      - to: paid\n        guard: ctx.amount\n",
			older: map[int]*machine.Definition{1: v1},
			want:  []string{`error: the guard of the migrate rule for state "on_hold" (ctx.amount) does not compile against the context of any older version (1)`}, at: "- to: paid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := strings.Replace(v2(tt.context, ""), "migrate:\n  states:\n", "migrate:\n"+tt.migrate+"\n  states:\n"+tt.states, 1)
			def := parse(t, src)
			diags := migration.Check(def, tt.older)
			if len(diags) != len(tt.want) {
				t.Fatalf("%d diagnostics, want %d: %v", len(diags), len(tt.want), diags)
			}
			for i, w := range tt.want {
				d := diags[i]
				if got := string(d.Severity) + ": " + d.Message; !strings.HasPrefix(got, w) {
					t.Errorf("diagnostic %d:\n got %s\nwant %s...", i, got, w)
				}
				if lines := strings.Split(src, "\n"); d.File != "shop.yaml" || d.Line < 1 || d.Line > len(lines) || !strings.Contains(lines[d.Line-1], tt.at) {
					t.Errorf("diagnostic %d at %s:%d, want the line of %q", i, d.File, d.Line, tt.at)
				}
			}
		})
	}
}
