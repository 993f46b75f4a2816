package guards

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/ast"
)

// Why a time budget: expr has no loops, but its predicates (all, any, map, filter, count, reduce,
// sortBy, ...) iterate, and nested ones over a range or a long payload list multiply: `let r =
// 1..event.k; all(r, {all(r, {true})})` runs for hours, and expr's VM has no deadline. So each
// predicate body is rewritten to begin with a tick of the event's meter (ticks, below), which fails
// once the budget is spent: a function's error aborts the VM, so the computation really stops there,
// after at most one more iteration's work.
//
// The budget's clock starts at the first tick: what runs before any loop costs about the size of
// its data. A timer then sets a flag when the budget runs out, so that a tick is an atomic load and
// never a read of the clock (time.Since costs 87 ns on a small virtual machine, more than most
// predicate bodies). Each evaluation and each metered builtin also look at the flag before they
// start, so the expressions of an event that follow a spent budget fail at once.

// DefaultBudget is the time the expressions of one event may take unless the caller gives another
// (Vars.Budget): far beyond a business rule's needs (a guard takes a microsecond), short enough that
// a hostile one is refused before a client gives up.
const DefaultBudget = 100 * time.Millisecond

const (
	tickName = "__tick" // the scope's tick: a func() bool of its meter
	tickVar  = "__t"    // the tick, bound once by a let around an expression with predicates
)

// clock is the time budget of a meter.
type clock struct {
	budget time.Duration
	armed  atomic.Bool // the timer runs: the budget's clock started
	late   atomic.Bool // the budget is spent
}

// tick starts the budget's clock on its first call, and fails once the budget is spent.
func (c *clock) tick() error {
	if !c.armed.Load() && c.armed.CompareAndSwap(false, true) {
		time.AfterFunc(c.budget, func() { c.late.Store(true) })
	}
	return c.spent()
}

// spent fails once the budget is spent; it does not start the clock.
func (c *clock) spent() error {
	if c.late.Load() {
		return fmt.Errorf("time budget exceeded: the expressions of one event may run for at most %v", c.budget)
	}
	return nil
}

// tickOrPanic is the tick that predicate bodies call: a func() bool, which expr's VM calls directly
// (OpCallTyped), where a builtin function would take its arguments in a slice it allocates on every
// call. It panics with the error, which the VM recovers and returns as it returns a function's.
func (c *clock) tickOrPanic() bool {
	if err := c.tick(); err != nil {
		panic(err)
	}
	return true
}

// ticks begins each predicate body with __t(); the body's value stays the predicate's (a sequence's
// value is its last). Walk visits a predicate after its body, so nested predicates are
// each patched once.
type ticks struct {
	found bool
}

func (t *ticks) Visit(node *ast.Node) {
	p, ok := (*node).(*ast.PredicateNode)
	if !ok {
		return
	}
	tick := &ast.CallNode{Callee: &ast.IdentifierNode{Value: tickVar}}
	p.Node = &ast.SequenceNode{Nodes: []ast.Node{tick, p.Node}}
	t.found = true
}

// addTicks patches the predicates of root and, when it has any, binds __t to the scope's tick around
// it: a let variable is read by index, the environment's __tick by a map lookup.
func addTicks(root *ast.Node) {
	var t ticks
	ast.Walk(root, &t)
	if t.found {
		*root = &ast.VariableDeclaratorNode{Name: tickVar, Value: &ast.IdentifierNode{Value: tickName}, Expr: *root}
	}
}
