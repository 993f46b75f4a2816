package machine_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// deskYAML has branches that stay (no `to`), next to ones that leave and one that re-enters, and a
// handler with a stay that two states share through an alias.
const deskYAML = `name: desk
initial: open
context:
  notes: int
  level: int
events:
  note: {urgent: bool}
states:
  open:
    on:
      note:
        - to: urgent
          guard: event.urgent
        - set: {notes: ctx.notes + 1}
      poke: {}
      reopen: open
      ping: &ping
        set: {level: ctx.level + 1}
      close: closed
    timers:
      - after: 1h
        event: poke
      - after: 2h
        event: close
  urgent:
    on:
      ping: *ping
      close: closed
  closed: {final: true}
`

func desk(t *testing.T) *machine.Definition {
	t.Helper()
	def, diags := machine.Parse("desk.yaml", []byte(deskYAML))
	if len(diags) > 0 {
		t.Fatalf("desk.yaml: %v", diags)
	}
	return def
}

func TestFireStay(t *testing.T) {
	t.Parallel()
	def := desk(t)
	entered := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := entered.Add(30 * time.Minute)
	in := func(state string) machine.Snapshot {
		return machine.Snapshot{ID: "d-1", Version: 1, State: state, CreatedAt: entered, EnteredAt: entered,
			Context: map[string]any{"notes": 0, "level": 0}}
	}
	tests := []struct {
		name, state, event string
		payload            map[string]any
		to                 string
		stayed             bool
		branch             int
		ctx                map[string]any
		guards             []machine.GuardResult
		cancel             []string
		arm                []machine.Due
	}{
		{name: "a stay with set", state: "open", event: "note", payload: map[string]any{"urgent": false},
			to: "open", stayed: true, branch: 1, ctx: map[string]any{"notes": 1, "level": 0},
			guards: []machine.GuardResult{{Branch: 0, To: "urgent", Guard: "event.urgent", Result: false}}},
		{name: "the leaving branch of the same handler", state: "open", event: "note", payload: map[string]any{"urgent": true},
			to: "urgent", branch: 0, ctx: map[string]any{"notes": 0, "level": 0},
			guards: []machine.GuardResult{{Branch: 0, To: "urgent", Guard: "event.urgent", Result: true}},
			cancel: []string{"poke", "close"}},
		{name: "a stay without set", state: "open", event: "poke", to: "open", stayed: true,
			ctx: map[string]any{"notes": 0, "level": 0}},
		{name: "a re-entry still re-enters", state: "open", event: "reopen", to: "open",
			ctx: map[string]any{"notes": 0, "level": 0}, cancel: []string{"poke", "close"},
			arm: []machine.Due{{Event: "poke", At: now.Add(time.Hour)}, {Event: "close", At: now.Add(2 * time.Hour)}}},
		{name: "a shared stay stays where it is taken (open)", state: "open", event: "ping", to: "open", stayed: true,
			ctx: map[string]any{"notes": 0, "level": 1}},
		{name: "a shared stay stays where it is taken (urgent)", state: "urgent", event: "ping", to: "urgent", stayed: true,
			ctx: map[string]any{"notes": 0, "level": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := machine.Fire(def, in(tt.state), tt.event, tt.payload, now)
			if err != nil {
				t.Fatal(err)
			}
			if tr.From != tt.state || tr.To != tt.to || tr.Stayed != tt.stayed || tr.Branch != tt.branch || tr.Final {
				t.Errorf("got %s -> %s stayed %v branch %d final %v, want %s -> %s stayed %v branch %d",
					tr.From, tr.To, tr.Stayed, tr.Branch, tr.Final, tt.state, tt.to, tt.stayed, tt.branch)
			}
			if !reflect.DeepEqual(tr.ContextAfter, tt.ctx) {
				t.Errorf("ctx = %v, want %v", tr.ContextAfter, tt.ctx)
			}
			if !reflect.DeepEqual(tr.Guards, tt.guards) {
				t.Errorf("guards = %v, want %v", tr.Guards, tt.guards)
			}
			if !reflect.DeepEqual(tr.Cancel, tt.cancel) || !reflect.DeepEqual(tr.Arm, tt.arm) {
				t.Errorf("cancel %v arm %v, want cancel %v arm %v", tr.Cancel, tr.Arm, tt.cancel, tt.arm)
			}
		})
	}
}

func TestExplainStay(t *testing.T) {
	t.Parallel()
	def := desk(t)
	snap := machine.Snapshot{ID: "d-1", Version: 1, State: "open", Context: map[string]any{"notes": 0, "level": 0}}
	x := machine.Explain(def, snap, "note", map[string]any{"urgent": false}, time.Now())
	if x.Err != nil || x.Transition == nil || !x.Transition.Stayed {
		t.Fatalf("explanation: %+v", x)
	}
	want := []machine.BranchResult{
		{Index: 0, To: "urgent", Guard: "event.urgent", Result: false, Allowed: true},
		{Index: 1, To: "open", Stays: true, Result: true, Taken: true, Allowed: true},
	}
	if !reflect.DeepEqual(x.Branches, want) {
		t.Errorf("branches = %+v, want %+v", x.Branches, want)
	}
}

func TestMermaidStay(t *testing.T) {
	t.Parallel()
	got := machine.Mermaid(desk(t))
	for _, line := range []string{
		"    open --> urgent : note (1)\n",
		"    open --> open : note (2, stay)\n",
		"    open --> open : poke (stay)\n",
		"    open --> open : reopen\n",
		"    urgent --> urgent : ping (stay)\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("the diagram has no line %q:\n%s", line, got)
		}
	}
}
