package guards

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/types"

	"github.com/fsmd-io/fsmd/internal/schema"
)

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	instanceType = types.Map{
		"id":         types.String,
		"version":    types.Int,
		"created_at": types.TypeOf(time.Time{}),
		"entered_at": types.TypeOf(time.Time{}),
		"parent":     types.String,
	}
	actorType = types.Map{
		"name":   types.String,
		"groups": types.Array(types.String),
		"kind":   types.String,
	}
)

// envType is the type of the environment expressions are checked against.
func envType(env Env) types.Map {
	ctx := env.Context
	if ctx == nil {
		ctx = emptyObject
	}
	m := types.Map{
		"ctx":      exprType(ctx),
		"state":    types.String,
		"now":      types.TypeOf(time.Time{}),
		"instance": instanceType,
		"actor":    actorType,
		meterName:  types.TypeOf(&meter{}),
		tickName:   types.TypeOf(func() bool { return true }),
	}
	if env.Children != nil {
		m["children"] = exprType(env.Children)
	}
	if env.Item != nil {
		m["item"], m["index"] = exprType(env.Item), types.Int
	}
	if !env.NoEvent {
		ev := env.Event
		if ev == nil {
			ev = emptyObject
		}
		m["event"] = exprType(ev)
	}
	return m
}

// exprType is the expr type of a schema type: objects are strict maps, so an unknown field is an error.
func exprType(t *schema.Type) types.Type {
	switch t.Kind {
	case schema.String:
		return types.String
	case schema.Int:
		return types.Int
	case schema.Float:
		return types.Float64
	case schema.Bool:
		return types.Bool
	case schema.Time:
		return types.TypeOf(time.Time{})
	case schema.Duration:
		return types.TypeOf(time.Duration(0))
	case schema.List:
		return types.Array(exprType(t.Elem))
	case schema.Object:
		m := make(types.Map, len(t.Fields))
		for _, f := range t.Fields {
			m[f.Name] = exprType(f.Type)
		}
		return m
	}
	return types.Any
}

// fits reports whether a value of the static type got can be stored in a field of type want: lists
// element by element where expr knows the element type, objects field by field where it knows the
// fields. What expr does not know (interface) is accepted here and checked at evaluation.
func fits(got *nature.Nature, want *schema.Type) error {
	t := got.Type
	if t == nil || t.Kind() == reflect.Interface || want.Kind == schema.Any {
		return nil
	}
	ok := false
	switch want.Kind {
	case schema.String:
		ok = t.Kind() == reflect.String
	case schema.Int:
		ok = isInt(t)
	case schema.Float:
		ok = isInt(t) || t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32
	case schema.Bool:
		ok = t.Kind() == reflect.Bool
	case schema.Time:
		ok = t == timeType
	case schema.Duration:
		ok = t == durationType
	case schema.List:
		ok = t.Kind() == reflect.Slice || t.Kind() == reflect.Array
		if ok && got.Ref != nil {
			if err := fits(got.Ref, want.Elem); err != nil {
				return fmt.Errorf("list element: %w", err)
			}
		}
	case schema.Object:
		ok = t.Kind() == reflect.Map
		if ok && got.TypeData != nil && got.Strict && got.Fields != nil {
			return fitsObject(got, want)
		}
	}
	if !ok {
		return fmt.Errorf("expression is of type %s, want %s", typeName(t), want)
	}
	return nil
}

func fitsObject(got *nature.Nature, want *schema.Type) error {
	for _, name := range slices.Sorted(maps.Keys(got.Fields)) {
		n := got.Fields[name]
		f := want.Field(name)
		if f == nil {
			return fmt.Errorf("field %s: not in %s", name, want)
		}
		if err := fits(&n, f.Type); err != nil {
			return fmt.Errorf("field %s: %w", name, err)
		}
	}
	return nil
}

func isInt(t reflect.Type) bool {
	return t != durationType && t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64
}

func typeName(t reflect.Type) string {
	switch {
	case t == timeType:
		return "time"
	case t == durationType:
		return "duration"
	case isInt(t):
		return "int"
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		return "float"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "list"
	case t.Kind() == reflect.Map:
		return "object"
	}
	return t.String()
}
