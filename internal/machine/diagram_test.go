package machine_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
)

var updateDiagrams = flag.Bool("update-diagrams", false, "rewrite the golden diagrams")

// TestMermaid compares the diagram of each example definition with its golden file. The examples are
// loaded together, as fsmd loads its folder: trip's children are bookings.
func TestMermaid(t *testing.T) {
	t.Parallel()
	set, diags, err := machine.Load(filepath.Join("..", "..", "definitions"))
	if err != nil || diags.Errors() > 0 {
		t.Fatal(err, diags)
	}
	for _, name := range []string{"order", "approval", "loan", "trip", "booking"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			def := set.ByName[name]
			if def == nil {
				t.Fatalf("no definition %s in ../../definitions", name)
			}
			got := machine.Mermaid(def)
			golden := filepath.Join("testdata", "golden", name+".mmd")
			if *updateDiagrams {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestMermaid -update-diagrams)", err)
			}
			if got != string(want) {
				t.Errorf("diagram of %s differs from %s:\n%s", name, golden, got)
			}
		})
	}
}

// TestMermaidChildren: a state that starts children is declared with its name, has a line per group
// naming the group and its child definition (after its description), and the class children, whose
// style is declared once; a definition without children has neither.
func TestMermaidChildren(t *testing.T) {
	t.Parallel()
	resolve := legResolve(t)
	const parent = `name: trip
initial: start
context:
  legs: [{kind: string, price: int}]
  n: int
states:
  start:
%s
    on:
      go: wait
  wait:
%s
    on:
      done: end
  end: {final: true}
`
	const legs = `    children:
      legs: {definition: leg, for_each: ctx.legs, context: {kind: item.kind}}`
	const two = `    children:
      legs: {definition: leg, for_each: ctx.legs, context: {kind: item.kind}}
      spares: {definition: leg, count: ctx.n, context: {kind: '"spare"'}}`
	const classDef = "    classDef children stroke:#475467,stroke-width:2px,stroke-dasharray:6 3\n"
	tests := []struct {
		name        string
		start, wait string   // the states' children (and description)
		want        []string // lines of the diagram, in this order
		absent      []string // text the diagram does not have
	}{
		{"no children: no class, no label", "", "", []string{"    [*] --> start\n", "    wait --> end : done\n"},
			[]string{"classDef", "class ", "starts", `state "`}},
		{"a group: declared, labelled and classed", "", legs,
			[]string{`    state "wait" as wait` + "\n", "    wait : starts legs (leg)\n", "    wait --> end : done\n", classDef, "    class wait children\n"},
			[]string{"class start", `state "start"`}},
		{"two groups: a line each, in file order, one class line", "", two,
			[]string{`    state "wait" as wait` + "\n", "    wait : starts legs (leg)\n", "    wait : starts spares (leg)\n", classDef, "    class wait children\n"},
			nil},
		{"after the description", "", "    description: waits for its legs\n" + legs,
			[]string{`    state "wait" as wait` + "\n", "    wait : waits for its legs\n", "    wait : starts legs (leg)\n", classDef, "    class wait children\n"},
			nil},
		{"the initial state and another: the class declared once, a class line each", legs, strings.Replace(legs, "legs:", "more:", 1),
			[]string{"    start : starts legs (leg)\n", "    wait : starts more (leg)\n", classDef, "    class start children\n", "    class wait children\n"},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def, diags := machine.ParseWith("trip.yaml", []byte(fmt.Sprintf(parent, tt.start, tt.wait)), resolve)
			if diags.Errors() > 0 {
				t.Fatal(diags)
			}
			got := machine.Mermaid(def)
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("no %q (in this order) in:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("%q in:\n%s", a, got)
				}
			}
			if n := strings.Count(got, "classDef"); n > 1 {
				t.Errorf("%d classDef lines in:\n%s", n, got)
			}
		})
	}
}

// TestExplain: every branch is evaluated, the taken one marked, and a refusal explained.
func TestExplain(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("door.yaml", []byte(`name: door
initial: closed
context: {code: string}
events: {open: {code: string}}
states:
  closed:
    on:
      open:
        - to: open
          guard: event.code == ctx.code
          guard_message: wrong code
        - to: alarm
          guard: event.code != ""
  open: {final: true}
  alarm: {final: true}
`))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	snap := machine.Snapshot{ID: "d", Version: 1, State: "closed", Context: map[string]any{"code": "42"}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		payload map[string]any
		results []bool
		taken   int // -1: none
		code    string
	}{
		{"the first branch holds; the second is still evaluated", map[string]any{"code": "42"}, []bool{true, true}, 0, ""},
		{"the second branch is taken", map[string]any{"code": "7"}, []bool{false, true}, 1, ""},
		{"no branch holds", map[string]any{"code": ""}, []bool{false, false}, -1, code.GuardRejected},
	}
	for _, tt := range tests {
		x := machine.Explain(def, snap, "open", tt.payload, now)
		if code.Of(x.Err) != tt.code || len(x.Branches) != 2 {
			t.Fatalf("%s: err %v, %d branches", tt.name, x.Err, len(x.Branches))
		}
		for i, b := range x.Branches {
			if b.Result != tt.results[i] || b.Taken != (i == tt.taken) {
				t.Errorf("%s: branch %d = %+v", tt.name, i, b)
			}
		}
		if (x.Transition != nil) != (tt.taken >= 0) {
			t.Errorf("%s: transition %+v", tt.name, x.Transition)
		}
	}
	if x := machine.Explain(def, snap, "knock", nil, now); code.Of(x.Err) != code.UnknownEvent || len(x.Branches) != 0 {
		t.Errorf("unknown event: %+v", x)
	}
}
