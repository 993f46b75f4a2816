// Package guards compiles and evaluates the expressions of a definition: transition guards, `set`
// values and timer `at` deadlines. They are written in the expr language and compiled once, when the
// definition is loaded, against a typed environment built from the definition's schemas, so that an
// unknown field or a wrong type is a load error and never a request-time surprise. Only the emission
// of bytecode from the checked tree, which cannot fail on its account, waits for the first use (or
// Prepare): it is a fifth of the cost of loading, and many branches are seldom taken.
//
// The environment (definitions.md, "Expressions"):
//
//	ctx       the instance's context, typed by the `context` schema
//	event     the payload of the handled event, typed by its `events` schema
//	state     the current state (string)
//	now       the time of the event (expr's wall-clock now() is disabled: expressions are deterministic)
//	instance  {id, version, created_at, entered_at, parent}
//	actor     {name, groups, kind}: who sends the event
//	children  {<group>: {total, running, final, ids}}, in a definition with child groups
//	item      the element a child is started for, and index its position (a child's context)
//
// Evaluation is bounded, so that a hostile expression is an error and never a hang or a crash: the
// source length and the number of syntax nodes when compiling; when evaluating, the VM's memory budget
// (elements built by ranges, map, filter and the like), a meter of the bytes that the builtins which
// copy or build strings and lists produce (meter.go), and a time budget shared by the expressions of
// one event (budget.go): expr has no loops, but nested predicates over long lists multiply, and
// past the budget the computation stops. The budget is the one clock this package reads (a
// monotonic timer); `now` is passed in.
package guards

import (
	"fmt"
	"sync"

	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// Limits on expressions. They are far above what a readable business rule needs.
const (
	MaxSourceBytes = 8 << 10 // bytes of one expression's source
	MaxNodes       = 2000    // syntax nodes of one expression
	MemoryBudget   = 1 << 20 // expr VM memory units (roughly, elements built) per evaluation
	MaxBuildBytes  = 8 << 20 // bytes that builtins may build for the expressions of one event
)

// Env describes what an expression may refer to.
type Env struct {
	Context *schema.Type // the object type of ctx; nil means an empty context
	Event   *schema.Type // the payload type of the handled event; nil means it takes no payload
	// NoEvent makes `event` unknown altogether: timer deadlines are computed on entering a state,
	// which many events may do, so they cannot depend on one event's payload.
	NoEvent bool
	// Children is the object type of `children` (one field per child group of the definition,
	// ChildGroupType each); nil leaves `children` unknown.
	Children *schema.Type
	// Item, when set, makes `item` (of this type) and `index` (int) known: a child's context is
	// computed per element of its group's `for_each` (or per count, item then being the index).
	Item *schema.Type
	// NotNil is what is known of optional values where the expression is evaluated: a branch's
	// `set` and `send` expressions run only when its guard held, so the guard's facts
	// (Program.NotNil: its conjuncts `X != nil`) let them use X plainly. It does not change the
	// names and types expressions see, so environments that differ only in it share a cache entry.
	NotNil Facts
}

// Facts are the optional values (paths such as ctx.paid_at) that a guard proves not nil when it
// holds, as Program.NotNil gives them for Env.NotNil. Comparable, so that Env stays a map key.
type Facts string

// ChildGroupType is what expressions see of one child group: `children.<group>`.
var ChildGroupType = schema.ObjectOf(
	&schema.Field{Name: "total", Type: schema.Scalar(schema.Int)},
	&schema.Field{Name: "running", Type: schema.Scalar(schema.Int)},
	&schema.Field{Name: "final", Type: schema.Scalar(schema.Int)},
	&schema.Field{Name: "ids", Type: schema.ListOf(schema.Scalar(schema.String))},
)

// Error is a compile error, positioned within the expression's source (line from 1, column from 0).
type Error struct {
	Line, Column int
	Message      string
}

func (e *Error) Error() string { return e.Message }

// Program is a compiled expression: parsed, type-checked and optimized; its bytecode is emitted once,
// on first use or by Prepare. It is safe for concurrent use.
type Program struct {
	Source string
	want   *schema.Type // the type the value is converted to; nil for a guard
	notNil Facts        // what a guard proves of optional values when it holds (checkOptional)
	key    configKey    // the environment it was checked in

	once sync.Once
	tree *parser.Tree // checked and optimized; dropped once the bytecode is emitted
	prog *vm.Program
	err  error
}

var (
	emptyObject = schema.ObjectOf()
	boolType    = schema.Scalar(schema.Bool)
	timeSchema  = schema.Scalar(schema.Time)
)

// CompileGuard compiles an expression that must be bool.
func CompileGuard(src string, env Env) (*Program, error) { return compile(src, env, boolType) }

// CompileTime compiles an expression that must be a time (a timer's `at`).
func CompileTime(src string, env Env) (*Program, error) { return compile(src, env, timeSchema) }

// CompileValue compiles an expression whose value must fit the type want (a `set` target). Where expr
// cannot know the result type statically (an `any` field, a value read from an `any` field), the value
// is checked when it is computed.
func CompileValue(src string, env Env, want *schema.Type) (*Program, error) {
	return compile(src, env, want)
}

// compile looks the expression up in the cache of its environment, or compiles it there.
func compile(src string, env Env, want *schema.Type) (*Program, error) {
	if err := tooLong(src); err != nil {
		return nil, err
	}
	given := env.NotNil
	env.NotNil = ""
	c := configs.get(configKey{Env: env, asBool: want == boolType})
	defer configs.put(c)
	key := programKey{src, want, given}
	if r, ok := c.programs[key]; ok {
		return r.prog, r.err
	}
	p, err := compileIn(c, src, want, given)
	if len(c.programs) < maxPrograms {
		c.programs[key] = result{p, err}
	}
	return p, err
}

func tooLong(src string) error {
	if len(src) > MaxSourceBytes {
		return &Error{Line: 1, Message: fmt.Sprintf("expression is %d bytes long; the limit is %d", len(src), MaxSourceBytes)}
	}
	return nil
}
