package machine_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
)

var updateDiagrams = flag.Bool("update-diagrams", false, "rewrite the golden diagrams")

// TestMermaid compares the diagram of each example definition with its golden file.
func TestMermaid(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"order", "approval", "loan"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("..", "..", "definitions", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			def, diags := machine.Parse(name+".yaml", data)
			if diags.Errors() > 0 {
				t.Fatal(diags)
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
