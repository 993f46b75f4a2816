package machine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// legDef is the child definition the parents below start.
const legDef = `name: leg
initial: open
context:
  kind: {type: string, required: true}
  price: int
states:
  open:
    on:
      done: closed
      abort: closed
  closed: {final: true}
`

func legResolve(t *testing.T) machine.Resolve {
	t.Helper()
	leg, diags := machine.Parse("leg.yaml", []byte(legDef))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	return func(name string) *machine.Definition {
		if name == "leg" {
			return leg
		}
		return nil
	}
}

// parentDef is a parent whose state `wait` starts legs: group is its group's body, on its handlers.
func parentDef(group, on string) string {
	return `name: trip
initial: start
context:
  legs: [{kind: string, price: int}]
  n: int
states:
  start:
    on:
      go: wait
  wait:
    children:
      legs:
` + group + `
    on:
` + on + `
  end: {final: true}
`
}

const okGroup = `        definition: leg
        for_each: ctx.legs
        context: {kind: item.kind, price: item.price}
        on_final: leg_done`

const okOn = `      leg_done:
        - to: end
          guard: children.legs.running == 0
        - set: {n: ctx.n + event.index}`

func TestChildrenChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, group, on string
		want            []string
	}{
		{"valid", okGroup, okOn, nil},
		{"an unknown definition", strings.Replace(okGroup, "definition: leg", "definition: ship", 1), okOn,
			[]string{`t.yaml:13:21: error: child group "legs" of state "wait": definition "ship" is not known: load it together with this one (the same folder) or register it first`}},
		{"a context field of the wrong type", strings.Replace(okGroup, "price: item.price", "price: item.kind", 1), okOn,
			[]string{`t.yaml:15:43: error: context price: expression is of type string, want int`}},
		{"a context field the child does not have", strings.Replace(okGroup, "price: item.price", "cost: item.price", 1), okOn,
			[]string{`t.yaml:15:36: error: child group "legs" of state "wait": context: definition "leg" has no context field "cost"`}},
		{"a required field not given", strings.Replace(okGroup, "kind: item.kind, ", "", 1), okOn,
			[]string{`t.yaml:12:7: error: child group "legs" of state "wait": context: definition "leg" requires the context field "kind"`}},
		{"for_each not a list", strings.Replace(okGroup, "for_each: ctx.legs", "for_each: ctx.n", 1), okOn,
			[]string{`t.yaml:14:19: error: for_each: expression is of type int, want [any]`}},
		{"both for_each and count", okGroup + "\n        count: 3", okOn,
			[]string{`t.yaml:17:9: error: child group "legs" of state "wait" has both ` + "`for_each` and `count`" + `; give one`}},
		{"a count of the wrong type", strings.Replace(okGroup, "for_each: ctx.legs", "count: '\"3\"'", 1), okOn,
			[]string{`t.yaml:14:17: error: count: expression is of type string, want int`, `t.yaml:15:30: error: context kind: type int has no field kind`,
				`t.yaml:15:48: error: context price: type int has no field price`}},
		{"on_final not handled", okGroup, "      other: end",
			[]string{`t.yaml:12:7: error: on_final event "leg_done" of child group "legs" is not handled in ` + "`on`" + ` of state "wait"`}},
		{"on_exit not an event of the child", okGroup + "\n        on_exit: explode", okOn,
			[]string{`t.yaml:17:18: error: child group "legs" of state "wait": on_exit event "explode" is not an event of definition "leg"`}},
		{"an unknown group in an expression", okGroup, strings.Replace(okOn, "children.legs.running", "children.ships.running", 1),
			[]string{`t.yaml:20:27: error: guard: unknown field ships`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, diags := machine.ParseWith("t.yaml", []byte(parentDef(tt.group, tt.on)), legResolve(t))
			var got []string
			for _, d := range diags {
				if d.Severity == "error" {
					got = append(got, d.String())
				}
			}
			diffLines(t, got, tt.want)
		})
	}
}

func mustParent(t *testing.T, group, on string) *machine.Definition {
	t.Helper()
	def, diags := machine.ParseWith("t.yaml", []byte(parentDef(group, on)), legResolve(t))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	return def
}

// TestChildrenFire: entering the state starts one child per element, with its context; the counts
// and ids the caller gives are what guards see; leaving it names the groups with on_exit; a child
// reaching a final state tells its parent; the limits fail the event with expression_failed.
func TestChildrenFire(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	def := mustParent(t, okGroup+"\n        on_exit: abort", okOn)
	legs := []any{map[string]any{"kind": "flight", "price": 3}, map[string]any{"kind": "hotel", "price": 5}}
	snap := machine.Snapshot{ID: "t-1", Version: 1, State: "start", Context: map[string]any{"legs": legs, "n": 0}}
	tr, err := machine.Fire(def, snap, "go", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Start) != 1 || tr.Start[0].Group.Name != "legs" || len(tr.Start[0].Contexts) != 2 ||
		tr.Start[0].Contexts[1]["kind"] != "hotel" || tr.Start[0].Contexts[1]["price"] != 5 {
		t.Fatalf("started: %+v", tr.Start)
	}

	wait := snap
	wait.State = "wait"
	wait.Children = map[string]machine.ChildCounts{"legs": {Total: 2, Running: 1, Final: 1, IDs: []string{"t-1.legs.1.1"}}}
	tr, err = machine.Fire(def, wait, "leg_done", map[string]any{"child": "t-1.legs.1.0", "group": "legs", "index": 1, "state": "closed",
		"context": map[string]any{"kind": "flight"}}, now)
	if err != nil || !tr.Stayed || tr.ContextAfter["n"] != 1 {
		t.Fatalf("one of two ended: %+v %v, want a stay counting its index", tr, err)
	}
	wait.Children["legs"] = machine.ChildCounts{Total: 2, Final: 2}
	tr, err = machine.Fire(def, wait, "leg_done", map[string]any{"child": "t-1.legs.1.1", "group": "legs", "index": 1, "state": "closed",
		"context": map[string]any{"kind": "hotel"}}, now)
	if err != nil || tr.To != "end" || len(tr.Exit) != 1 || tr.Exit[0].OnExit != "abort" {
		t.Fatalf("the last ended: %+v %v, want end, with legs' on_exit", tr, err)
	}

	leg := legResolve(t)("leg")
	child := machine.Snapshot{ID: "t-1.legs.1.0", Version: 1, State: "open", Context: map[string]any{"kind": "car", "price": 1},
		Parent: machine.Parent{ID: "t-1", Group: "legs", Index: 0, Rev: 1, OnFinal: "leg_done"}}
	tr, err = machine.Fire(leg, child, "done", nil, now)
	if err != nil || len(tr.Sent) != 1 || tr.Sent[0].To != "t-1" || tr.Sent[0].Event != "leg_done" ||
		tr.Sent[0].Payload["state"] != "closed" || tr.Sent[0].Payload["child"] != "t-1.legs.1.0" {
		t.Fatalf("a child ending: %+v %v, want leg_done to t-1", tr, err)
	}

	// At the deepest level a group that starts no child is no error.
	none := mustParent(t, strings.Replace(okGroup, "for_each: ctx.legs", "for_each: ctx.legs[:0]", 1), okOn)
	deep := snap
	deep.Depth = machine.MaxChildDepth
	if tr, err := machine.Fire(none, deep, "go", nil, now); err != nil || len(tr.Start) != 1 || len(tr.Start[0].Contexts) != 0 {
		t.Fatalf("no child at depth 8: %+v %v", tr, err)
	}

	for _, tt := range []struct {
		name  string
		snap  func(machine.Snapshot) machine.Snapshot
		group string
		want  string
	}{
		{"10,001 elements", func(s machine.Snapshot) machine.Snapshot {
			many := make([]any, machine.MaxChildren+1)
			for i := range many {
				many[i] = map[string]any{"kind": "k"}
			}
			s.Context = map[string]any{"legs": many}
			return s
		}, okGroup, "more than 10000 children"},
		{"depth 9", func(s machine.Snapshot) machine.Snapshot { s.Depth = machine.MaxChildDepth; return s }, okGroup, "9 levels deep"},
		{"a negative count", func(s machine.Snapshot) machine.Snapshot { return s },
			strings.Replace(strings.Replace(okGroup, "for_each: ctx.legs", "count: -1", 1), "item.kind, price: item.price", `'"k"'`, 1), "cannot be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			def := mustParent(t, tt.group, okOn)
			_, err := machine.Fire(def, tt.snap(snap), "go", nil, now)
			var ee *machine.ExpressionError
			if !errors.As(err, &ee) || code.Of(err) != code.ExpressionFailed || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want expression_failed saying %q", err, tt.want)
			}
		})
	}
}
