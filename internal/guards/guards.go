// Package guards compiles and evaluates the expressions of a definition: transition guards, `set`
// values and timer `at` deadlines. They are written in the expr language and compiled once, when the
// definition is loaded, against a typed environment built from the definition's schemas, so that an
// unknown field or a wrong type is a load error and never a request-time surprise.
//
// The environment (definitions.md, "Expressions"):
//
//	ctx       the instance's context, typed by the `context` schema
//	event     the payload of the handled event, typed by its `events` schema
//	state     the current state (string)
//	now       the time of the event (expr's wall-clock now() is disabled: expressions are deterministic)
//	instance  {id, version, created_at, entered_at}
//
// Evaluation is bounded: the source length and the number of AST nodes at compile time, the VM's memory
// budget at run time. expr has no loops, so a bounded program cannot hang.
package guards

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// Limits on expressions. They are far above what a readable business rule needs.
const (
	MaxSourceBytes = 8 << 10 // bytes of one expression's source
	MaxNodes       = 2000    // AST nodes of one expression
	MemoryBudget   = 1 << 20 // expr VM memory units (roughly elements allocated) per evaluation
)

// Env describes what an expression may refer to.
type Env struct {
	Context *schema.Type // the object type of ctx; nil means an empty context
	Event   *schema.Type // the payload type of the handled event; nil means it takes no payload
	// NoEvent makes `event` unknown altogether: timer deadlines are computed on entering a state,
	// which many events may do, so they cannot depend on one event's payload.
	NoEvent bool
}

// Error is a compile error, positioned within the expression's source (line from 1, column from 0).
type Error struct {
	Line, Column int
	Message      string
}

func (e *Error) Error() string { return e.Message }

// Program is a compiled expression.
type Program struct {
	Source string
	want   *schema.Type // the type the value is converted to; nil for a guard
	prog   *vm.Program
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	emptyObject  = schema.ObjectOf()
	boolType     = schema.Scalar(schema.Bool)
	timeSchema   = schema.Scalar(schema.Time)
	instanceType = types.Map{
		"id":         types.String,
		"version":    types.Int,
		"created_at": types.TypeOf(time.Time{}),
		"entered_at": types.TypeOf(time.Time{}),
	}
)

// CompileGuard compiles an expression that must be bool.
func CompileGuard(src string, env Env) (*Program, error) { return compile(src, env, boolType) }

// CompileTime compiles an expression that must be a time (a timer's `at`).
func CompileTime(src string, env Env) (*Program, error) { return compile(src, env, timeSchema) }

// CompileValue compiles an expression whose value must fit the type want (a `set` target).
// Where expr cannot know the result type statically (an `any` field, a list built by concat), the
// value is checked when it is computed.
func CompileValue(src string, env Env, want *schema.Type) (*Program, error) {
	return compile(src, env, want)
}

func compile(src string, env Env, want *schema.Type) (*Program, error) {
	if err := tooLong(src); err != nil {
		return nil, err
	}
	c := configs.get(configKey{Env: env, asBool: want == boolType})
	defer configs.put(c)
	key := programKey{src, want}
	if r, ok := c.programs[key]; ok {
		return r.prog, r.err
	}
	p, err := compileIn(c.config, src, want)
	if len(c.programs) < maxPrograms {
		c.programs[key] = result{p, err}
	}
	return p, err
}

func compileIn(config *conf.Config, src string, want *schema.Type) (*Program, error) {
	prog, err := compileWith(src, config)
	if err != nil {
		return nil, compileError(src, err)
	}
	if err := fits(prog.Node().Type(), want); err != nil {
		return nil, &Error{Line: 1, Message: err.Error()}
	}
	p := &Program{Source: src, prog: prog}
	if want != boolType {
		p.want = want
	}
	return p, nil
}

// compileWith is expr.Compile with a configuration made once per environment (see configCache):
// building expr's configuration (its table of builtins, the types of the environment) costs more
// than compiling a short expression, and a definition compiles many against the same few.
func compileWith(src string, config *conf.Config) (*vm.Program, error) {
	tree, err := checker.ParseCheck(src, config)
	if err != nil {
		return nil, err
	}
	if config.Optimize {
		if err := optimizer.Optimize(&tree.Node, config); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, config)
}

// newConfig makes the expr configuration of an environment, as expr.Compile would from these options.
func newConfig(key configKey) *conf.Config {
	opts := []expr.Option{
		expr.Env(envType(key.Env)),
		expr.DisableBuiltin("now"),
		expr.Timezone("UTC"),
		expr.MaxNodes(MaxNodes),
	}
	if key.asBool {
		opts = append(opts, expr.AsBool())
	}
	c := conf.CreateNew()
	for _, op := range opts {
		op(c)
	}
	for name := range c.Disabled {
		delete(c.Builtins, name)
	}
	c.Check()
	return c
}

// configKey identifies an environment by the schema types it is built from, which are not changed
// once a definition's parser has built them. The cache keeps them referenced, so an address is not
// reused for another type while its entry lives.
type configKey struct {
	Env
	asBool bool
}

// programKey identifies a compiled expression within its environment.
type programKey struct {
	src  string
	want *schema.Type
}

// compiled is what compiling against one environment prepares and finds: the expr configuration,
// and the results of the expressions compiled so far (a definition often repeats an expression: a
// counter, a timestamp; and an alias repeats one as often as it is used).
type compiled struct {
	key      configKey
	config   *conf.Config
	programs map[programKey]result
}

type result struct {
	prog *Program
	err  error
}

// configCache keeps what was compiled against the few environments used most recently, so that a
// definition's expressions share it. An entry is not safe for concurrent use (expr caches types in
// its configuration while checking), so get takes it out of the cache and put returns it.
type configCache struct {
	mu      sync.Mutex
	entries []*compiled // most recently used first
}

// Bounds of the cache: a definition compiles against its context with each event's payload.
const (
	maxConfigs  = 16
	maxPrograms = 1024 // per environment
)

var configs configCache

func (c *configCache) get(key configKey) *compiled {
	c.mu.Lock()
	for i, e := range c.entries {
		if e.key == key {
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			c.mu.Unlock()
			return e
		}
	}
	c.mu.Unlock()
	return &compiled{key: key, config: newConfig(key), programs: map[programKey]result{}}
}

func (c *configCache) put(e *compiled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.entries {
		if x.key == e.key {
			return // another goroutine compiled against the same environment meanwhile
		}
	}
	if len(c.entries) == maxConfigs {
		c.entries[len(c.entries)-1] = nil
		c.entries = c.entries[:len(c.entries)-1]
	}
	c.entries = append(c.entries, nil)
	copy(c.entries[1:], c.entries)
	c.entries[0] = e
}

// Check parses an expression without types: for expressions whose environment is known only later
// (migration rules, compiled against the old version when a migration is planned).
func Check(src string) error {
	if err := tooLong(src); err != nil {
		return err
	}
	_, err := expr.Compile(src, expr.AllowUndefinedVariables(), expr.DisableBuiltin("now"), expr.MaxNodes(MaxNodes))
	if err != nil {
		return compileError(src, err)
	}
	return nil
}

func tooLong(src string) error {
	if len(src) > MaxSourceBytes {
		return &Error{Line: 1, Message: fmt.Sprintf("expression is %d bytes long; the limit is %d", len(src), MaxSourceBytes)}
	}
	return nil
}

func compileError(src string, err error) error {
	e := &Error{Line: 1, Message: err.Error()}
	var fe *file.Error
	if errors.As(err, &fe) {
		e.Message, e.Column = fe.Message, fe.Column
		if fe.Line > 1 {
			e.Line = fe.Line
		}
	}
	if strings.Contains(src, "now(") && strings.Contains(e.Message, "not callable") {
		e.Message += " (now is the time of the event: write now, not now())"
	}
	return e
}

// fits reports whether a value of the static type got can be stored in a field of type want. A type
// expr does not know (interface) is accepted here and checked at evaluation.
func fits(got reflect.Type, want *schema.Type) error {
	if got == nil || got.Kind() == reflect.Interface || want.Kind == schema.Any {
		return nil
	}
	ok := false
	switch want.Kind {
	case schema.String:
		ok = got.Kind() == reflect.String
	case schema.Int:
		ok = isInt(got)
	case schema.Float:
		ok = isInt(got) || got.Kind() == reflect.Float64 || got.Kind() == reflect.Float32
	case schema.Bool:
		ok = got.Kind() == reflect.Bool
	case schema.Time:
		ok = got == timeType
	case schema.Duration:
		ok = got == durationType
	case schema.List:
		ok = got.Kind() == reflect.Slice || got.Kind() == reflect.Array
	case schema.Object:
		ok = got.Kind() == reflect.Map
	}
	if !ok {
		return fmt.Errorf("expression is of type %s, want %s", typeName(got), want)
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

// Vars are the values of one evaluation.
type Vars struct {
	Ctx      map[string]any
	Event    map[string]any
	State    string
	Now      time.Time
	Instance Instance
}

// Instance is what expressions see of the instance as `instance`.
type Instance struct {
	ID        string
	Version   int
	CreatedAt time.Time
	EnteredAt time.Time
}

// Scope is the run-time environment of expressions. Build it once per event and share it between the
// expressions of that event: they all see the same `now` and the same context before the change.
type Scope map[string]any

// NewScope builds the environment of v.
func NewScope(v Vars) Scope {
	return Scope{
		"ctx":   v.Ctx,
		"event": v.Event,
		"state": v.State,
		"now":   v.Now,
		"instance": map[string]any{
			"id":         v.Instance.ID,
			"version":    v.Instance.Version,
			"created_at": v.Instance.CreatedAt,
			"entered_at": v.Instance.EnteredAt,
		},
	}
}

// VMs are reused: a VM keeps its stack between runs, so evaluation allocates only what the
// expression itself builds.
var vms = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: MemoryBudget} }}

func (p *Program) run(s Scope) (any, error) {
	machine := vms.Get().(*vm.VM)
	out, err := machine.Run(p.prog, map[string]any(s))
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
	v, err := p.want.Decode(plain(out), "", schema.Options{})
	if err != nil {
		return nil, fmt.Errorf("evaluating %q: %w", p.Source, err)
	}
	return v, nil
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

// Time evaluates a timer deadline.
func (p *Program) Time(s Scope) (time.Time, error) {
	v, err := p.Value(s)
	if err != nil {
		return time.Time{}, err
	}
	return v.(time.Time), nil
}
