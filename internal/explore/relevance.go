package explore

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// relevant lists the top-level context fields whose value can change what the instance does: those
// some expression reads, other than a `set` of the field itself (`comments: concat(ctx.comments,
// [...])` only ever grows the list). Instances that differ only in the other fields behave alike, so
// the walk counts them once: without this, a self-transition that appends to a list would make a
// new instance at every step. nil means every field (an expression uses `ctx` as a whole).
func relevant(def *machine.Definition) map[string]bool {
	r := &reads{fields: map[string]bool{}}
	for _, name := range def.StateOrder {
		st := def.States[name]
		for _, ev := range st.OnOrder {
			for _, b := range st.On[ev].Branches {
				r.read(b.Guard, "")
				for _, a := range b.Set {
					r.read(a.Expr, a.Path[0])
				}
				for _, m := range b.Send {
					r.read(m.To, "")
					for _, f := range m.Payload {
						r.read(f.Expr, "")
					}
				}
			}
		}
		for _, t := range st.Timers {
			r.read(t.At, "")
		}
		r.read(st.Assign, "")
		r.read(st.DueAt, "")
		for _, g := range st.Children {
			r.read(g.ForEach, "")
			r.read(g.Count, "")
			for _, f := range g.Context {
				r.read(f.Expr, "")
			}
		}
	}
	if r.all {
		return nil
	}
	return r.fields
}

type reads struct {
	fields map[string]bool
	all    bool
	self   string // the field the expression being read is assigned to
	// idents counts the identifiers ctx of the expression, members the field accesses on one.
	idents, members int
}

// read records the context fields p reads; one that does not parse reads everything, to be safe.
func (r *reads) read(p *guards.Program, self string) {
	if p == nil || r.all {
		return
	}
	tree, err := parser.Parse(p.Source)
	if err != nil {
		r.all = true
		return
	}
	r.self, r.idents, r.members = self, 0, 0
	ast.Walk(&tree.Node, r)
	if r.idents > r.members { // a `ctx` that is not the object of a field access: the whole context
		r.all = true
	}
}

func (r *reads) Visit(n *ast.Node) {
	switch m := (*n).(type) {
	case *ast.MemberNode:
		if id, ok := m.Node.(*ast.IdentifierNode); ok && id.Value == "ctx" {
			s, ok := m.Property.(*ast.StringNode)
			if !ok { // ctx[expr]: any field
				r.all = true
				return
			}
			r.members++
			if s.Value != r.self {
				r.fields[s.Value] = true
			}
		}
	case *ast.IdentifierNode:
		if m.Value == "ctx" {
			r.idents++
		}
	}
}
