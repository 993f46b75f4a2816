package machine

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/source"
)

var (
	migrateKeys   = []string{"policy", "states", "context"}
	migrateBranch = []string{"to", "guard"}
)

// migrate parses the `migrate` section: how instances of older versions move to this one. Its targets
// are checked against this version here (validate); its expressions only for syntax, since they are
// typed by the older version's context, known when a migration is planned.
func (d *parser) migrate(def *Definition, e source.Entry) *Migrate {
	m := &Migrate{Policy: "auto", States: map[string]*MigrateRule{}, Pos: source.At(e.KeyNode)}
	entries, _ := d.Mapping(e.Val, "migrate")
	spec := d.Keys(entries, "migrate", migrateKeys...)
	if p, ok := spec.Get("policy"); ok {
		if s, ok := d.Scalar(p.Val, "policy"); ok {
			if s != "auto" && s != "manual" {
				d.Errorf(source.At(p.Val), "migrate policy %q is not auto or manual", s)
			}
			m.Policy = s
		}
	}
	if st, ok := spec.Get("states"); ok {
		rules, _ := d.Mapping(st.Val, "migrate states")
		for _, r := range rules {
			rule := &MigrateRule{From: r.Key, Pos: source.At(r.KeyNode)}
			v := d.Resolve(r.Val)
			items := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				items = v.Content
			}
			for _, item := range items {
				if b := d.migrateBranch(item, r.Key); b != nil {
					rule.Branches = append(rule.Branches, b)
				}
			}
			m.States[r.Key] = rule
		}
	}
	if c, ok := spec.Get("context"); ok {
		fields, _ := d.Mapping(c.Val, "migrate context")
		for _, f := range fields {
			if def.Context.Path(strings.Split(f.Key, ".")) == nil {
				d.Errorf(source.At(f.KeyNode), "migrate context: the context has no field %q", f.Key)
				continue
			}
			src, ok := d.Scalar(f.Val, "migrate context "+f.Key)
			if !ok {
				continue
			}
			if err := guards.Check(src); err != nil {
				d.exprError(f.Val, "migrate context "+f.Key, err)
			}
			m.Context = append(m.Context, &MigrateAssignment{Path: strings.Split(f.Key, "."), Expr: src, Pos: source.At(f.KeyNode)})
		}
	}
	return m
}

func (d *parser) migrateBranch(n *yaml.Node, from string) *MigrateBranch {
	n = d.Resolve(n)
	if n.Kind == yaml.ScalarNode && !source.IsNull(n) {
		return &MigrateBranch{To: n.Value, Pos: source.At(n)}
	}
	what := fmt.Sprintf("migrate rule for state %q", from)
	entries, ok := d.Mapping(n, what)
	if !ok {
		return nil
	}
	spec := d.Keys(entries, what, migrateBranch...)
	to, ok := spec.Get("to")
	if !ok {
		d.Errorf(source.At(n), "%s needs `to`", what)
		return nil
	}
	b := &MigrateBranch{Pos: source.At(to.Val)}
	b.To, _ = d.Scalar(to.Val, "to")
	if g, ok := spec.Get("guard"); ok {
		if src, ok := d.Scalar(g.Val, "guard"); ok {
			b.Guard = src
			if err := guards.Check(src); err != nil {
				d.exprError(g.Val, "guard", err)
			}
		}
	}
	return b
}
