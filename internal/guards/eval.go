package guards

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// Vars are the values of one evaluation.
type Vars struct {
	Ctx      map[string]any
	Event    map[string]any
	State    string
	Now      time.Time
	Instance Instance
	// Actor is who sends the event: {name, groups, kind} (machine.Actor); nil: the system.
	Actor map[string]any
	// Children are the counts of the instance's child groups (`children`), by group: each a
	// map {total, running, final, ids}. Nil when the definition has none.
	Children map[string]any
	// Item and Index are a child's element and position, when its context is computed (HasItem).
	Item    any
	Index   int
	HasItem bool
	// Budget is the time the expressions evaluated in the scope may take together (budget.go):
	// past it each fails with "time budget exceeded". DefaultBudget when 0.
	Budget time.Duration
}

// Instance is what expressions see of the instance as `instance`.
type Instance struct {
	ID        string
	Version   int
	CreatedAt time.Time
	EnteredAt time.Time
	Parent    string // the parent's id; "" when none
}

// Scope is the run-time environment of expressions. Build it once per event and share it between the
// expressions of that event: they all see the same `now` and the same context before the change, and
// what their builtins build and the time they take count against one meter (With keeps it for the
// expressions evaluated against other values: a timer's `at` against the state entered).
// Evaluations only read it (the meter counts atomically), so goroutines may share one.
type Scope map[string]any

// NewScope builds the environment of v.
func NewScope(v Vars) Scope {
	s := Scope{
		"ctx":   v.Ctx,
		"event": v.Event,
		"state": v.State,
		"now":   v.Now,
		"instance": map[string]any{
			"id":         v.Instance.ID,
			"version":    v.Instance.Version,
			"created_at": v.Instance.CreatedAt,
			"entered_at": v.Instance.EnteredAt,
			"parent":     v.Instance.Parent,
		},
	}
	s["actor"] = v.Actor
	if v.Actor == nil {
		s["actor"] = systemActor
	}
	if v.Children != nil {
		s["children"] = v.Children
	}
	if v.HasItem {
		s["item"], s["index"] = v.Item, v.Index
	}
	s.setMeter(newMeter(v.Budget))
	return s
}

// setMeter sets the scope's meter, and the tick of its time budget that predicates call (budget.go).
func (s Scope) setMeter(m *meter) {
	s[meterName], s[tickName] = m, m.tickOrPanic
}

// systemActor is `actor` when the caller gives none.
var systemActor = map[string]any{"name": "", "groups": []any{}, "kind": "system"}

// With builds the environment of v sharing s's meter, and so its budgets (v.Budget is not used).
func (s Scope) With(v Vars) Scope {
	n := NewScope(v)
	if m, ok := s[meterName].(*meter); ok {
		n.setMeter(m)
	}
	return n
}

// VMs are reused: a VM keeps its stack between runs, so evaluation allocates only what the
// expression itself builds.
var vms = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: MemoryBudget} }}

func (p *Program) run(s Scope) (any, error) {
	m, ok := s[meterName].(*meter)
	if !ok { // a scope not made by NewScope gets a meter of its own
		s = maps.Clone(s)
		m = newMeter(0)
		s.setMeter(m)
	}
	if err := m.spent(); err != nil { // an earlier expression of the event spent the budget
		return nil, fmt.Errorf("evaluating %q: %w", p.Source, err)
	}
	prog, err := p.program()
	if err != nil {
		return nil, err
	}
	machine := vms.Get().(*vm.VM)
	out, err := machine.Run(prog, map[string]any(s))
	vms.Put(machine)
	if err != nil {
		var fe *file.Error // its Error() draws the source with a caret over several lines
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("evaluating %q: %s", p.Source, fe.Message)
		}
		return nil, fmt.Errorf("evaluating %q: %w", p.Source, err)
	}
	return out, nil
}

// Bool evaluates a guard.
func (p *Program) Bool(s Scope) (bool, error) {
	out, err := p.run(s)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("evaluating %q: got %T, want bool", p.Source, out)
	}
	return b, nil
}

// Value evaluates the expression and converts its value to the type it was compiled for.
func (p *Program) Value(s Scope) (any, error) {
	out, err := p.run(s)
	if err != nil {
		return nil, err
	}
	if p.want == nil {
		return out, nil
	}
	if out == nil && p.want.Optional { // nil is a value of an optional field: it clears it
		return nil, nil
	}
	v, err := p.want.Decode(plain(out), "", schema.Options{})
	if err != nil {
		return nil, fmt.Errorf("evaluating %q: %w", p.Source, err)
	}
	return v, nil
}

// Time evaluates a timer deadline.
func (p *Program) Time(s Scope) (time.Time, error) {
	v, err := p.Value(s)
	if err != nil {
		return time.Time{}, err
	}
	return v.(time.Time), nil
}

// plain turns a typed slice that a builtin returns (split gives []string) into the []any of typed
// values, so that a value the type check accepted as a list is a list when it is converted.
func plain(v any) any {
	if _, ok := v.([]any); ok || v == nil {
		return v
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return v
	}
	l := make([]any, rv.Len())
	for i := range l {
		l[i] = plain(rv.Index(i).Interface())
	}
	return l
}
