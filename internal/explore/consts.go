package explore

import (
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/fsmd-io/fsmd/internal/analysis"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// consts maps a field path as written in expressions ("event.amount", "ctx.customer.tier") to the
// constants guards compare it with, in the order first seen. A path compared only with another
// field is present with no constants.
type consts map[string][]any

// links are the pairs of fields guards compare with each other, flattened: a0, b0, a1, b1, ...
type links []string

func (c consts) add(path string, v any) {
	for _, have := range c[path] {
		if have == v {
			return
		}
	}
	c[path] = append(c[path], v)
}

// link records that a guard compares two fields (`event.amount <= ctx.amount`): each gets the
// other's constants once all are collected (share), and both count as compared.
func (c consts) link(l *links, a, b string) {
	if _, ok := c[a]; !ok {
		c[a] = nil
	}
	if _, ok := c[b]; !ok {
		c[b] = nil
	}
	*l = append(*l, a, b)
}

// share gives each linked field the constants of the other.
func (c consts) share(links links) {
	for i := 0; i+1 < len(links); i += 2 {
		a, b := links[i], links[i+1]
		for _, v := range slices.Clone(c[b]) {
			if len(c[a]) < maxConstsPerPath {
				c.add(a, v)
			}
		}
		for _, v := range slices.Clone(c[a]) {
			if len(c[b]) < maxConstsPerPath {
				c.add(b, v)
			}
		}
	}
}

// maxConstsPerPath bounds what one field collects, so that a guard listing thousands of literals
// does not multiply the events generated.
const maxConstsPerPath = 16

// collect adds what the guard src compares fields with. A guard that does not parse adds nothing:
// the definition was validated, and this is only a source of better values.
func (c consts) collect(src string, l *links) {
	if src == "" {
		return
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return
	}
	ast.Walk(&tree.Node, comparisons{c, l})
}

// comparisons visits `path OP literal`, `literal OP path` and `path in [literals]`.
type comparisons struct {
	c     consts
	links *links
}

func (v comparisons) Visit(n *ast.Node) {
	b, ok := (*n).(*ast.BinaryNode)
	if !ok {
		return
	}
	switch b.Operator {
	case "==", "!=", "<", "<=", ">", ">=":
		if l, r := fieldPath(b.Left), fieldPath(b.Right); l != "" && r != "" {
			v.c.link(v.links, l, r)
			return
		}
		if p := fieldPath(b.Left); p != "" {
			v.literal(p, b.Right)
		} else if p := fieldPath(b.Right); p != "" {
			v.literal(p, b.Left)
		}
	case "in", "not in":
		p := fieldPath(b.Left)
		arr, ok := b.Right.(*ast.ArrayNode)
		if p == "" || !ok {
			return
		}
		for _, e := range arr.Nodes {
			v.literal(p, e)
		}
	}
}

func (v comparisons) literal(path string, n ast.Node) {
	if len(v.c[path]) >= maxConstsPerPath {
		return
	}
	if val, ok := analysis.Constant(n); ok {
		if i, isInt := val.(int64); isInt {
			val = int(i) // as schema.Decode types an int
		}
		v.c.add(path, val)
	}
}

// fieldPath is the dotted path of a member chain rooted at ctx or event ("ctx.customer.tier"), or "".
func fieldPath(n ast.Node) string {
	var parts []string
	for {
		switch m := n.(type) {
		case *ast.ChainNode:
			n = m.Node
			continue
		case *ast.MemberNode:
			s, ok := m.Property.(*ast.StringNode)
			if !ok {
				return ""
			}
			parts = append(parts, s.Value)
			n = m.Node
			continue
		case *ast.IdentifierNode:
			if m.Value != "ctx" && m.Value != "event" || len(parts) == 0 {
				return ""
			}
			parts = append(parts, m.Value)
		default:
			return ""
		}
		break
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// guardConsts collects the constants of every guard of the definition, and carries a context
// field's constants over to the event field a `set` copies into it (`amount: event.amount`): a
// guard on ctx.amount is then decided by the event that set it.
func guardConsts(def *machine.Definition) consts {
	c := consts{}
	var l links
	for _, name := range def.StateOrder {
		st := def.States[name]
		for _, ev := range st.OnOrder {
			for _, b := range st.On[ev].Branches {
				c.collect(b.GuardSource, &l)
			}
		}
	}
	c.share(l)
	for _, name := range def.StateOrder {
		st := def.States[name]
		for _, ev := range st.OnOrder {
			for _, b := range st.On[ev].Branches {
				for _, a := range b.Set {
					src := strings.TrimSpace(a.Expr.Source)
					if !strings.HasPrefix(src, "event.") || fieldPathOf(src) != src {
						continue
					}
					for _, v := range c["ctx."+strings.Join(a.Path, ".")] {
						if len(c[src]) < maxConstsPerPath {
							c.add(src, v)
						}
					}
				}
			}
		}
	}
	return c
}

// fieldPathOf is fieldPath of an expression's source, or "" when it is not a plain path.
func fieldPathOf(src string) string {
	tree, err := parser.Parse(src)
	if err != nil {
		return ""
	}
	return fieldPath(tree.Node)
}

// setPaths are the context fields some branch's `set` writes, as "ctx.a.b": their initial value
// matters less, since events give them theirs.
func setPaths(def *machine.Definition) map[string]bool {
	set := map[string]bool{}
	for _, name := range def.StateOrder {
		st := def.States[name]
		for _, ev := range st.OnOrder {
			for _, b := range st.On[ev].Branches {
				for _, a := range b.Set {
					set["ctx."+strings.Join(a.Path, ".")] = true
				}
			}
		}
	}
	return set
}
