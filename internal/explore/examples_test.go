package explore

import (
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/table"
)

// examples are the definitions shipped in definitions/.
func examples(tb testing.TB) *machine.Set {
	tb.Helper()
	set, diags, err := machine.Load("../../definitions")
	if err != nil || diags.Errors() > 0 {
		tb.Fatalf("loading the examples: %v %v", err, diags)
	}
	return set
}

// Every state of every example is reached at the default depth, within the default bound, and no
// event of theirs only ever fails.
func TestExamplesReachEveryState(t *testing.T) {
	set := examples(t)
	for _, name := range set.Names() {
		t.Run(name, func(t *testing.T) {
			r := Explore(set.ByName[name], Options{})
			var b strings.Builder
			r.WriteText(&b)
			if len(r.Unreached) > 0 || len(r.Failing) > 0 || r.Stopped {
				t.Errorf("explore %s:\n%s", name, b.String())
			}
		})
	}
}

// The cases --emit-cases writes parse as a transition table and pass when run: each sequence
// reaches its state through table.Run as it did in the walk.
func TestEmittedCasesPass(t *testing.T) {
	set := examples(t)
	for _, name := range set.Names() {
		t.Run(name, func(t *testing.T) {
			def := set.ByName[name]
			r := Explore(def, Options{})
			data, err := r.Cases()
			if err != nil {
				t.Fatal(err)
			}
			tab, diags := table.Parse(name+".explore.test.yaml", data)
			if diags.Errors() > 0 {
				t.Fatalf("the emitted table does not parse: %v\n%s", diags, data)
			}
			if tab.Definition != name || len(tab.Cases) != len(r.Reached) {
				t.Fatalf("definition %q, %d cases; want %q, %d", tab.Definition, len(tab.Cases), name, len(r.Reached))
			}
			for _, c := range tab.Cases {
				if res := table.Run(def, c, nil); !res.Passed() {
					t.Errorf("case %q fails: %v\ntrace: %v\n%s", c.Name, res.Failures, res.Trace, data)
				}
			}
		})
	}
}

func TestStartIsTheTablesDefaultNow(t *testing.T) {
	if !Start.Equal(table.DefaultNow) {
		t.Fatalf("Start %v, table.DefaultNow %v: emitted cases would need a `now`", Start, table.DefaultNow)
	}
}

// BenchmarkExplore explores each example to depth 8 (issue 17: under 5 s each).
func BenchmarkExplore(b *testing.B) {
	set := examples(b)
	for _, name := range set.Names() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				Explore(set.ByName[name], Options{Depth: 8})
			}
		})
	}
}
