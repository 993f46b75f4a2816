package machine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// defWithContext is a valid definition whose context section is ctx (indented by two spaces).
func defWithContext(ctx string) string {
	return "name: t\ninitial: a\ncontext:\n" + ctx + "states:\n  a:\n    on:\n      go: b\n  b: {final: true}\n"
}

func TestParseOptionalAndEnum(t *testing.T) {
	t.Parallel()
	def, diags := diagText("t.yaml", defWithContext(`  paid_at: time?
  tags: "[string]?"
  stamps: "[time?]"
  note: {type: string, optional: true}
  tier: {type: string, enum: [bronze, silver, gold]}
  level: {type: int, enum: [3, 1, 2], default: 2}
  maybe: {type: "string?", enum: [a, b], default: null}
  customer:
    tier: {type: string, enum: [x, y], optional: true, default: y}
`))
	diffLines(t, diags, nil)
	if def == nil {
		t.Fatal("no definition")
	}
	for path, want := range map[string]string{
		"paid_at": "time?", "tags": "[string]?", "stamps": "[time?]", "note": "string?",
		"tier": `string enum ["bronze", "silver", "gold"]`, "level": "int enum [3, 1, 2]",
		"maybe": `string? enum ["a", "b"]`, "customer.tier": `string? enum ["x", "y"]`,
	} {
		f := def.Context.Path(strings.Split(path, "."))
		if f == nil || f.Type.String() != want {
			t.Errorf("%s: %v, want %s", path, f, want)
		}
	}
	zero, err := def.Context.Decode(map[string]any{}, "", schema.Options{Required: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"paid_at": nil, "tags": nil, "stamps": []any{}, "note": nil, "tier": "bronze", "level": 2,
		"maybe": nil, "customer": map[string]any{"tier": "y"}}
	if !schema.Equal(zero, want) {
		t.Errorf("a new context: %#v\nwant %#v", zero, want)
	}
}

func TestParseOptionalAndEnumErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ctx  string
		want []string
	}{
		{"optional twice", "  a: time??\n", []string{`t.yaml:4:6: error: field a: "time??" is optional twice; one ? is enough`}},
		{"an unknown optional type", "  a: tim?\n", []string{`t.yaml:4:6: error: field a: unknown type "tim" (expected string, int, float, bool, time, duration, any, [T], T? or a mapping of fields)`}},
		{"any?", "  a: any?\n", []string{`t.yaml:4:6: error: field a: any cannot be optional: it already takes null`}},
		{"an optional object", "  a: {type: object, fields: {x: int}, optional: true}\n",
			[]string{`t.yaml:4:39: error: field a: an object cannot be optional; make its fields optional instead`}},
		{"optional false and T?", "  a: {type: \"time?\", optional: false}\n", []string{`t.yaml:4:32: error: field a: optional: false contradicts its type time?`}},
		{"optional not a bool", "  a: {type: int, optional: yes please}\n", []string{`t.yaml:4:28: error: optional must be true or false, not "yes please"`}},
		{"null default of a plain field", "  a: {type: time, default: null}\n",
			[]string{`t.yaml:4:28: error: default of field a does not fit its type: expected time, got null (only an optional type, time?, takes null)`}},
		{"an enum of floats", "  a: {type: float, enum: [1.5]}\n", []string{`t.yaml:4:20: error: enum of field a: an enumeration is of string or int values, and the field is float`}},
		{"an enum of a list", "  a: {type: \"[string]\", enum: [a]}\n", []string{`t.yaml:4:25: error: enum of field a: an enumeration is of string or int values, and the field is [string]`}},
		{"an empty enum", "  a: {type: string, enum: []}\n", []string{`t.yaml:4:27: error: enum of field a is empty: list the values the field may take`}},
		{"an enum that is no list", "  a: {type: string, enum: abc}\n", []string{`t.yaml:4:27: error: enum of field a must be a list, not "abc"`}},
		{"a duplicate", "  a: {type: string, enum: [a, b, a]}\n", []string{`t.yaml:4:34: error: enum of field a: "a" is listed twice`}},
		{"a value of another type", "  a: {type: int, enum: [1, two, 2.5]}\n", []string{
			`t.yaml:4:28: error: enum of field a: value 2 (two): expected int, got string "two"`,
			`t.yaml:4:33: error: enum of field a: value 3 (2.5): expected int, got number (a number with a fraction)`}},
		{"a null value", "  a: {type: string, enum: [a, ~]}\n", []string{`t.yaml:4:31: error: enum of field a: value 2 must be a single string, not nothing`}},
		{"a default outside", "  a: {type: string, enum: [a, b], default: c}\n",
			[]string{`t.yaml:4:44: error: default of field a does not fit its type: expected one of ["a", "b"], got "c"`}},
		{"too many values", "  a: {type: int, enum: [" + strings.Repeat("1, ", schema.MaxEnum) + "1]}\n",
			[]string{`t.yaml:4:24: error: enum of field a has 10001 values; the most is 10000`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got := diagText("t.yaml", defWithContext(tt.ctx))
			diffLines(t, got, tt.want)
		})
	}
}

// The largest enumeration loads in well under a second (its values are checked in one pass) and a
// value is looked up in it quickly.
func TestParseLargestEnum(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range schema.MaxEnum {
		fmt.Fprintf(&b, "v%d, ", i)
	}
	src := defWithContext("  a: {type: string, enum: [" + strings.TrimSuffix(b.String(), ", ") + "]}\n")
	start := time.Now()
	def, diags := machine.Parse("t.yaml", []byte(src))
	if len(diags) > 0 || def == nil {
		t.Fatalf("diagnostics: %v", diags)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("loading a %d-value enum took %v", schema.MaxEnum, d)
	}
	typ := def.Context.Field("a").Type
	if len(typ.Enum) != schema.MaxEnum {
		t.Fatalf("%d values", len(typ.Enum))
	}
	start = time.Now()
	for range 1000 {
		if _, err := typ.Decode("v9999", "", schema.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("1000 lookups in a %d-value enum took %v", schema.MaxEnum, d)
	}
}

// A `set` is decoded against its target's type (guards' Program.Value): nil clears an optional
// field; nil into a plain field, or a value outside an enumeration, fails the event as an
// ExpressionError (expression_failed) and nothing is written.
func TestSetOptionalAndEnum(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("t.yaml", []byte(`name: t
initial: a
context:
  paid_at: time?
  amount: float
  tier: {type: string, enum: [bronze, silver, gold]}
events:
  tier:
    to: {type: string, enum: [bronze, silver, gold, platinum]}
states:
  a:
    on:
      pay: {to: a, set: {paid_at: now}}
      clear: {to: a, set: {paid_at: nil}}
      tier: {to: a, set: {tier: event.to}}
`))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	start := machine.Snapshot{ID: "i", Version: 1, State: "a", Context: map[string]any{"paid_at": nil, "amount": 1.0, "tier": "bronze"}}
	tests := []struct {
		event   string
		payload map[string]any
		before  any // paid_at before
		field   string
		want    any
		wantErr string
	}{
		{"pay", nil, nil, "paid_at", now, ""},
		{"clear", nil, now, "paid_at", nil, ""},
		{"tier", map[string]any{"to": "gold"}, nil, "tier", "gold", ""},
		{"tier", map[string]any{"to": "platinum"}, nil, "", nil, `set: tier: evaluating "event.to": expected one of ["bronze", "silver", "gold"], got "platinum"`},
	}
	for _, tt := range tests {
		s := start
		s.Context = map[string]any{"paid_at": tt.before, "amount": 1.0, "tier": "bronze"}
		tr, err := machine.Fire(def, s, tt.event, tt.payload, now)
		if tt.wantErr != "" {
			var ee *machine.ExpressionError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s %v: error %v, want an ExpressionError with %s", tt.event, tt.payload, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.event, err)
		}
		if got := tr.ContextAfter[tt.field]; !schema.Equal(got, tt.want) {
			t.Errorf("%s: %s = %#v, want %#v", tt.event, tt.field, got, tt.want)
		}
	}
	// An enum payload value out of range is an InvalidPayloadError naming the field.
	_, err := machine.Fire(def, start, "tier", map[string]any{"to": "tin"}, now)
	var pe *machine.InvalidPayloadError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), `to: expected one of ["bronze", "silver", "gold", "platinum"], got "tin"`) {
		t.Errorf("payload out of the enum: %v", err)
	}
}

// The expression checks of optional values and enumerations, through Parse with the types in the
// file: each refusal at the line:col of the file.
func TestParseOptionalUse(t *testing.T) {
	t.Parallel()
	const head = `name: t
initial: a
context:
  paid_at: time?
  tier: {type: string, enum: [bronze, silver, gold]}
states:
  a:
    on:
`
	tests := []struct{ on, want string }{
		{`      go: {to: a, guard: ctx.paid_at != nil && now - ctx.paid_at > duration("1h")}`, ""},
		{`      go: {to: a, guard: ctx.paid_at != nil, set: {paid_at: ctx.paid_at + duration("1h")}}`, ""},
		{`      go: {to: a, set: {paid_at: 'ctx.paid_at ?? now'}}`, ""},
		{`      go: {to: a, guard: now - ctx.paid_at > duration("1h")}`, "t.yaml:9:32: error: guard: ctx.paid_at is optional: check ctx.paid_at != nil first, or use ctx.paid_at ?? <default>"},
		{`      go: {to: a, guard: ctx.tier == "platinum"}`, `t.yaml:9:38: error: guard: "platinum" is not a value of ctx.tier, which is one of "bronze", "silver", "gold"`},
		{`      go: {to: a, set: {tier: '"tin"'}}`, `t.yaml:9:32: error: set tier: "tin" is not a value of the field, which is one of "bronze", "silver", "gold"`},
	}
	for _, tt := range tests {
		_, diags := machine.Parse("t.yaml", []byte(head+tt.on+"\n"))
		got := fmt.Sprint(diags)
		if tt.want == "" && diags.Errors() > 0 || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s:\n got %s\nwant %q", tt.on, got, tt.want)
		}
	}
}
