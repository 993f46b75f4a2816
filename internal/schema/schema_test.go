package schema_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/schema"
)

var (
	tString   = schema.Scalar(schema.String)
	tInt      = schema.Scalar(schema.Int)
	tFloat    = schema.Scalar(schema.Float)
	tBool     = schema.Scalar(schema.Bool)
	tTime     = schema.Scalar(schema.Time)
	tDuration = schema.Scalar(schema.Duration)
	tAny      = schema.Scalar(schema.Any)
)

// order is the context of definitions.md's example, cut down.
func order() *schema.Type {
	return schema.ObjectOf(
		&schema.Field{Name: "amount", Type: tFloat},
		&schema.Field{Name: "currency", Type: tString, Default: "EUR", HasDefault: true},
		&schema.Field{Name: "customer", Type: schema.ObjectOf(
			&schema.Field{Name: "tier", Type: tString},
			&schema.Field{Name: "since", Type: tTime},
			&schema.Field{Name: "points", Type: tInt, Default: 10, HasDefault: true},
		)},
		&schema.Field{Name: "tags", Type: schema.ListOf(tString)},
		&schema.Field{Name: "customer_id", Type: tString, Required: true},
	)
}

var jan1 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func TestDecodeScalars(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  *schema.Type
		in   any
		want any
	}{
		{"string", tString, "x", "x"},
		{"empty string", tString, "", ""},
		{"int from int", tInt, 3, 3},
		{"int from float64 without fraction", tInt, 3.0, 3},
		{"int from negative float64", tInt, -7.0, -7},
		{"int from int64", tInt, int64(1) << 40, 1 << 40},
		{"int from uint64", tInt, uint64(5), 5},
		{"int from json.Number", tInt, json.Number("42"), 42},
		{"int from json.Number 3.0", tInt, json.Number("3.0"), 3},
		{"int from json.Number 1e3", tInt, json.Number("1e3"), 1000},
		// Exactly, whatever the form: int64's ends, fractions that cancel, a zero of any exponent.
		{"int from json.Number int64's maximum", tInt, json.Number("9223372036854775807"), math.MaxInt64},
		{"int from json.Number int64's minimum", tInt, json.Number("-9223372036854775808"), math.MinInt64},
		{"int from json.Number int64's maximum with a fraction of zeros", tInt, json.Number("9223372036854775807.000"), math.MaxInt64},
		{"int from json.Number int64's maximum with an exponent", tInt, json.Number("9.223372036854775807e18"), math.MaxInt64},
		{"int from json.Number int64's minimum with an exponent", tInt, json.Number("-92233720368547758.08E2"), math.MinInt64},
		{"int from json.Number 300e-2", tInt, json.Number("300e-2"), 3},
		{"int from json.Number 0.03e+2", tInt, json.Number("0.03e+2"), 3},
		{"int from json.Number -0", tInt, json.Number("-0"), 0},
		{"int from json.Number 0e-999999999999999999999", tInt, json.Number("0e-999999999999999999999"), 0},
		{"int from json.Number 0.000e999999999", tInt, json.Number("0.000e999999999"), 0},
		{"float from float", tFloat, 2.5, 2.5},
		{"float from int", tFloat, 3, 3.0},
		{"float from int64", tFloat, int64(3), 3.0},
		{"float from json.Number", tFloat, json.Number("0.25"), 0.25},
		{"bool", tBool, true, true},
		{"time from RFC 3339", tTime, "2026-01-02T15:04:05Z", jan1},
		{"time from RFC 3339 with offset", tTime, "2026-01-02T16:04:05+01:00", jan1},
		{"time from RFC 3339 with fraction", tTime, "2026-01-02T15:04:05.5Z", jan1.Add(500 * time.Millisecond)},
		{"time from time.Time", tTime, jan1, jan1},
		{"duration from Go syntax", tDuration, "90m", 90 * time.Minute},
		{"duration from days", tDuration, "3d", 72 * time.Hour},
		{"duration from days and hours", tDuration, "1d12h", 36 * time.Hour},
		{"duration from time.Duration", tDuration, time.Second, time.Second},
		{"any keeps a number", tAny, 1.5, 1.5},
		{"any keeps null", tAny, nil, nil},
		{"any keeps an object", tAny, map[string]any{"a": []any{1.0}}, map[string]any{"a": []any{1.0}}},
		// An any value's numbers take the form either database gives back: an integer exact, any other
		// number the float64 nearest it, however many digits or however small.
		{"any keeps an integer exact", tAny, json.Number("9223372036854775807"), json.Number("9223372036854775807")},
		{"any writes -0 as 0", tAny, json.Number("-0"), json.Number("0")},
		{"any makes a fraction a float", tAny, json.Number("2.50"), 2.5},
		{"any makes an integer past int64 a float", tAny, json.Number("12345678901234567890"), 12345678901234567890.0},
		{"any makes 1e-20000 a float", tAny, json.Number("1e-20000"), 0.0},
		{"any makes 20,000 digits a float", tAny, json.Number("1." + strings.Repeat("0", 20000) + "1"), 1.0},
		{"any takes numbers deep inside", tAny, map[string]any{"a": []any{json.Number("1E3"), map[string]any{"b": json.Number("5e-400")}}},
			map[string]any{"a": []any{1000.0, map[string]any{"b": 0.0}}}},
		{"float from 20,000 digits", tFloat, json.Number("0." + strings.Repeat("0", 20000) + "1"), 0.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.typ.Decode(tt.in, "f", schema.Options{})
			if err != nil {
				t.Fatalf("Decode(%#v) as %s: %v", tt.in, tt.typ, err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(tt.want) {
				t.Fatalf("Decode(%#v) as %s = %#v (%T), want %#v (%T)", tt.in, tt.typ, got, got, tt.want, tt.want)
			}
			if !schema.Equal(got, tt.want) {
				t.Errorf("Decode(%#v) as %s = %#v, want %#v", tt.in, tt.typ, got, tt.want)
			}
		})
	}
}

// beyondInt64 is why a whole number past int64 is no int.
const beyondInt64 = "beyond the range of an int, -9223372036854775808 to 9223372036854775807"

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  *schema.Type
		in   any
		want string // the whole Error()
	}{
		{"int refuses a fraction", tInt, 3.5, `f: expected int, got number (a number with a fraction)`},
		{"int refuses a json.Number with a fraction", tInt, json.Number("3.5"), `f: expected int, got number (a number with a fraction)`},
		{"int refuses a string", tInt, "3", `f: expected int, got string "3"`},
		// A float64 would round each of these to an int; an int field takes none.
		{"int refuses a fraction past float64's precision", tInt, json.Number("1.0000000000000000000001"), `f: expected int, got number (a number with a fraction)`},
		{"int refuses a number that underflows float64", tInt, json.Number("5e-400"), `f: expected int, got number (a number with a fraction)`},
		{"int refuses a tiny fraction of a huge exponent", tInt, json.Number("1e-999999999999999999999"), `f: expected int, got number (a number with a fraction)`},
		{"int refuses a fraction after many digits", tInt, json.Number("12345678901234567.5"), `f: expected int, got number (a number with a fraction)`},
		{"int refuses one past int64's maximum", tInt, json.Number("9223372036854775808"), `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses one past int64's minimum", tInt, json.Number("-9223372036854775809"), `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses 1e19", tInt, json.Number("1e19"), `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses 1e999999999", tInt, json.Number("1e999999999"), `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses an exponent past int", tInt, json.Number("1e999999999999999999999"), `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses 200,000 digits", tInt, json.Number("1" + strings.Repeat("0", 200000)), `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses a uint64 past int64", tInt, uint64(1) << 63, `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses a float64 past 2^53", tInt, float64(1 << 60), `f: expected int, got number (` + beyondInt64 + `)`},
		{"int refuses a json.Number that is no number", tInt, json.Number("12a"), `f: expected int, got number`},
		{"float refuses a string", tFloat, "1.5", `f: expected float, got string "1.5"`},
		{"float refuses a number past float64", tFloat, json.Number("-1e400"), `f: expected float, got -1e400 (beyond the range of a float, about ±1.8e308)`},
		// No database stores these alike (PostgreSQL's numeric refuses them, SQLite keeps their text),
		// nor has JSON NaN or the infinities, which a set can make.
		{"any refuses 1e999999999", tAny, json.Number("1e999999999"), `f: the number 1e999999999 is beyond the range of a float, about ±1.8e308`},
		{"any refuses 200,000 digits", tAny, json.Number(strings.Repeat("9", 200_000)),
			`f: the number ` + strings.Repeat("9", 40) + `... is beyond the range of a float, about ±1.8e308`},
		{"any refuses a number past float64 deep inside", tAny, map[string]any{"a": []any{1, map[string]any{"b": json.Number("-1e309")}}},
			`f.a[1].b: the number -1e309 is beyond the range of a float, about ±1.8e308`},
		{"any refuses infinity", tAny, []any{math.Inf(-1)}, `f[0]: expected a finite number, got -Inf`},
		{"any refuses NaN", tAny, map[string]any{"x": math.NaN()}, `f.x: expected a finite number, got NaN`},
		{"any refuses a json.Number that is no number", tAny, json.Number("x"), `f: "x" is not a number`},
		{"any refuses NUL", tAny, []any{"a\x00"}, `f[0]: text holds a NUL character`},
		{"any refuses NUL in a key", tAny, map[string]any{"a\x00": 1}, `f: a key holds a NUL character`},
		{"float refuses NaN", tFloat, math.NaN(), `f: expected a finite float, got NaN`},
		{"float refuses infinity", tFloat, math.Inf(1), `f: expected a finite float, got +Inf`},
		{"string refuses a number", tString, 1.0, `f: expected string, got number`},
		{"string refuses null", tString, nil, `f: expected string, got null (only an optional type, string?, takes null)`},
		{"bool refuses a string", tBool, "true", `f: expected bool, got string "true"`},
		{"time refuses a date alone", tTime, "2026-01-02", `f: expected time (RFC 3339, e.g. 2026-01-02T15:04:05Z), got "2026-01-02"`},
		{"time refuses a number", tTime, 1.0, `f: expected time, got number`},
		{"duration refuses words", tDuration, "three days", `f: expected duration (e.g. 90m, 72h, 3d), got "three days"`},
		{"duration refuses a number", tDuration, 90.0, `f: expected duration, got number`},
		{"list refuses an object", schema.ListOf(tString), map[string]any{}, `f: expected [string], got object`},
		{"list names the bad element", schema.ListOf(tString), []any{"a", "b", 3.0}, `f[2]: expected string, got number`},
		{"object refuses a list", order(), []any{}, `f: expected {amount: float, currency: string, customer: {tier: string, since: time, points: int}, tags: [string], customer_id: string}, got list`},
		{"long strings are cut in messages", tInt, strings.Repeat("x", 100), `f: expected int, got string "` + strings.Repeat("x", 40) + `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.typ.Decode(tt.in, "f", schema.Options{})
			if err == nil {
				t.Fatalf("Decode(%#v) as %s = %#v, want an error", tt.in, tt.typ, got)
			}
			var de *schema.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *schema.DecodeError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("Decode(%#v) as %s:\n got %s\nwant %s", tt.in, tt.typ, err, tt.want)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      map[string]any
		opts    schema.Options
		want    map[string]any
		wantErr string
	}{
		{
			name: "missing fields take their default or zero, nested objects too",
			in:   map[string]any{"amount": 3},
			want: map[string]any{"amount": 3.0, "currency": "EUR", "customer_id": "", "tags": []any{},
				"customer": map[string]any{"tier": "", "since": time.Time{}, "points": 10}},
		},
		{
			name: "given nested fields are decoded, the others defaulted",
			in: map[string]any{"customer": map[string]any{"since": "2026-01-02T15:04:05Z"}, "tags": []any{"a"},
				"currency": "USD", "customer_id": "c1"},
			opts: schema.Options{Required: true},
			want: map[string]any{"amount": 0.0, "currency": "USD", "customer_id": "c1", "tags": []any{"a"},
				"customer": map[string]any{"tier": "", "since": jan1, "points": 10}},
		},
		{
			name:    "unknown top-level field",
			in:      map[string]any{"amont": 3},
			wantErr: "ctx.amont: unknown field",
		},
		{
			name:    "unknown nested field names its path",
			in:      map[string]any{"customer": map[string]any{"tire": "gold"}},
			wantErr: "ctx.customer.tire: unknown field",
		},
		{
			name:    "the first unknown field in name order",
			in:      map[string]any{"zz": 1, "bb": 1, "amount": 1},
			wantErr: "ctx.bb: unknown field",
		},
		{
			name:    "wrong type in a nested field names its path",
			in:      map[string]any{"customer": map[string]any{"tier": 1}},
			wantErr: "ctx.customer.tier: expected string, got number",
		},
		{
			name:    "wrong type in a list element names its index",
			in:      map[string]any{"tags": []any{"a", true}},
			wantErr: "ctx.tags[1]: expected string, got bool",
		},
		{
			name:    "required field missing",
			in:      map[string]any{"amount": 3},
			opts:    schema.Options{Required: true},
			wantErr: "ctx.customer_id: required field is missing",
		},
		{
			name:    "unknown fields are reported before missing required ones",
			in:      map[string]any{"x": 1},
			opts:    schema.Options{Required: true},
			wantErr: "ctx.x: unknown field",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := order().Decode(tt.in, "ctx", tt.opts)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Decode error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !schema.Equal(got, tt.want) {
				t.Errorf("Decode =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}

// TestDecodeNestedRequired: a required field inside an object must be given too, whether the object
// is given without it or not given at all; an object with a default is complete as it is.
func TestDecodeNestedRequired(t *testing.T) {
	t.Parallel()
	typ := schema.ObjectOf(
		&schema.Field{Name: "customer", Type: schema.ObjectOf(
			&schema.Field{Name: "id", Type: tString, Required: true},
			&schema.Field{Name: "tier", Type: tString},
		)},
		&schema.Field{Name: "billing", Type: schema.ObjectOf(
			&schema.Field{Name: "iban", Type: tString, Required: true},
		), Default: map[string]any{"iban": "none"}, HasDefault: true},
	)
	tests := []struct {
		name string
		in   map[string]any
		opts schema.Options
		want string // the error, or "" for none
	}{
		{"nested field given", map[string]any{"customer": map[string]any{"id": "c"}}, schema.Options{Required: true}, ""},
		{"object given without it", map[string]any{"customer": map[string]any{"tier": "gold"}}, schema.Options{Required: true}, "ctx.customer.id: required field is missing"},
		{"object missing", map[string]any{}, schema.Options{Required: true}, "ctx.customer.id: required field is missing"},
		{"object missing, not creating", map[string]any{}, schema.Options{}, ""},
	}
	for _, tt := range tests {
		got, err := typ.Decode(tt.in, "ctx", tt.opts)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != tt.want {
			t.Errorf("%s: Decode = %v, %q; want error %q", tt.name, got, msg, tt.want)
			continue
		}
		if err == nil {
			m := got.(map[string]any)
			if m["billing"].(map[string]any)["iban"] != "none" || m["customer"].(map[string]any)["tier"] == nil {
				t.Errorf("%s: Decode = %v", tt.name, got)
			}
		}
	}
}

func TestDecodeEmptyPrefix(t *testing.T) {
	t.Parallel()
	_, err := tInt.Decode("x", "", schema.Options{})
	if err == nil || err.Error() != `expected int, got string "x"` {
		t.Errorf("error = %v", err)
	}
	_, err = order().Decode(map[string]any{"customer": map[string]any{"x": 1}}, "", schema.Options{})
	if err == nil || err.Error() != "customer.x: unknown field" {
		t.Errorf("error = %v", err)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	t.Parallel()
	tags := []any{"a"}
	customer := map[string]any{"tier": "gold"}
	in := map[string]any{"tags": tags, "customer": customer}
	got, err := order().Decode(in, "", schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	m["tags"].([]any)[0] = "changed"
	m["customer"].(map[string]any)["tier"] = "changed"
	if tags[0] != "a" || customer["tier"] != "gold" {
		t.Errorf("Decode's result shares memory with its input: %v %v", tags, customer)
	}

	def := &schema.Field{Name: "l", Type: schema.ListOf(tString), Default: []any{"x"}, HasDefault: true}
	typ := schema.ObjectOf(def)
	a, _ := typ.Decode(map[string]any{}, "", schema.Options{})
	a.(map[string]any)["l"].([]any)[0] = "changed"
	if def.Default.([]any)[0] != "x" {
		t.Errorf("a decoded default shares memory with the field's Default")
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90m", 90 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"72h", 72 * time.Hour, true},
		{"0s", 0, true},
		{"3d", 72 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"1d30m15s", 24*time.Hour + 30*time.Minute + 15*time.Second, true},
		{"1.5d", 36 * time.Hour, true},
		{"-2d", -48 * time.Hour, true},
		{"-1d12h", -36 * time.Hour, true},
		{"100000d", 100000 * 24 * time.Hour, true},
		{"", 0, false},
		{"d", 0, false},
		{"3 days", 0, false},
		{"3days", 0, false},
		{"1h2d", 0, false},
		{"1d2d", 0, false},
		{"1d-1h", 0, false},
		{"1d+1h", 0, false},
		{"1dh", 0, false},
		{"100001d", 0, false},
		{"NaNd", 0, false},
		{"nand", 0, false},
		{"infd", 0, false},
		{"--2d", 0, false},
		{"+1d", 24 * time.Hour, true},
		{"+-1d", 0, false},
		{"-+1d", 0, false},
		{"1e2d", 0, false},
		{"0x1p4d", 0, false},
		{"100000d2562047h", 0, false}, // overflows int64 nanoseconds
		{"72", 0, false},
	}
	for _, tt := range tests {
		got, err := schema.ParseDuration(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseDuration(%q) = %v, %v; want ok=%v", tt.in, got, err, tt.ok)
			continue
		}
		if tt.ok && got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if !tt.ok && err != nil && !strings.Contains(err.Error(), tt.in) && tt.in != "" {
			t.Errorf("ParseDuration(%q) error %q does not quote the input", tt.in, err)
		}
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	in := map[string]any{
		"at":    time.Date(2026, 1, 2, 15, 4, 5, 500, time.FixedZone("CET", 3600)),
		"after": 90 * time.Minute,
		"n":     3,
		"list":  []any{jan1, 36 * time.Hour, "s"},
		"obj":   map[string]any{"t": jan1, "b": true, "nil": nil},
	}
	want := map[string]any{
		"at":    "2026-01-02T15:04:05.0000005+01:00",
		"after": "1h30m0s",
		"n":     3,
		"list":  []any{"2026-01-02T15:04:05Z", "36h0m0s", "s"},
		"obj":   map[string]any{"t": "2026-01-02T15:04:05Z", "b": true, "nil": nil},
	}
	got := schema.Encode(in)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode =\n %#v\nwant\n %#v", got, want)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("Encode's result does not marshal: %v", err)
	}
	if in["at"].(time.Time).IsZero() || in["list"].([]any)[0] != jan1 {
		t.Errorf("Encode changed its input")
	}

	// What Encode writes, Decode reads back.
	typ := schema.ObjectOf(
		&schema.Field{Name: "at", Type: tTime},
		&schema.Field{Name: "after", Type: tDuration},
		&schema.Field{Name: "days", Type: tDuration},
	)
	v := map[string]any{"at": jan1, "after": 90 * time.Minute, "days": 72 * time.Hour}
	back, err := typ.Decode(schema.Encode(v), "", schema.Options{})
	if err != nil || !schema.Equal(back, v) {
		t.Errorf("Decode(Encode(v)) = %#v, %v; want %#v", back, err, v)
	}
}

func TestEqual(t *testing.T) {
	t.Parallel()
	cet := jan1.In(time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"same string", "a", "a", true},
		{"different strings", "a", "b", false},
		{"int and float of one value", 1, 1.0, true},
		{"float and int of one value", 1.0, 1, true},
		{"int64 and int", int64(2), 2, true},
		{"json.Number and float", json.Number("2.5"), 2.5, true},
		{"different numbers", 1, 2.0, false},
		{"number and string", 1, "1", false},
		{"string and number", "1", 1, false},
		{"times by instant", jan1, cet, true},
		{"different times", jan1, jan1.Add(time.Nanosecond), false},
		{"time and string", jan1, "2026-01-02T15:04:05Z", false},
		{"durations", time.Second, time.Second, true},
		{"duration and its nanoseconds", time.Second, int(time.Second), false},
		{"nanoseconds and a duration", int(time.Second), time.Second, false},
		{"bools", true, true, true},
		{"bool and number", true, 1, false},
		{"nils", nil, nil, true},
		{"nil and zero", nil, 0, false},
		{"nil and empty object", nil, map[string]any{}, false},
		{"lists by element", []any{1, "a", jan1}, []any{1.0, "a", cet}, true},
		{"lists of other lengths", []any{1}, []any{1, 2}, false},
		{"list and nil", []any{}, nil, false},
		{"list and string", []any{}, "x", false},
		{"empty lists", []any{}, []any{}, true},
		{"objects by field", map[string]any{"a": 1, "b": []any{2}}, map[string]any{"b": []any{2.0}, "a": 1.0}, true},
		{"objects with other keys", map[string]any{"a": nil}, map[string]any{"b": nil}, false},
		{"objects with another value", map[string]any{"a": 1}, map[string]any{"a": 2}, false},
		{"object and list", map[string]any{}, []any{}, false},
		{"nested objects", map[string]any{"c": map[string]any{"t": jan1}}, map[string]any{"c": map[string]any{"t": cet}}, true},
	}
	for _, tt := range tests {
		if got := schema.Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: Equal(%#v, %#v) = %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  *schema.Type
		want any
	}{
		{tString, ""},
		{tInt, 0},
		{tFloat, 0.0},
		{tBool, false},
		{tTime, time.Time{}},
		{tDuration, time.Duration(0)},
		{tAny, nil},
		{schema.ListOf(tInt), []any{}},
		{schema.ObjectOf(), map[string]any{}},
		{order(), map[string]any{"amount": 0.0, "currency": "EUR", "customer_id": "", "tags": []any{},
			"customer": map[string]any{"tier": "", "since": time.Time{}, "points": 10}}},
	}
	for _, tt := range tests {
		got := tt.typ.Zero()
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s.Zero() = %#v, want %#v", tt.typ, got, tt.want)
		}
	}

	// Each call returns fresh lists and objects, and defaults are not shared.
	def := []any{"x"}
	typ := schema.ObjectOf(&schema.Field{Name: "l", Type: schema.ListOf(tString), Default: def, HasDefault: true},
		&schema.Field{Name: "o", Type: schema.ObjectOf(&schema.Field{Name: "n", Type: tInt})})
	a, b := typ.Zero().(map[string]any), typ.Zero().(map[string]any)
	a["l"].([]any)[0] = "changed"
	a["o"].(map[string]any)["n"] = 5
	if def[0] != "x" || b["l"].([]any)[0] != "x" || b["o"].(map[string]any)["n"] != 0 {
		t.Errorf("Zero values share memory: default %v, other zero %v", def, b)
	}
}

func TestClone(t *testing.T) {
	t.Parallel()
	orig := map[string]any{
		"list": []any{map[string]any{"n": 1}, []any{"a"}},
		"obj":  map[string]any{"inner": map[string]any{"s": "x"}},
		"t":    jan1,
		"n":    1,
	}
	c := schema.Clone(orig).(map[string]any)
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("Clone = %#v, want %#v", c, orig)
	}
	c["n"] = 2
	c["list"].([]any)[0].(map[string]any)["n"] = 2
	c["list"].([]any)[1].([]any)[0] = "b"
	c["obj"].(map[string]any)["inner"].(map[string]any)["s"] = "y"
	c["obj"].(map[string]any)["new"] = true
	want := map[string]any{
		"list": []any{map[string]any{"n": 1}, []any{"a"}},
		"obj":  map[string]any{"inner": map[string]any{"s": "x"}},
		"t":    jan1,
		"n":    1,
	}
	if !reflect.DeepEqual(orig, want) {
		t.Errorf("changing the clone changed the original: %#v", orig)
	}
	for _, v := range []any{nil, "s", 1, jan1, time.Second} {
		if got := schema.Clone(v); got != v {
			t.Errorf("Clone(%#v) = %#v", v, got)
		}
	}
}

func TestTypeStringAndPath(t *testing.T) {
	t.Parallel()
	typ := order()
	if got, want := schema.ListOf(schema.ListOf(tInt)).String(), "[[int]]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if f := typ.Path([]string{"customer", "tier"}); f == nil || f.Name != "tier" || f.Type.Kind != schema.String {
		t.Errorf("Path(customer.tier) = %+v", f)
	}
	for _, p := range [][]string{{"customer", "tire"}, {"amount", "x"}, {"tags", "x"}, {"nope"}} {
		if f := typ.Path(p); f != nil {
			t.Errorf("Path(%v) = %+v, want nil", p, f)
		}
	}
	if f := (*schema.Type)(nil).Field("x"); f != nil {
		t.Errorf("nil type has field %+v", f)
	}
	for _, name := range []string{"any", "string", "int", "float", "bool", "time", "duration"} {
		k, ok := schema.ScalarKind(name)
		if !ok || k.String() != name {
			t.Errorf("ScalarKind(%q) = %v, %v", name, k, ok)
		}
	}
	for _, name := range []string{"list", "object", "integer", "", "String"} {
		if _, ok := schema.ScalarKind(name); ok {
			t.Errorf("ScalarKind(%q) is ok", name)
		}
	}
}
