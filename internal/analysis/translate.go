package analysis

import (
	"errors"
	"math"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/parser"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// Bounds of the work on one guard or handler, far above what a readable rule needs. Past them the
// guard is opaque (source, nodes) or the handler gets no finding (the rest).
const (
	MaxSourceBytes = 8 << 10 // the limit of internal/guards: a longer guard does not load
	MaxNodes       = 2000    // the node limit of internal/guards
	maxVars        = 512     // distinct fields read by one handler's guards
	maxCells       = 8192    // values that stand for a field's domain
	maxConjuncts   = 4096    // disjuncts of one formula in disjunctive normal form
	maxWork        = 1 << 21 // constraint words built per handler: bounds time and memory alike
)

// parseConfig is read only by the parser, so goroutines share it.
var parseConfig = func() *conf.Config {
	c := conf.CreateNew()
	c.MaxNodes = MaxNodes
	return c
}()

// guard reads a guard's source; what does not parse is opaque.
func (a *analyzer) guard(src string) *formula {
	if len(src) > MaxSourceBytes {
		return opaqueF
	}
	tree, err := parse(src)
	if err != nil || tree == nil || tree.Node == nil {
		return opaqueF
	}
	return a.tr(tree.Node, false)
}

// parse parses a guard. It compiled before it reached the analysis, so expr's parser has read it
// once already; should it panic all the same, the guard is unknown. (A parser is not reused: it
// counts the nodes of every expression it ever parsed against the limit.)
func parse(src string) (tree *parser.Tree, err error) {
	defer func() {
		if recover() != nil {
			tree, err = nil, errors.New("expr's parser panicked")
		}
	}()
	return parser.ParseWithConfig(src, parseConfig)
}

// tr translates a boolean expression into a formula in negation normal form: neg asks for its
// negation. In expr, && and || short-circuit and an error ends the evaluation, so the value of a
// guard is either an error (no branch is taken) or its value for some truth of its unknown parts:
// treating every unknown leaf as free is sound.
func (a *analyzer) tr(n ast.Node, neg bool) *formula {
	switch n := n.(type) {
	case *ast.BoolNode:
		if n.Value != neg {
			return trueF
		}
		return falseF
	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			return a.tr(n.Node, !neg)
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and":
			if neg {
				return or(a.tr(n.Left, true), a.tr(n.Right, true))
			}
			return and(a.tr(n.Left, false), a.tr(n.Right, false))
		case "||", "or":
			if neg {
				return and(a.tr(n.Left, true), a.tr(n.Right, true))
			}
			return or(a.tr(n.Left, false), a.tr(n.Right, false))
		case "==", "!=", "<", "<=", ">", ">=":
			f := a.compare(n)
			if f == opaqueF && a.total(n) {
				return unknownF
			}
			return a.literal(f, neg)
		case "in":
			return a.literal(a.in(n), neg)
		}
	case *ast.ConditionalNode: // c ? x : y is (c && x) || (!c && y)
		return or(and(a.tr(n.Cond, false), a.tr(n.Exp1, neg)), and(a.tr(n.Cond, true), a.tr(n.Exp2, neg)))
	case *ast.IdentifierNode, *ast.MemberNode:
		if v, ok := a.path(n); ok && a.vars[v].kind == vBool {
			return a.literal(a.atom(v, opTruth, nil), neg)
		}
	}
	return opaqueF
}

// literal is f, or its negation: f is an atom, a constant or opaque.
func (a *analyzer) literal(f *formula, neg bool) *formula {
	if !neg {
		return f
	}
	switch f.kind {
	case fTrue:
		return falseF
	case fFalse:
		return trueF
	case fLit:
		return &formula{kind: fLit, lit: f.lit ^ 1}
	}
	return f
}

// total reports whether a comparison the analysis does not decide cannot fail either: both operands
// are fields (or constants) of one kind that expr compares without an error, and never nil.
func (a *analyzer) total(n *ast.BinaryNode) bool {
	l, r := a.kindOf(n.Left), a.kindOf(n.Right)
	switch {
	case l == schema.Any || r == schema.Any:
		return false
	case (l == schema.Int || l == schema.Float) && (r == schema.Int || r == schema.Float):
		return true
	case l != r:
		return false
	case l == schema.Bool:
		return n.Operator == "==" || n.Operator == "!="
	}
	return l == schema.String || l == schema.Time || l == schema.Duration
}

// kindOf is the kind of a constant or of a field that is never nil; Any for anything else.
func (a *analyzer) kindOf(n ast.Node) schema.Kind {
	if c, ok := Constant(n); ok {
		switch c.(type) {
		case int64:
			return schema.Int
		case float64:
			return schema.Float
		case string:
			return schema.String
		case bool:
			return schema.Bool
		}
		return schema.Any
	}
	if id, ok := n.(*ast.IdentifierNode); ok && id.Value == "now" {
		return schema.Time
	}
	_, t, ok := a.resolve(n)
	if !ok || t.Optional || len(t.Enum) > 0 && t.Kind != schema.String && t.Kind != schema.Int {
		return schema.Any
	}
	switch t.Kind {
	case schema.Int, schema.Float, schema.String, schema.Bool, schema.Time, schema.Duration:
		return t.Kind
	}
	return schema.Any
}

// compare reads `path op constant` (or `constant op path`).
func (a *analyzer) compare(n *ast.BinaryNode) *formula {
	op := ops[n.Operator]
	v, ok := a.path(n.Left)
	c, isConst := Constant(n.Right)
	if !ok || !isConst {
		if v, ok = a.path(n.Right); !ok {
			return opaqueF
		}
		if c, isConst = Constant(n.Left); !isConst {
			return opaqueF
		}
		op = flipped[op]
	}
	return a.atom(v, op, c)
}

// in reads `path in [constants]`.
func (a *analyzer) in(n *ast.BinaryNode) *formula {
	v, ok := a.path(n.Left)
	list, isList := n.Right.(*ast.ArrayNode)
	if !ok || !isList {
		return opaqueF
	}
	values := make([]any, 0, len(list.Nodes))
	for _, e := range list.Nodes {
		c, ok := Constant(e)
		if !ok || c == nil { // nil in a list: expr's optimizer looks it up as the key's zero value
			return opaqueF
		}
		values = append(values, c)
	}
	return a.atom(v, opIn, values)
}

// Constant reads a literal of expr's syntax tree: int64, float64, string, bool, or nil for nil; a
// negated number is its negative. Exploration reads guards' constants with it too.
func Constant(n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return int64(n.Value), true
	case *ast.FloatNode:
		return n.Value, true
	case *ast.StringNode:
		return n.Value, true
	case *ast.BoolNode:
		return n.Value, true
	case *ast.NilNode:
		return nil, true
	case *ast.UnaryNode:
		if n.Operator != "-" {
			return nil, false
		}
		switch x := n.Node.(type) {
		case *ast.IntegerNode:
			if x.Value == math.MinInt64 { // its negation wraps around
				return nil, false
			}
			return -int64(x.Value), true
		case *ast.FloatNode:
			return -x.Value, true
		}
	}
	return nil, false
}

// path reads a field path (ctx.a.b, ctx["a"], event.x, state, actor.kind, ...) and returns its
// variable, when its type is one the analysis reasons about.
func (a *analyzer) path(n ast.Node) (int, bool) {
	name, t, ok := a.resolve(n)
	if !ok {
		return 0, false
	}
	return a.variable(name, t)
}

// resolve reads a field path and its type. A field of an optional object is not resolved: expr's
// behaviour on nil is not ours to guess.
func (a *analyzer) resolve(n ast.Node) (string, *schema.Type, bool) {
	var names []string
	for {
		m, ok := n.(*ast.MemberNode)
		if !ok {
			break
		}
		p, isName := m.Property.(*ast.StringNode)
		if !isName || m.Optional || m.Method {
			return "", nil, false
		}
		names = append(names, p.Value)
		n = m.Node
	}
	id, ok := n.(*ast.IdentifierNode)
	if !ok {
		return "", nil, false
	}
	slices.Reverse(names)
	var t *schema.Type
	switch id.Value {
	case "ctx":
		t = a.env.Context
	case "event":
		t = a.env.Event
	case "children":
		t = a.env.Children
	case "actor":
		t = actorType
	case "instance":
		t = instanceType
	case "state":
		if len(names) > 0 {
			return "", nil, false
		}
		if a.stateType == nil {
			a.stateType = stateType(a.env.States)
		}
		return "state", a.stateType, true
	default:
		return "", nil, false
	}
	if t == nil || len(names) == 0 {
		return "", nil, false
	}
	for i, name := range names {
		f := t.Field(name)
		if f == nil || (f.Type.Optional && i < len(names)-1) {
			return "", nil, false
		}
		t = f.Type
	}
	return id.Value + "." + strings.Join(names, "."), t, true
}

var (
	actorType = schema.ObjectOf(
		&schema.Field{Name: "name", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "kind", Type: schema.Scalar(schema.String)},
	)
	instanceType = schema.ObjectOf(
		&schema.Field{Name: "id", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "version", Type: schema.Scalar(schema.Int)},
		&schema.Field{Name: "parent", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "created_at", Type: schema.Scalar(schema.Time)},
		&schema.Field{Name: "entered_at", Type: schema.Scalar(schema.Time)},
	)
)

func stateType(states []string) *schema.Type {
	t := schema.Scalar(schema.String)
	values := make([]any, len(states))
	for i, s := range states {
		values[i] = s
	}
	t.SetEnum(values)
	return t
}
