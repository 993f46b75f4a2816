package machine_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// edgeYAML's events take an instance's context to the edge of what fsmd keeps.
const edgeYAML = `name: edge
initial: open
context:
  note: string
  f: float
  m: any
events:
  append: {text: string}
states:
  open:
    on:
      append: {to: open, set: {note: ctx.note + event.text}}
      square: {to: open, set: {m: ctx.f * ctx.f}}
      wrap: {to: open, set: {m: "[ctx.m]"}}
      leave: open
`

// TestFireBounds: a set that takes the context past its bound (schema.MaxContextSize as JSON, or
// schema.MaxDepth levels), or makes a number JSON has not, fails with expression_failed; the same
// values at the bound pass, and an event without a set never looks.
func TestFireBounds(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("edge.yaml", []byte(edgeYAML))
	if diags.Errors() > 0 {
		t.Fatal((&machine.InvalidDefinitionError{Diagnostics: diags}).Error())
	}
	// {"f":0,"m":null,"note":"..."} is 26 bytes and the note.
	const overhead = len(`{"f":0,"m":null,"note":""}`)
	at := func(ctx map[string]any) machine.Snapshot {
		typed, err := def.Context.Decode(ctx, "", schema.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return machine.Snapshot{ID: "i-1", Version: 1, State: "open", Context: typed.(map[string]any)}
	}
	var deep any = 1
	for range schema.MaxDepth - 2 { // the context and m's lists: 99 levels
		deep = []any{deep}
	}
	big := at(map[string]any{"note": strings.Repeat("n", schema.MaxContextSize-overhead-1)})
	tests := []struct {
		name    string
		snap    machine.Snapshot
		event   string
		payload map[string]any
		err     string // "" when it passes
	}{
		{"a set up to the bound", big, "append", map[string]any{"text": "<"}, ""},
		{"a set a byte past it", big, "append", map[string]any{"text": "<<"}, "set: the context would take 262145 bytes as JSON; the most is 262144 (256 KiB)"},
		{"no set, past the bound already", at(map[string]any{"note": strings.Repeat("n", schema.MaxContextSize)}), "leave", nil, ""},
		{"a set to the deepest", at(map[string]any{"m": deep}), "wrap", nil, ""},
		{"a set a level deeper", at(map[string]any{"m": []any{deep}}), "wrap", nil, "set: the context would nest deeper than 100 levels"},
		{"a set that makes an infinity", at(map[string]any{"f": math.MaxFloat64}), "square", nil, "set: m: evaluating \"ctx.f * ctx.f\": expected a finite number, got +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := machine.Fire(def, tt.snap, tt.event, tt.payload, time.Now())
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if _, err := schema.CheckContext(tr.ContextAfter); err != nil && tt.event != "leave" {
					t.Errorf("the context after: %v", err)
				}
				return
			}
			var ee *machine.ExpressionError
			if !errors.As(err, &ee) || code.Of(err) != code.ExpressionFailed || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want expression_failed: %q", err, tt.err)
			}
			// Explain says the same, with no transition.
			if x := machine.Explain(def, tt.snap, tt.event, tt.payload, time.Now()); x.Transition != nil || code.Of(x.Err) != code.ExpressionFailed {
				t.Errorf("explained: %+v", x)
			}
		})
	}
}
