package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxEnum is the most values an enumeration may have. Loading one checks each value once (a set of
// them finds duplicates); SetEnum keeps them in a set too, which InEnum looks a value up in.
const MaxEnum = 10_000

// enumShown is how many values of an enumeration a message or String names: a message stays short
// whatever the enumeration's length.
const enumShown = 10

// enumScanned is the most values InEnum compares one by one: a longer enumeration (SetEnum) is
// looked up in its set, so that a lookup in 10,000 values is not 10,000 comparisons.
const enumScanned = 16

// SetEnum makes values, typed values of t's kind, distinct, t's enumeration.
func (t *Type) SetEnum(values []any) {
	t.Enum, t.enumSet = values, nil
	if len(values) > enumScanned {
		t.enumSet = make(map[any]struct{}, len(values))
		for _, v := range values {
			t.enumSet[v] = struct{}{}
		}
	}
}

// InEnum reports whether v, a typed value, is one of t's values (true when t has no enumeration).
func (t *Type) InEnum(v any) bool {
	if len(t.Enum) == 0 {
		return true
	}
	if t.enumSet != nil {
		switch v.(type) {
		case string, int, int64, float64, bool: // comparable: a map key (the values are strings or ints)
			_, ok := t.enumSet[v]
			return ok
		}
	}
	for _, e := range t.Enum {
		if e == v {
			return true
		}
	}
	return false
}

// enumList writes values as `["a", "b"]` or `[1, 2]`, the first enumShown of them and then how many
// there are.
func enumList(values []any) string {
	var b strings.Builder
	b.WriteString("[")
	for i, v := range values {
		if i == enumShown {
			fmt.Fprintf(&b, ", ... (%d values)", len(values))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(enumValue(v))
	}
	b.WriteString("]")
	return b.String()
}

// enumValue writes a value of an enumeration: a string quoted (and cut when long), an int plainly.
func enumValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(truncate(s))
	}
	return fmt.Sprint(v)
}

// Identical reports whether a and b are the same type: kinds, optionality, every value of an
// enumeration in order, list elements and object fields (names, order and types; defaults,
// `required` and descriptions aside). String is not enough: it names only the first values of an
// enumeration.
func Identical(a, b *Type) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || a.Optional != b.Optional || !slices.Equal(a.Enum, b.Enum) {
		return false
	}
	switch a.Kind {
	case List:
		return Identical(a.Elem, b.Elem)
	case Object:
		if len(a.Fields) != len(b.Fields) {
			return false
		}
		for i, f := range a.Fields {
			if g := b.Fields[i]; g.Name != f.Name || !Identical(f.Type, g.Type) {
				return false
			}
		}
	}
	return true
}
