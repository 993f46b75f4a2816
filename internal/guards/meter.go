package guards

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"
)

// Why a meter: expr's VM budget counts the elements that ranges, map, filter and the like build, but
// not the bytes of strings, nor what builtins such as join, toJSON or concat build. A chain of lets
// doubling a string, or toJSON of a list that repeats a long string, would exhaust the process's
// memory. So every builtin that copies or builds a string or a list is replaced by a wrapper that
// charges what it builds to a meter shared by the expressions of one event, and refuses, before
// building it, what would go over MaxBuildBytes. `+` on strings is charged the same way.

const (
	meterName = "__meter" // the hidden variable holding the event's meter
	addName   = "__add"   // the metered `+`
)

// meter counts the bytes built for the expressions of one event, and the time they take (clock,
// budget.go).
type meter struct {
	used atomic.Int64
	clock
}

// newMeter makes a meter with a time budget: DefaultBudget when budget is 0 or less.
func newMeter(budget time.Duration) *meter {
	if budget <= 0 {
		budget = DefaultBudget
	}
	return &meter{clock: clock{budget: budget}}
}

var meterType = reflect.TypeOf(&meter{})

func (m *meter) over() error {
	return fmt.Errorf("memory budget exceeded: the expressions of one event may build at most %d bytes", MaxBuildBytes)
}

// ensure refuses to build n more bytes beyond the budget.
func (m *meter) ensure(n int) error {
	if n < 0 || int64(n) > MaxBuildBytes-m.used.Load() {
		return m.over()
	}
	return nil
}

// charge counts what a builtin built.
func (m *meter) charge(v any) error {
	return m.add(sizeOf(v, int(MaxBuildBytes-m.used.Load()+1)))
}

func (m *meter) add(n int) error {
	if m.used.Add(int64(n)) > MaxBuildBytes {
		return m.over()
	}
	return nil
}

// sizeOf estimates the bytes of a value, as built or as written out by toJSON (indentation grows with
// depth). It stops counting past limit, so a list that refers to itself many times over costs no more
// than the limit to measure.
func sizeOf(v any, limit int) int {
	n := 0
	var visit func(v any, depth int) bool
	visit = func(v any, depth int) bool {
		n += 16 + 2*depth
		if n > limit {
			return false
		}
		switch x := v.(type) {
		case nil, bool, int, float64, int64:
		case string:
			n += len(x)
		case []any:
			for _, e := range x {
				if !visit(e, depth+1) {
					return false
				}
			}
		case map[string]any:
			for k, e := range x {
				n += len(k)
				if !visit(e, depth+1) {
					return false
				}
			}
		default:
			rv := reflect.ValueOf(v)
			switch rv.Kind() {
			case reflect.Slice, reflect.Array:
				for i := range rv.Len() {
					if !visit(rv.Index(i).Interface(), depth+1) {
						return false
					}
				}
			case reflect.Map:
				for it := rv.MapRange(); it.Next(); {
					if !visit(it.Key().Interface(), depth+1) || !visit(it.Value().Interface(), depth+1) {
						return false
					}
				}
			}
		}
		return n <= limit
	}
	visit(v, 0)
	return n
}

// estimates say, before a builtin runs, how much it will build where that can be much more than its
// arguments hold (repeat, join, replace, ...). Other metered builtins build at most about what their
// arguments hold; they are charged afterwards.
var estimates = map[string]func(args []any) int{
	"repeat": func(a []any) int {
		s, _ := a[0].(string)
		n, _ := a[1].(int)
		if n > 0 && len(s) > MaxBuildBytes/n {
			return MaxBuildBytes + 1
		}
		return len(s) * n
	},
	"join": func(a []any) int {
		sep := ""
		if len(a) > 1 {
			sep, _ = a[1].(string)
		}
		return sizeOf(a[0], MaxBuildBytes+1) + lenOf(a[0])*len(sep)
	},
	"replace": func(a []any) int {
		s, _ := a[0].(string)
		old, _ := a[1].(string)
		repl, _ := a[2].(string)
		return len(s) + (strings.Count(s, old)+1)*len(repl)
	},
	"string":   func(a []any) int { return sizeOf(a[0], MaxBuildBytes+1) },
	"toJSON":   func(a []any) int { return sizeOf(a[0], MaxBuildBytes+1) },
	"toBase64": func(a []any) int { s, _ := a[0].(string); return base64.StdEncoding.EncodedLen(len(s)) },
	"concat": func(a []any) int {
		n := 0
		for _, l := range a {
			n += 16 * lenOf(l)
		}
		return n
	},
	"flatten": func(a []any) int { return sizeOf(a[0], MaxBuildBytes+1) },
}

func lenOf(v any) int {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		return rv.Len()
	}
	return 0
}

// metered names the builtins replaced by metered wrappers: those that copy or build strings and lists.
var metered = map[string]bool{}

// meteredFunctions are the wrappers, registered as functions of every configuration.
var meteredFunctions = map[string]*builtin.Function{}

func init() {
	for _, name := range []string{"repeat", "join", "replace", "string", "toJSON", "toBase64", "concat",
		"flatten", "upper", "lower", "split", "splitAfter", "sort", "reverse", "uniq", "take", "keys",
		"values", "toPairs", "fromPairs", "fromJSON", "fromBase64"} {
		metered[name] = true
		meteredFunctions[name] = wrap(builtin.Builtins[builtin.Index[name]])
	}
}

// wrap makes the metered version of a builtin: the same types with the meter as first argument.
func wrap(orig *builtin.Function) *builtin.Function {
	f := &builtin.Function{Name: orig.Name}
	if orig.Validate != nil {
		f.Validate = func(args []reflect.Type) (reflect.Type, error) {
			if len(args) == 0 || args[0] != meterType {
				return nil, fmt.Errorf("%s: internal error: no meter", orig.Name)
			}
			return orig.Validate(args[1:])
		}
	}
	for _, t := range orig.Types {
		in := []reflect.Type{meterType}
		for i := range t.NumIn() {
			in = append(in, t.In(i))
		}
		out := make([]reflect.Type, t.NumOut())
		for i := range out {
			out[i] = t.Out(i)
		}
		f.Types = append(f.Types, reflect.FuncOf(in, out, t.IsVariadic()))
	}
	estimate := estimates[orig.Name]
	f.Func = func(args ...any) (any, error) {
		m := args[0].(*meter)
		args = args[1:]
		if err := m.spent(); err != nil { // a sort of a long list need not start past the budget
			return nil, err
		}
		if estimate != nil {
			if err := m.ensure(estimate(args)); err != nil {
				return nil, err
			}
		}
		out, err := call(orig, args)
		if err != nil {
			return nil, err
		}
		if err := m.charge(out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return f
}

func call(f *builtin.Function, args []any) (any, error) {
	switch {
	case f.Fast != nil && len(args) == 1:
		return f.Fast(args[0]), nil
	case f.Safe != nil:
		out, _, err := f.Safe(args...)
		return out, err
	case f.Func != nil:
		return f.Func(args...)
	}
	return nil, fmt.Errorf("%s: cannot be called with %d arguments", f.Name, len(args))
}

// addFunction is `+` where an operand may be a string: strings are joined within the meter, anything
// else is added as expr adds it.
var addFunction = &builtin.Function{
	Name: addName,
	Validate: func(args []reflect.Type) (reflect.Type, error) {
		if len(args) != 3 || args[0] != meterType {
			return nil, fmt.Errorf("internal error: %s takes the meter and two operands", addName)
		}
		if args[1].Kind() == reflect.String && args[2].Kind() == reflect.String {
			return args[1], nil
		}
		return reflect.TypeOf((*any)(nil)).Elem(), nil
	},
	Func: func(args ...any) (any, error) {
		m := args[0].(*meter)
		a, aok := args[1].(string)
		b, bok := args[2].(string)
		if !aok || !bok {
			return runtime.Add(args[1], args[2]), nil
		}
		if err := m.ensure(len(a) + len(b)); err != nil {
			return nil, err
		}
		if err := m.add(len(a) + len(b)); err != nil {
			return nil, err
		}
		return a + b, nil
	},
}
