package machine

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// parseStates parses the `states` of a definition file against a context and event payloads built
// by the caller, reporting what parsing them finds: the YAML parser of this branch does not write
// optional or enumerated types (`time?`, `enum:`), so the test gives them directly.
// (TestParseOptionalUse checks the same through Parse, with the types written in the file.)
func parseStates(t *testing.T, data string, ctx *schema.Type, events map[string]*schema.Type) []string {
	t.Helper()
	r := &source.Reporter{File: "order.yaml"}
	source.Walk(r, []byte(data), func(d *source.Doc, root *yaml.Node) {
		p := &parser{Doc: d}
		def := &Definition{Events: map[string]*EventSpec{}, States: map[string]*State{}, Context: ctx}
		for name, payload := range events {
			def.Events[name] = &EventSpec{Name: name, Payload: payload}
		}
		entries, _ := p.Mapping(root, "a definition")
		for _, e := range entries {
			if e.Key == "states" {
				p.states(def, e.Val)
			}
		}
	})
	r.Diags.Sort()
	var out []string
	for _, d := range r.Diags {
		out = append(out, d.String())
	}
	return out
}

func optionalOf(k schema.Kind) *schema.Type { return &schema.Type{Kind: k, Optional: true} }

// TestOptionalUseAtLoad: an unchecked use of an optional value is a load error at its line:col in
// the file; the facts of a branch's guard carry into its `set` and `send`, not into another
// branch's; a timer's `at` has no guard.
func TestOptionalUseAtLoad(t *testing.T) {
	t.Parallel()
	ctx := schema.ObjectOf(
		&schema.Field{Name: "paid_at", Type: optionalOf(schema.Time)},
		&schema.Field{Name: "done_at", Type: schema.Scalar(schema.Time)},
		&schema.Field{Name: "cleared", Type: optionalOf(schema.Time)},
		&schema.Field{Name: "peer", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "tier", Type: &schema.Type{Kind: schema.String, Enum: []any{"bronze", "silver", "gold"}}},
	)
	const def = `name: order
initial: created
states:
  created:
    on:
      pay:
        - to: paid
          guard: ctx.paid_at != nil && ctx.peer != ""
          set:
            done_at: ctx.paid_at + duration("1h")
            cleared: nil
          send:
            - to: ctx.peer
              event: paid
              payload: {at: 'ctx.paid_at + duration("1h")'}
        - to: paid
          guard: ctx.tier == "platinum"
        - to: paid
          set:
            done_at: ctx.paid_at + duration("1h")
            tier: '"platinum"'
            peer: nil
    timers:
      - at: ctx.paid_at + duration("72h")
        event: pay
  paid: {final: true}
`
	got := parseStates(t, def, ctx, map[string]*schema.Type{"pay": schema.ObjectOf()})
	paidAt := "ctx.paid_at is optional: check ctx.paid_at != nil first, or use ctx.paid_at ?? <default>"
	want := []string{
		`order.yaml:17:30: error: guard: "platinum" is not a value of ctx.tier, which is one of "bronze", "silver", "gold": the comparison is always the same`,
		"order.yaml:20:22: error: set done_at: " + paidAt,
		`order.yaml:21:20: error: set tier: "platinum" is not a value of the field, which is one of "bronze", "silver", "gold"`,
		"order.yaml:22:19: error: set peer: nil can only be set into an optional field (declared string?), and this one is string",
		"order.yaml:24:13: error: at: " + paidAt,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
