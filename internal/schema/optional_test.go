package schema_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/schema"
)

func optional(k schema.Kind) *schema.Type { return &schema.Type{Kind: k, Optional: true} }

func enum(k schema.Kind, values ...any) *schema.Type { return &schema.Type{Kind: k, Enum: values} }

var tier = enum(schema.String, "bronze", "silver", "gold")

func TestDecodeOptionalAndEnum(t *testing.T) {
	t.Parallel()
	optTier := enum(schema.String, "bronze", "silver", "gold")
	optTier.Optional = true
	big := make([]any, schema.MaxEnum)
	for i := range big {
		big[i] = fmt.Sprintf("v%d", i)
	}
	tests := []struct {
		name    string
		typ     *schema.Type
		in      any
		want    any
		wantErr string // the whole Error(); "" for none
	}{
		{"an optional time takes null", optional(schema.Time), nil, nil, ""},
		{"an optional time takes a time", optional(schema.Time), "2026-01-02T15:04:05Z", jan1, ""},
		{"an optional time refuses a number", optional(schema.Time), 3.0, nil, `f: expected time?, got number`},
		{"an optional list takes null", &schema.Type{Kind: schema.List, Elem: tString, Optional: true}, nil, nil, ""},
		{"a time refuses null", tTime, nil, nil, `f: expected time, got null (only an optional type, time?, takes null)`},
		{"an int refuses null", tInt, nil, nil, `f: expected int, got null (only an optional type, int?, takes null)`},
		{"any takes null", tAny, nil, nil, ""},
		{"an enum takes its value", tier, "silver", "silver", ""},
		{"an enum refuses another", tier, "platinum", nil, `f: expected one of ["bronze", "silver", "gold"], got "platinum"`},
		{"an enum refuses null", tier, nil, nil, `f: expected string, got null (only an optional type, string?, takes null)`},
		{"an enum refuses another type", tier, 3.0, nil, `f: expected string enum ["bronze", "silver", "gold"], got number`},
		{"an optional enum takes null", optTier, nil, nil, ""},
		{"an optional enum refuses another", optTier, "tin", nil, `f: expected one of ["bronze", "silver", "gold"], got "tin"`},
		{"an int enum takes its value", enum(schema.Int, 1, 2, 3), json.Number("2"), 2, ""},
		{"an int enum refuses another", enum(schema.Int, 1, 2, 3), json.Number("4"), nil, `f: expected one of [1, 2, 3], got 4`},
		{"a huge enum takes its last value", enum(schema.String, big...), "v9999", "v9999", ""},
		{"a huge enum names ten values", enum(schema.String, big...), "x", nil,
			`f: expected one of ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", ... (10000 values)], got "x"`},
		{"a long value is cut", tier, strings.Repeat("x", 1000), nil, `f: expected one of ["bronze", "silver", "gold"], got "` + strings.Repeat("x", 40) + `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.typ.Decode(tt.in, "f", schema.Options{})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !schema.Equal(got, tt.want) {
				t.Fatalf("got %#v %v, want %#v", got, err, tt.want)
			}
		})
	}
}

// An object's optional field that is missing, or null, is nil; a non-optional enum starts at its
// first value.
func TestDecodeObjectOptional(t *testing.T) {
	t.Parallel()
	typ := schema.ObjectOf(
		&schema.Field{Name: "paid_at", Type: optional(schema.Time)},
		&schema.Field{Name: "tier", Type: tier},
		&schema.Field{Name: "level", Type: enum(schema.Int, 3, 1, 2)},
	)
	for _, in := range []map[string]any{{}, {"paid_at": nil}} {
		got, err := typ.Decode(in, "", schema.Options{Required: true})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"paid_at": nil, "tier": "bronze", "level": 3}
		if !schema.Equal(got, want) {
			t.Fatalf("Decode(%v) = %#v, want %#v", in, got, want)
		}
		if b, _ := json.Marshal(schema.Encode(got)); string(b) != `{"level":3,"paid_at":null,"tier":"bronze"}` {
			t.Fatalf("JSON %s", b)
		}
	}
	if z := typ.Zero().(map[string]any); z["paid_at"] != nil || z["tier"] != "bronze" {
		t.Fatalf("Zero() = %#v", z)
	}
	_, err := typ.Decode(map[string]any{"tier": nil}, "ctx", schema.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "ctx.tier: expected string, got null") {
		t.Fatalf("a null in a non-optional field: %v", err)
	}
}

func TestEqualNil(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b any
		want bool
	}{
		{nil, nil, true},
		{nil, time.Time{}, false},
		{time.Time{}, nil, false},
		{nil, "", false},
		{0, nil, false},
		{map[string]any{"p": nil}, map[string]any{"p": nil}, true},
		{map[string]any{"p": nil}, map[string]any{"p": jan1}, false},
	} {
		if got := schema.Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%#v, %#v) = %v", tt.a, tt.b, got)
		}
	}
	if schema.Clone(nil) != nil {
		t.Error("Clone(nil) is not nil")
	}
}

func TestStringAndIdentical(t *testing.T) {
	t.Parallel()
	optList := &schema.Type{Kind: schema.List, Elem: optional(schema.Time), Optional: true}
	for _, tt := range []struct {
		typ  *schema.Type
		want string
	}{
		{optional(schema.Time), "time?"},
		{tier, `string enum ["bronze", "silver", "gold"]`},
		{&schema.Type{Kind: schema.Int, Enum: []any{1, 2}, Optional: true}, "int? enum [1, 2]"},
		{optList, "[time?]?"},
		{schema.ObjectOf(&schema.Field{Name: "paid_at", Type: optional(schema.Time)}), "{paid_at: time?}"},
	} {
		if got := tt.typ.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
	long := func(last string) *schema.Type {
		values := make([]any, 20)
		for i := range values {
			values[i] = fmt.Sprint(i)
		}
		values[19] = last
		return enum(schema.String, values...)
	}
	for _, tt := range []struct {
		name string
		a, b *schema.Type
		want bool
	}{
		{"same enum", tier, enum(schema.String, "bronze", "silver", "gold"), true},
		{"an enum loses a value", tier, enum(schema.String, "bronze", "silver"), false},
		{"an enum reordered", tier, enum(schema.String, "gold", "silver", "bronze"), false},
		{"enums that print alike", long("a"), long("b"), false},
		{"a time becomes optional", tTime, optional(schema.Time), false},
		{"nested", schema.ObjectOf(&schema.Field{Name: "c", Type: schema.ObjectOf(&schema.Field{Name: "tier", Type: tier})}),
			schema.ObjectOf(&schema.Field{Name: "c", Type: schema.ObjectOf(&schema.Field{Name: "tier", Type: tString})}), false},
		{"lists", schema.ListOf(optional(schema.Int)), schema.ListOf(optional(schema.Int)), true},
	} {
		if got := schema.Identical(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: Identical = %v", tt.name, got)
		}
	}
	if long("a").String() != long("b").String() {
		t.Error("String of a long enumeration is not bounded")
	}
}

func TestJSONSchemaOptionalEnum(t *testing.T) {
	t.Parallel()
	optTier := enum(schema.String, "bronze", "gold")
	optTier.Optional = true
	typ := schema.ObjectOf(
		&schema.Field{Name: "paid_at", Type: optional(schema.Time)},
		&schema.Field{Name: "tier", Type: tier, Default: "gold", HasDefault: true},
		&schema.Field{Name: "maybe", Type: optTier},
		&schema.Field{Name: "tags", Type: &schema.Type{Kind: schema.List, Elem: tString, Optional: true}},
	)
	b, err := json.Marshal(typ.JSONSchema())
	want := `{"additionalProperties":false,"properties":{"maybe":{"enum":["bronze","gold",null],"type":["string","null"]},` +
		`"paid_at":{"format":"date-time","type":["string","null"]},"tags":{"items":{"type":"string"},"type":["array","null"]},` +
		`"tier":{"default":"gold","enum":["bronze","silver","gold"],"type":"string"}},"type":"object"}`
	if err != nil || string(b) != want {
		t.Fatalf("got  %s %v\nwant %s", b, err, want)
	}
}
