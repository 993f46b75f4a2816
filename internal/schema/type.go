// Package schema is the type system of definition contexts and event payloads: the types a definition
// declares (string, int, float, bool, time, duration, lists, objects, any), their zero values, and the
// conversion of loosely typed input (JSON or YAML values) into the typed Go values expressions see.
//
// Typed values are: string, int, float64, bool, time.Time, time.Duration, []any for lists and
// map[string]any for objects, in which every declared field is present; nil is the value of an
// optional type without one (and an `any` value of JSON null). An enumeration's values are strings
// or ints.
package schema

import (
	"strings"
	"time"
)

// Kind is the kind of a type.
type Kind uint8

// The kinds of the definition format.
const (
	Any Kind = iota
	String
	Int
	Float
	Bool
	Time
	Duration
	List
	Object
)

var kindNames = [...]string{Any: "any", String: "string", Int: "int", Float: "float", Bool: "bool",
	Time: "time", Duration: "duration", List: "list", Object: "object"}

func (k Kind) String() string { return kindNames[k] }

// ScalarKind returns the kind named by a scalar type name of the format, or false.
func ScalarKind(name string) (Kind, bool) {
	switch name {
	case "any":
		return Any, true
	case "string":
		return String, true
	case "int":
		return Int, true
	case "float":
		return Float, true
	case "bool":
		return Bool, true
	case "time":
		return Time, true
	case "duration":
		return Duration, true
	}
	return 0, false
}

// Type is a declared type. Elem is set for lists, Fields for objects.
type Type struct {
	Kind   Kind
	Elem   *Type
	Fields []*Field
	// Optional makes nil (JSON null) a value of the type, and its zero (`T?`, `optional: true`).
	Optional bool
	// Enum, when set, is every value the type admits, in the order declared: typed values (string
	// or int), for kinds String and Int only.
	Enum []any
	// enumSet holds Enum's values when SetEnum made it (a long enumeration): InEnum looks them up
	// there. Read-only once set: a Type is shared by the goroutines that decode with it.
	enumSet map[any]struct{}
}

// Field is one named field of an object.
type Field struct {
	Name        string
	Type        *Type
	Default     any // typed; nil when HasDefault is false
	HasDefault  bool
	Required    bool
	Description string
}

// Scalar returns a type of a scalar kind.
func Scalar(k Kind) *Type { return &Type{Kind: k} }

// ListOf returns the type of a list of elem.
func ListOf(elem *Type) *Type { return &Type{Kind: List, Elem: elem} }

// ObjectOf returns an object type with the given fields, in order.
func ObjectOf(fields ...*Field) *Type { return &Type{Kind: Object, Fields: fields} }

// Field returns the field of an object type by name, or nil.
func (t *Type) Field(name string) *Field {
	if t == nil || t.Kind != Object {
		return nil
	}
	for _, f := range t.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Path resolves a dotted path of nested object fields ("customer.tier") to its field, or nil.
func (t *Type) Path(path []string) *Field {
	var f *Field
	for _, name := range path {
		f = t.Field(name)
		if f == nil {
			return nil
		}
		t = f.Type
	}
	return f
}

// String is the type as the format writes it, for people: `time?` for an optional time, and an
// enumeration's values after its kind (`string enum ["bronze", "silver"]`, at most enumShown of them).
// Two types that print alike may still differ in a long enumeration: compare types with Identical.
func (t *Type) String() string {
	s := t.base()
	if t.Optional {
		s += "?"
	}
	if len(t.Enum) > 0 {
		s += " enum " + enumList(t.Enum)
	}
	return s
}

// base is the type written without its own `?` and enumeration (a list's element keeps its own).
func (t *Type) base() string {
	switch t.Kind {
	case List:
		return "[" + t.Elem.String() + "]"
	case Object:
		var b strings.Builder
		b.WriteString("{")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.Name + ": " + f.Type.String())
		}
		b.WriteString("}")
		return b.String()
	}
	return t.Kind.String()
}

// Zero returns the zero value of the type: nil for an optional type, the first value of an
// enumeration (its kind's zero may not be one of its values), the default of every field of an
// object, or its kind's zero.
func (t *Type) Zero() any {
	if t.Optional {
		return nil
	}
	if len(t.Enum) > 0 {
		return t.Enum[0]
	}
	switch t.Kind {
	case String:
		return ""
	case Int:
		return 0
	case Float:
		return 0.0
	case Bool:
		return false
	case Time:
		return time.Time{}
	case Duration:
		return time.Duration(0)
	case List:
		return []any{}
	case Object:
		m := make(map[string]any, len(t.Fields))
		for _, f := range t.Fields {
			m[f.Name] = f.initial()
		}
		return m
	}
	return nil
}

func (f *Field) initial() any {
	if f.HasDefault {
		return Clone(f.Default)
	}
	return f.Type.Zero()
}

// Clone copies lists and objects deeply, so that a typed value can be changed without aliasing.
func Clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = Clone(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = Clone(x)
		}
		return l
	}
	return v
}
