package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxEnum is the most values an enumeration may have. Loading one checks each value once (a set of
// them finds duplicates); Decode looks a value up among them, a scan that stays in microseconds at
// this bound.
const MaxEnum = 10_000

// enumShown is how many values of an enumeration a message or String names: a message stays short
// whatever the enumeration's length.
const enumShown = 10

// InEnum reports whether v, a typed value of t's kind, is one of t's values (true when t has no
// enumeration).
func (t *Type) InEnum(v any) bool {
	if len(t.Enum) == 0 {
		return true
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
