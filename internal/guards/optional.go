package guards

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// The check of optional values and enumerations (definitions.md §5, docs/definitions.md "Optional
// values in expressions"). expr's checker sees an optional field as its plain type, because it lets
// anything be compared with nil; so this pass, over the checked tree, finds where a value that may
// be nil is used where a plain one is needed, and where an enumeration is compared with (or set to)
// a literal outside it. A value may be nil when it is an optional field (of ctx, event or a `let`
// object; item; the elements of a list of optional elements) that no fact proves set, the literal
// nil, or a `?.`, `??` or ternary that can give nil. It may be nil as an operand of == and !=, the
// left of ??, or where the expression's own target is optional (an optional field, any). Facts are
// what a condition proves when it holds, or fails: `X != nil` (or `X == nil` being false), through
// &&, || and !; they hold in the right operand of && (||), the branches of a ternary, and a
// branch's `set` expressions (Env.NotNil). Everything else is a plain use: arithmetic, ordering,
// both sides of `in`, function and builtin arguments, member and index access (ctx.address.city
// uses ctx.address),
// literals' elements where the target is not optional. This is deliberately simple and sound: a use
// it cannot prove safe is refused, and the fix is always a check or a `??`.

// info is what the pass learns of a subexpression: its schema type where the schema says (nil:
// unknown, e.g. a builtin's result), and, when it may be nil, the node that makes it so (an optional
// field, nil, a `?.`).
type info struct {
	typ    *schema.Type
	nilAt  ast.Node
	nilWhy string // the message at nilAt when the value is used where nil is not allowed
}

func (i info) mayBeNil() bool { return i.nilAt != nil }

// nilPass walks a checked tree once. It stops at its first error.
type nilPass struct {
	src   string
	env   Env
	lets  []letVar       // the `let` variables in scope, innermost last
	elems []*schema.Type // the element type of each enclosing predicate's list, innermost last
	// loose are the operands of == and != that may be nil: expr compiles == of two ints (strings)
	// to an instruction that fails on nil, so they are given the type any once checked (loosen).
	loose []ast.Node
	err   error
}

type letVar struct {
	name string
	typ  *schema.Type
}

// checkOptional runs the pass over the tree of an expression whose value goes to want (boolType for
// a guard), in which the keys of given are known not nil. It returns the facts the expression proves
// when it is true (a guard's, for its branch's `set`).
// It also returns the operands to loosen once the tree is checked for the last time.
func checkOptional(src string, root ast.Node, env Env, want *schema.Type, given facts) (facts, []ast.Node, error) {
	p := &nilPass{src: src, env: env}
	p.place(root, given, want)
	if p.err != nil {
		return nil, nil, p.err
	}
	if want != boolType {
		return nil, p.loose, nil
	}
	return p.facts(root, true), p.loose, nil
}

// loosen makes the operands of == and != that may be nil of type any, so that their comparison
// is expr's generic one, for which nil equals only nil.
func loosen(nodes []ast.Node) {
	for _, n := range nodes {
		if _, isNil := n.(*ast.NilNode); !isNil {
			n.SetType(anyType)
		}
	}
}

// fail records the first error, at the start of n: a path's position is its last member's, and
// `ctx.paid_at` reads better pointed at from its beginning.
func (p *nilPass) fail(n ast.Node, format string, args ...any) {
	if p.err != nil {
		return
	}
	loc := n.Location()
	for m := n; ; {
		switch x := m.(type) {
		case *ast.MemberNode:
			m = x.Node
			continue
		case *ast.ChainNode:
			m = x.Node
			continue
		}
		if from := m.Location().From; from < loc.From {
			loc.From = from
		}
		break
	}
	fe := &file.Error{Location: loc, Message: fmt.Sprintf(format, args...)}
	p.err = compileError(p.src, fe.Bind(file.NewSource(p.src)))
}

// allowsNil reports whether a place of type want admits nil: an optional field's, or any's. A nil
// want is a plain use.
func allowsNil(want *schema.Type) bool {
	return want != nil && (want.Optional || want.Kind == schema.Any)
}

// place checks n where its value goes to want (nil: a plain use, where nil is an error).
func (p *nilPass) place(n ast.Node, f facts, want *schema.Type) info {
	i := p.expr(n, f, want)
	if i.mayBeNil() && !allowsNil(want) {
		p.fail(i.nilAt, "%s", i.nilWhy)
	}
	if want != nil && i.typ != nil && p.err == nil {
		p.nilInside(n, i.typ, want, "")
	}
	return i
}

// nilInside refuses a value whose list elements or object fields may be nil into a place whose
// elements or fields may not (a [string?] into a [string]).
func (p *nilPass) nilInside(n ast.Node, got, want *schema.Type, path string) {
	switch {
	case got.Kind == schema.List && want.Kind == schema.List && got.Elem != nil && want.Elem != nil:
		if got.Elem.Optional && !allowsNil(want.Elem) {
			p.fail(n, "%s has optional elements, which may be nil, and the elements here may not: use filter(%s, # != nil) or map(%[2]s, # ?? <default>)", describeNode(n)+path, nodeText(n))
			return
		}
		p.nilInside(n, got.Elem, want.Elem, path+"[]")
	case got.Kind == schema.Object && want.Kind == schema.Object:
		for _, wf := range want.Fields {
			gf := got.Field(wf.Name)
			if gf == nil {
				continue
			}
			if gf.Type.Optional && !allowsNil(wf.Type) {
				p.fail(n, "%s.%s is optional, and the field %s here is not", describeNode(n)+path, wf.Name, wf.Name)
				return
			}
			p.nilInside(n, gf.Type, wf.Type, path+"."+wf.Name)
		}
	}
}

func nodeText(n ast.Node) string { return n.String() }

func describeNode(n ast.Node) string {
	if k, ok := keyOf(n); ok {
		return k
	}
	return "the value"
}

// optionalWhy is the message of an optional value used unchecked.
func optionalWhy(key string) string {
	return fmt.Sprintf("%s is optional: check %[1]s != nil first, or use %[1]s ?? <default>", key)
}

// expr analyzes n with the facts f; want is the type its value goes to where the place says (list
// and object literals, ternaries and ?? pass it to their parts), for the literals of an enumeration.
func (p *nilPass) expr(n ast.Node, f facts, want *schema.Type) info {
	if p.err != nil {
		return info{}
	}
	switch n := n.(type) {
	case *ast.NilNode:
		return info{nilAt: n, nilWhy: nilWhy(want)}
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode:
		p.enumLiteral(n, want)
		return info{}
	case *ast.IdentifierNode:
		t := p.identType(n.Value)
		if n.Value == "item" && t == p.env.Item { // a child's element, of a list of optional ones
			return p.optional(n, t, f)
		}
		return info{typ: t} // a let variable is not nil: its value was checked as a plain use
	case *ast.PointerNode:
		if n.Name != "" || len(p.elems) == 0 {
			return info{}
		}
		return p.optional(n, p.elems[len(p.elems)-1], f)
	case *ast.ChainNode:
		return p.expr(n.Node, f, want)
	case *ast.MemberNode:
		return p.member(n, f)
	case *ast.UnaryNode:
		if _, ok := literal(n); ok {
			p.enumLiteral(n, want)
			return info{}
		}
		p.place(n.Node, f, nil)
		return info{}
	case *ast.BinaryNode:
		return p.binary(n, f, want)
	case *ast.ConditionalNode:
		p.place(n.Cond, f, nil)
		a := p.expr(n.Exp1, f.with(p.facts(n.Cond, true)), want)
		b := p.expr(n.Exp2, f.with(p.facts(n.Cond, false)), want)
		if a.mayBeNil() {
			return a
		}
		if b.mayBeNil() {
			return b
		}
		if a.typ == b.typ {
			return info{typ: a.typ}
		}
		return info{}
	case *ast.CallNode:
		if _, ok := n.Callee.(*ast.IdentifierNode); !ok {
			p.place(n.Callee, f, nil)
		}
		for _, a := range n.Arguments {
			p.place(a, f, nil)
		}
		return info{}
	case *ast.BuiltinNode:
		p.builtin(n, f)
		return info{}
	case *ast.PredicateNode:
		p.place(n.Node, f.without("#"), nil)
		return info{}
	case *ast.SliceNode:
		i := p.place(n.Node, f, nil)
		for _, x := range []ast.Node{n.From, n.To} {
			if x != nil {
				p.place(x, f, nil)
			}
		}
		return info{typ: i.typ}
	case *ast.ArrayNode:
		var elem *schema.Type
		if want != nil && want.Kind == schema.List {
			elem = want.Elem
		}
		for _, x := range n.Nodes {
			p.place(x, f, elem)
		}
		return info{}
	case *ast.MapNode:
		for _, x := range n.Pairs {
			pair, ok := x.(*ast.PairNode)
			if !ok {
				p.place(x, f, nil)
				continue
			}
			p.place(pair.Key, f, nil)
			var ft *schema.Type
			if k, ok := pair.Key.(*ast.StringNode); ok {
				if fl := want.Field(k.Value); fl != nil {
					ft = fl.Type
				}
			}
			p.place(pair.Value, f, ft)
		}
		return info{}
	case *ast.PairNode:
		p.place(n.Key, f, nil)
		p.place(n.Value, f, nil)
		return info{}
	case *ast.VariableDeclaratorNode:
		// The value is a plain use: a `let` holding a value that may be nil would need facts about
		// the variable, and `let x = ctx.paid_at ?? now` says the same more plainly.
		v := p.place(n.Value, f, nil)
		p.lets = append(p.lets, letVar{n.Name, v.typ})
		i := p.expr(n.Expr, f.without(n.Name), want)
		p.lets = p.lets[:len(p.lets)-1]
		return i
	case *ast.SequenceNode:
		for k, x := range n.Nodes {
			if k == len(n.Nodes)-1 {
				return p.expr(x, f, want)
			}
			p.expr(x, f, nil) // its value is dropped: nil is harmless there
		}
		return info{}
	}
	return info{} // bool, bytes and constants: never nil
}

func nilWhy(want *schema.Type) string {
	switch {
	case want == boolType:
		return "nil is not true or false: a guard must be a bool"
	case want != nil:
		return fmt.Sprintf("nil can only be set into an optional field (declared %s?), and this one is %s", want, want)
	}
	return "nil is not a value here: only an optional field (declared T?) may be nil"
}

// identType is the schema type of a name: a `let` variable's (the innermost), or a root's.
func (p *nilPass) identType(name string) *schema.Type {
	for k := len(p.lets) - 1; k >= 0; k-- {
		if p.lets[k].name == name {
			return p.lets[k].typ
		}
	}
	switch name {
	case "ctx":
		if p.env.Context == nil {
			return emptyObject
		}
		return p.env.Context
	case "event":
		if p.env.NoEvent {
			return nil
		}
		if p.env.Event == nil {
			return emptyObject
		}
		return p.env.Event
	case "item":
		return p.env.Item
	}
	return nil
}

// optional is the info of n, of type t: it may be nil when t is optional and no fact says otherwise.
func (p *nilPass) optional(n ast.Node, t *schema.Type, f facts) info {
	if t == nil || !t.Optional {
		return info{typ: t}
	}
	k, ok := keyOf(n)
	if ok && f.has(k) {
		return info{typ: t}
	}
	if !ok {
		k = n.String()
	}
	return info{typ: t, nilAt: n, nilWhy: optionalWhy(k)}
}

// member is a field or element read: a use of what it reads from, unless it is read with ?., which
// gives nil for nil (and so may be nil itself).
func (p *nilPass) member(n *ast.MemberNode, f facts) info {
	var base info
	if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "$env" {
		if s, ok := n.Property.(*ast.StringNode); ok {
			return info{typ: p.identType(s.Value)}
		}
	}
	if n.Optional {
		base = p.expr(n.Node, f, nil)
	} else {
		base = p.place(n.Node, f, nil)
	}
	var t *schema.Type
	if base.typ != nil {
		switch base.typ.Kind {
		case schema.Object:
			if s, ok := n.Property.(*ast.StringNode); ok {
				if fl := base.typ.Field(s.Value); fl != nil {
					t = fl.Type
				}
			}
		case schema.List:
			t = base.typ.Elem
		}
	}
	if _, ok := n.Property.(*ast.StringNode); !ok {
		p.place(n.Property, f, nil)
	}
	i := p.optional(n, t, f)
	if base.mayBeNil() && !i.mayBeNil() { // a?.b with a unchecked: nil when a is
		if k, ok := keyOf(n); n.Method {
			i.nilAt, i.nilWhy = base.nilAt, base.nilWhy // a method is called: a needs the check
		} else if !ok || !f.has(k) {
			i.nilAt, i.nilWhy = n, fmt.Sprintf("%s may be nil: check %s != nil first, or use %[1]s ?? <default>", n.String(), base.nilAt.String())
		}
	}
	return i
}

// binary handles the operators that admit nil (==, !=, ??) and those that carry facts (&&, ||);
// all others use both operands plainly.
func (p *nilPass) binary(n *ast.BinaryNode, f facts, want *schema.Type) info {
	switch n.Operator {
	case "==", "!=":
		l, r := p.expr(n.Left, f, nil), p.expr(n.Right, f, nil)
		if l.mayBeNil() {
			p.loose = append(p.loose, n.Left)
		}
		if r.mayBeNil() {
			p.loose = append(p.loose, n.Right)
		}
		p.enumCompare(l.typ, n.Left, n.Right)
		p.enumCompare(r.typ, n.Right, n.Left)
		return info{}
	case "??":
		l := p.expr(n.Left, f, want)
		r := p.expr(n.Right, f, want)
		return info{typ: l.typ, nilAt: r.nilAt, nilWhy: r.nilWhy}
	case "in":
		// Both sides are plain uses: expr's optimizer turns `x in [literals]` into a lookup in a
		// set, where nil finds the zero value (nil in ["", "a"] is true), and the list is read.
		l := p.place(n.Left, f, nil)
		r := p.place(n.Right, f, nil)
		p.enumIn(l.typ, n.Left, r.typ, n.Right)
		return info{}
	case "&&", "and":
		p.place(n.Left, f, nil)
		p.place(n.Right, f.with(p.facts(n.Left, true)), nil)
		return info{}
	case "||", "or":
		p.place(n.Left, f, nil)
		p.place(n.Right, f.with(p.facts(n.Left, false)), nil)
		return info{}
	}
	p.place(n.Left, f, nil)
	p.place(n.Right, f, nil)
	return info{}
}

// builtin checks a builtin's arguments as plain uses; a predicate's # is an element of the list
// given first, which may be nil when the list's elements are optional.
func (p *nilPass) builtin(n *ast.BuiltinNode, f facts) {
	var elem *schema.Type
	for k, a := range n.Arguments {
		if pr, ok := a.(*ast.PredicateNode); ok {
			p.elems = append(p.elems, elem)
			p.place(pr.Node, f.without("#"), nil)
			p.elems = p.elems[:len(p.elems)-1]
			continue
		}
		i := p.place(a, f, nil)
		if k == 0 && i.typ != nil && i.typ.Kind == schema.List {
			elem = i.typ.Elem
		}
	}
}
