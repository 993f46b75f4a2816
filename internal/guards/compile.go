package guards

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// compileIn compiles src with the configuration of its environment, up to the bytecode, which is
// emitted on first use (program). It is expr.Compile taken apart,
// so that the calls to metered builtins get the event's meter as their first argument and each
// predicate body begins with a check of the time budget (syntactic rewrites before the type check),
// and `+` on strings goes through the meter (a rewrite that needs the types, after it). expr's own patchers would each cost a type check of their own on every compile.
// Between the two, checkOptional refuses unchecked uses of optional values and literals outside an
// enumeration, on the tree as written (given: the facts of the branch's guard).
func compileIn(c *compiled, src string, want *schema.Type, given Facts) (*Program, error) {
	config, key := c.config, c.key
	tree, err := parser.ParseWithConfig(src, config)
	if err != nil {
		return nil, compileError(src, err)
	}
	var reserved *ast.IdentifierNode
	ast.Walk(&tree.Node, meterCalls{reserved: &reserved})
	if reserved != nil {
		return nil, positioned(src, reserved, "names starting with __ are reserved")
	}
	addTicks(&tree.Node)
	if _, err := checker.Check(tree, config); err != nil {
		return nil, compileError(src, err)
	}
	proved, loose, err := checkOptional(src, tree.Node, key.Env, want, given.list())
	if err != nil {
		return nil, err
	}
	ops := &arithmetic{}
	ast.Walk(&tree.Node, ops)
	if ops.patched {
		if _, err := checker.Check(tree, config); err != nil {
			return nil, compileError(src, err)
		}
	}
	loosen(loose)
	if err := fits(tree.Node.Nature(), want); err != nil {
		return nil, &Error{Line: 1, Message: err.Error()}
	}
	if config.Optimize {
		if err := optimizer.Optimize(&tree.Node, config); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, compileError(src, fe.Bind(tree.Source))
			}
			return nil, compileError(src, err)
		}
	}
	p := &Program{Source: src, key: key, tree: tree, notNil: exported(proved)}
	if want != boolType {
		p.want = want
	}
	return p, nil
}

// program returns the bytecode, emitting it on first use. Everything that can fail with the
// expression (syntax, names, types, the optimizer's folding of constants) ran when it was compiled;
// what is left is a translation of the checked tree, deferred because it is a fifth of the cost of
// loading a folder of definitions and many branches are never taken in a process's life.
func (p *Program) program() (*vm.Program, error) {
	p.once.Do(func() {
		c := configs.get(p.key)
		defer configs.put(c)
		p.prog, p.err = compiler.Compile(p.tree, c.config)
		if p.err != nil {
			p.err = fmt.Errorf("compiling %q: %w", p.Source, p.err)
		}
		p.tree = nil
	})
	return p.prog, p.err
}

// Prepare emits the bytecode now rather than on first use: a service warms its definitions with it
// after start, so that no request pays for it.
func (p *Program) Prepare() error {
	_, err := p.program()
	return err
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

// positioned makes an error at a node of src.
func positioned(src string, n ast.Node, msg string) error {
	fe := &file.Error{Location: n.Location(), Message: msg}
	return compileError(src, fe.Bind(file.NewSource(src)))
}

// meterCalls gives each call of a metered builtin the meter as its first argument, and finds names
// the user may not write.
type meterCalls struct {
	reserved **ast.IdentifierNode
}

func (m meterCalls) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if strings.HasPrefix(n.Value, "__") && *m.reserved == nil {
			*m.reserved = n
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && metered[id.Value] {
			n.Arguments = append([]ast.Node{&ast.IdentifierNode{Value: meterName}}, n.Arguments...)
		}
	}
}

// arithmetic rewrites the operators whose Go semantics would betray a rule: `+` where it may join
// strings goes through the meter (meter.go), and `+`, `-` and `*` on ints through checked functions
// that fail on overflow instead of wrapping around (9223372036854775807 + 1 is an error, not a
// negative number). Walk visits operands before their operator, so a rewritten operand is given its
// type for the operator above it.
type arithmetic struct {
	patched bool
}

var (
	intType    = reflect.TypeOf(0)
	stringType = reflect.TypeOf("")
	anyType    = reflect.TypeOf((*any)(nil)).Elem()
)

func (a *arithmetic) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	if name, ok := checkedIntOps[b.Operator]; ok && isIntType(b.Left.Type()) && isIntType(b.Right.Type()) {
		a.patch(node, name, intType, b.Left, b.Right)
		return
	}
	if b.Operator != "+" {
		return
	}
	_, ls := b.Left.(*ast.StringNode)
	_, rs := b.Right.(*ast.StringNode)
	if ls && rs || !mayBeString(b.Left) || !mayBeString(b.Right) {
		return
	}
	t := anyType
	if b.Left.Type() == stringType && b.Right.Type() == stringType {
		t = stringType
	}
	a.patch(node, addName, t, &ast.IdentifierNode{Value: meterName}, b.Left, b.Right)
}

func (a *arithmetic) patch(node *ast.Node, fn string, t reflect.Type, args ...ast.Node) {
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: args}
	ast.Patch(node, call)
	call.SetType(t)
	a.patched = true
}

func isIntType(t reflect.Type) bool {
	return t != nil && t != durationType && t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64
}

func mayBeString(n ast.Node) bool {
	t := n.Type()
	return t == nil || t.Kind() == reflect.String || t.Kind() == reflect.Interface
}
