package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DecodeError says which value, by its path, does not fit its type.
type DecodeError struct {
	Path    string // dotted, e.g. "customer.tier" or "tags[2]"; empty for the value itself
	Message string
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Options control Decode.
type Options struct {
	// Required makes a missing field with required: true an error (creating an instance).
	Required bool
}

// Decode converts a loosely typed value (from encoding/json, YAML, or already typed) into the typed
// value of t. Objects get every declared field: missing ones take their default or zero. Unknown fields
// are errors. prefix names the value in errors ("" for none).
//
// nil (JSON null) is a value of an optional type and of `any` only; a value of an enumeration must be
// one of its values. A `set`, a payload, a created context, a migrated one and a stored one are all
// decoded here, so that each refuses alike what the type does not admit.
func (t *Type) Decode(v any, prefix string, o Options) (any, error) {
	if v == nil && t.Kind != Any {
		if t.Optional {
			return nil, nil
		}
		return nil, &DecodeError{prefix, fmt.Sprintf("expected %s, got null (only an optional type, %s?, takes null)", t.base(), t.base())}
	}
	out, err := t.decode(v, prefix, o)
	if err == nil && len(t.Enum) > 0 && !t.InEnum(out) {
		return nil, &DecodeError{prefix, fmt.Sprintf("expected one of %s, got %s", enumList(t.Enum), enumValue(out))}
	}
	return out, err
}

func (t *Type) decode(v any, prefix string, o Options) (any, error) {
	switch t.Kind {
	case Any:
		return anyValue(v, prefix)
	case String:
		if s, ok := v.(string); ok {
			if strings.IndexByte(s, 0) >= 0 { // PostgreSQL cannot store it; refuse it everywhere alike
				return nil, &DecodeError{prefix, "text holds a NUL character"}
			}
			return s, nil
		}
	case Int:
		n, why, isNum := toInt(v)
		if isNum && why == "" {
			return n, nil
		}
		if isNum {
			return nil, &DecodeError{prefix, fmt.Sprintf("expected int, got %s (%s)", describe(v), why)}
		}
	case Float:
		if n, ok := v.(json.Number); ok {
			if _, err := strconv.ParseFloat(string(n), 64); errors.Is(err, strconv.ErrRange) {
				return nil, &DecodeError{prefix, fmt.Sprintf("expected float, got %s (%s)", truncate(string(n)), beyondFloat)}
			}
		}
		if f, ok := toFloat(v); ok {
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, &DecodeError{prefix, fmt.Sprintf("expected a finite float, got %v", f)}
			}
			return f, nil
		}
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Time:
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case string:
			tm, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, &DecodeError{prefix, fmt.Sprintf("expected time (RFC 3339, e.g. 2026-01-02T15:04:05Z), got %q", x)}
			}
			return tm, nil
		}
	case Duration:
		switch x := v.(type) {
		case time.Duration:
			return x, nil
		case string:
			d, err := ParseDuration(x)
			if err != nil {
				return nil, &DecodeError{prefix, fmt.Sprintf("expected duration (e.g. 90m, 72h, 3d), got %q", x)}
			}
			return d, nil
		}
	case List:
		if l, ok := v.([]any); ok {
			out := make([]any, len(l))
			for i, x := range l {
				d, err := t.Elem.Decode(x, fmt.Sprintf("%s[%d]", prefix, i), o)
				if err != nil {
					return nil, err
				}
				out[i] = d
			}
			return out, nil
		}
	case Object:
		if m, ok := v.(map[string]any); ok {
			return t.decodeObject(m, prefix, o)
		}
	}
	return nil, &DecodeError{prefix, fmt.Sprintf("expected %s, got %s", t, describe(v))}
}

// beyondFloat is why a number is no float: PostgreSQL's numeric cannot hold 1e999999999.
const beyondFloat = "beyond the range of a float, about ±1.8e308"

// anyValue copies a value of an `any` field, refusing what the databases cannot store alike: a NUL
// character in a text or a key (PostgreSQL cannot store one), a number beyond the range of a float
// (PostgreSQL's numeric cannot hold 1e999999999, SQLite keeps its text), NaN and the infinities (JSON
// has none; a `set` can make them). Every number takes the form the API reads back from either
// database: an integer in int64's range stays exact, any other number is the float64 nearest it, so
// that 1e-20000 or a number of 20,000 digits (PostgreSQL's numeric would refuse either) is stored as
// it will be read.
func anyValue(v any, prefix string) (any, error) {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return nil, &DecodeError{prefix, "text holds a NUL character"}
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(n, 10)), nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		switch {
		case errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0):
			return nil, &DecodeError{prefix, fmt.Sprintf("the number %s is %s", truncate(string(x)), beyondFloat)}
		case err != nil:
			return nil, &DecodeError{prefix, fmt.Sprintf("%q is not a number", truncate(string(x)))}
		}
		return f, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, &DecodeError{prefix, fmt.Sprintf("expected a finite number, got %v", x)}
		}
	case float32:
		return anyValue(float64(x), prefix)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return nil, &DecodeError{prefix, "a key holds a NUL character"}
			}
			c, err := anyValue(e, join(prefix, k))
			if err != nil {
				return nil, err
			}
			m[k] = c
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			c, err := anyValue(e, fmt.Sprintf("%s[%d]", prefix, i))
			if err != nil {
				return nil, err
			}
			l[i] = c
		}
		return l, nil
	}
	return v, nil
}

func (t *Type) decodeObject(m map[string]any, prefix string, o Options) (map[string]any, error) {
	var unknown []string
	for k := range m {
		if t.Field(k) == nil {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, &DecodeError{join(prefix, unknown[0]), "unknown field"}
	}
	out := make(map[string]any, len(t.Fields))
	for _, f := range t.Fields {
		x, ok := m[f.Name]
		if !ok {
			if o.Required && f.Required {
				return nil, &DecodeError{join(prefix, f.Name), "required field is missing"}
			}
			if !o.Required || f.HasDefault || f.Type.Kind != Object {
				out[f.Name] = f.initial()
				continue
			}
			x = map[string]any{} // a missing object still needs its own required fields
		}
		d, err := f.Type.Decode(x, join(prefix, f.Name), o)
		if err != nil {
			return nil, err
		}
		out[f.Name] = d
	}
	return out, nil
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Why a number is not an int.
const (
	notWhole    = "a number with a fraction"
	beyondInt64 = "beyond the range of an int, -9223372036854775808 to 9223372036854775807"
)

// toInt converts a number to an int exactly: why says what keeps a number from being one (a
// fraction, a magnitude beyond int64); isNum is false for what is not a number at all.
func toInt(v any) (n int, why string, isNum bool) {
	switch x := v.(type) {
	case int:
		return x, "", true
	case int64:
		return int(x), "", true
	case int32:
		return int(x), "", true
	case uint64:
		if x <= math.MaxInt64 {
			return int(x), "", true
		}
		return 0, beyondInt64, true
	case float64:
		switch {
		case x != math.Trunc(x): // a fraction, or NaN
			return 0, notWhole, true
		case math.Abs(x) >= 1<<53: // beyond int64, or a float that may not be the integer meant
			return 0, beyondInt64, true
		}
		return int(x), "", true
	case json.Number:
		return jsonInt(string(x))
	}
	return 0, "", false
}

// jsonInt reads the text of a JSON number as an int, exactly: a whole number in the range of int64,
// whatever its form (3, 3.0, 0.3e1 and 300e-2 alike), and nothing else (1.0000000000000000000001 is
// no int, nor is 5e-400, though a float64 would round either to one). It never computes a power of
// ten, so that a long text or a large exponent costs no more than reading it.
func jsonInt(s string) (n int, why string, isNum bool) {
	digits, rest := strings.TrimPrefix(s, "-"), ""
	if i := strings.IndexAny(digits, "eE"); i >= 0 {
		digits, rest = digits[:i], digits[i+1:]
	}
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" || !decimal(whole) || !decimal(frac) || (rest != "" && !decimal(strings.TrimLeft(rest, "+-"))) {
		return 0, "", false
	}
	// The value is 0.d1d2d3... × 10^point, with d1 the first digit that is not 0.
	all := whole + frac
	digits = strings.TrimLeft(all, "0")
	point := len(whole) - (len(all) - len(digits))
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return 0, "", true // zero, whatever its exponent
	}
	if rest != "" {
		exp, err := strconv.Atoi(rest)
		switch {
		case err != nil || exp > 1<<30:
			if strings.HasPrefix(rest, "-") {
				return 0, notWhole, true
			}
			return 0, beyondInt64, true
		case exp < -(1 << 30):
			return 0, notWhole, true
		}
		point += exp
	}
	switch {
	case point < len(digits):
		return 0, notWhole, true
	case point > 19: // int64 has 19 digits
		return 0, beyondInt64, true
	}
	text := digits + strings.Repeat("0", point-len(digits))
	if strings.HasPrefix(s, "-") {
		text = "-" + text
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, beyondInt64, true
	}
	return int(i), "", true
}

// decimal reports whether s is decimal digits only ("" is).
func decimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f, true
		}
	}
	return 0, false
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", truncate(x))
	case bool:
		return "bool"
	case int, int64, int32, uint64, float64, float32, json.Number:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	case time.Time:
		return "time"
	case time.Duration:
		return "duration"
	}
	return fmt.Sprintf("%T", v)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ParseDuration parses Go duration syntax ("90m", "1h30m") extended with days ("3d", "1d12h"), as
// definitions write them. A day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	if !strings.Contains(s, "d") {
		return time.ParseDuration(s)
	}
	rest, neg := s, false
	if strings.HasPrefix(rest, "-") {
		rest, neg = rest[1:], true
	} else {
		rest = strings.TrimPrefix(rest, "+")
	}
	i := strings.IndexByte(rest, 'd')
	// The days are decimal digits with an optional fraction, as Go writes the other units: ParseFloat
	// alone would also take "NaN", "-1", "1e9" and hexadecimal.
	if i == 0 || strings.Trim(rest[:i], "0123456789.") != "" {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	days, err := strconv.ParseFloat(rest[:i], 64)
	if err != nil || days > 1e5 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	d := time.Duration(days * float64(24*time.Hour))
	if tail := rest[i+1:]; tail != "" {
		t, err := time.ParseDuration(tail)
		if err != nil || strings.HasPrefix(tail, "-") || strings.HasPrefix(tail, "+") || d+t < d {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d += t
	}
	if neg {
		d = -d
	}
	return d, nil
}

// Encode converts a typed value into its JSON form: times as RFC 3339, durations in Go syntax.
func Encode(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Encode(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = Encode(e)
		}
		return l
	}
	return v
}
