package machine

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Limits of children (docs/definitions.md, "Children").
const (
	MaxChildren   = 10000 // children one group starts on one entry of its state
	MaxChildDepth = 8     // levels of children below an instance started through the API
)

// ChildGroup is one group of `children` of a state: the instances it starts, each in the same
// transaction as the transition that enters the state.
type ChildGroup struct {
	Name       string
	State      string          // the state that declares it
	Definition string          // the child definition: its latest version when the children start
	Child      *Definition     // that definition as known when this one was loaded: it types Context
	ForEach    *guards.Program // a list: one child per element; or
	Count      *guards.Program // an int: that many children
	Context    []*ChildField   // the child's initial context, in file order
	OnFinal    string          // the event this instance gets when a child of the group ends; "" for none
	OnExit     string          // the event sent to the group's running children when the state is left; "" for none
	Pos        Pos
}

// ChildField is one field of a child's initial context and the expression giving its value.
type ChildField struct {
	Name string
	Expr *guards.Program
	Pos  Pos
}

// Parent is what a child knows of its parent: the group and entry it was started by, its place in
// the group, and the event its parent gets when it ends ("" for none).
type Parent struct {
	ID      string
	Group   string
	Index   int
	Rev     int64 // the parent's revision after the transition that started the child
	OnFinal string
}

// ChildCounts are a group's children as expressions see them: `children.<group>`.
type ChildCounts struct {
	Total, Running, Final int
	IDs                   []string // the children not yet final, by their own state
}

// ChildStart is what a group starts on entering its state: one context per child, typed by the
// child definition's field types as known at load (the service decodes each by the child's latest
// version, which adds its defaults).
type ChildStart struct {
	Group    *ChildGroup
	Contexts []map[string]any
}

// WithIDs gives c's running children of group their ids by the child id rule, as children of parent
// started at rev: the last Running indexes. The tools that run a definition without a database
// (transition tables, exploration) count children so.
func (c ChildCounts) WithIDs(parent, group string, rev int64) ChildCounts {
	c.IDs = make([]string, c.Running)
	for i := range c.IDs {
		c.IDs[i] = ChildID(parent, group, rev, c.Total-c.Running+i)
	}
	return c
}

// ChildID is the id of the child at index of group, started by the transition of parent to rev.
func ChildID(parent, group string, rev int64, index int) string {
	return fmt.Sprintf("%s.%s.%d.%d", parent, group, rev, index)
}

// Resolve finds a definition by name when one definition refers to another (a child group's): the
// ones loaded with it, else the registered latest version; nil when there is none.
type Resolve func(name string) *Definition

var (
	childGroupKeys = []string{"definition", "for_each", "count", "context", "on_final", "on_exit"}
	groupName      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)
	ctxPath        = regexp.MustCompile(`^ctx(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
	anyType        = schema.Scalar(schema.Any)
	intType        = schema.Scalar(schema.Int)
)

// childGroups parses every state's `children` before any state's `on`: the groups type `children`
// in every expression, and an `on_final` event's payload.
func (d *parser) childGroups(def *Definition, entries []source.Entry) {
	for _, e := range entries {
		s := def.States[e.Key]
		if s == nil {
			continue
		}
		n := d.Resolve(e.Val)
		if n.Kind != yaml.MappingNode { // state reports it
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind != yaml.ScalarNode || k.Value != "children" {
				continue
			}
			def.hasChildren = true
			groups, _ := d.Mapping(n.Content[i+1], "children")
			if len(groups) == 0 {
				d.Errorf(source.At(n.Content[i]), "children of state %q is empty: name at least one group", s.Name)
			}
			for _, g := range groups {
				if c := d.childGroup(def, s, g); c != nil {
					if prev := def.Groups[c.Name]; prev != nil {
						d.Errorf(c.Pos, "child group %q is also declared in state %q: group names are unique in a definition", c.Name, prev.State)
						continue
					}
					if def.Groups == nil {
						def.Groups = map[string]*ChildGroup{}
					}
					def.Groups[c.Name] = c
					s.Children = append(s.Children, c)
				}
			}
		}
	}
	if len(def.Groups) > 0 {
		fields := make([]*schema.Field, 0, len(def.Groups))
		for _, name := range def.StateOrder {
			for _, g := range def.States[name].Children {
				fields = append(fields, &schema.Field{Name: g.Name, Type: guards.ChildGroupType})
			}
		}
		def.childrenType = schema.ObjectOf(fields...)
	}
}

func (d *parser) childGroup(def *Definition, s *State, e source.Entry) *ChildGroup {
	what := fmt.Sprintf("child group %q of state %q", e.Key, s.Name)
	if !groupName.MatchString(e.Key) {
		d.Errorf(source.At(e.KeyNode), "child group name %q is not valid: it must match %s", e.Key, groupName)
		return nil
	}
	if s.Final {
		d.Errorf(source.At(e.KeyNode), "final state %q cannot have `children`: it is never left, so they could not be waited for", s.Name)
	}
	entries, ok := d.Mapping(e.Val, what)
	if !ok {
		return nil
	}
	spec := d.Keys(entries, what, childGroupKeys...)
	g := &ChildGroup{Name: e.Key, State: s.Name, Pos: source.At(e.KeyNode)}
	if v, ok := spec.Get("definition"); !ok {
		d.Errorf(g.Pos, "%s needs `definition`: the name of the child definition", what)
	} else if name, ok := d.Scalar(v.Val, "definition"); ok {
		g.Definition = name
		if d.resolve != nil {
			g.Child = d.resolve(name)
		}
		if g.Child == nil {
			d.Errorf(source.At(v.Val), "%s: definition %q is not known: load it together with this one (the same folder) or register it first", what, name)
		} else if g.Child.States[g.Child.Initial] != nil && g.Child.States[g.Child.Initial].Final {
			d.Errorf(source.At(v.Val), "%s: definition %q starts in a final state: a child must run before it ends", what, name)
		}
	}
	env := guards.Env{Context: def.Context, NoEvent: true}
	item := anyType
	forEach, hasForEach := spec.Get("for_each")
	count, hasCount := spec.Get("count")
	switch {
	case hasForEach && hasCount:
		d.Errorf(source.At(count.KeyNode), "%s has both `for_each` and `count`; give one", what)
	case hasForEach:
		if src, ok := d.Scalar(forEach.Val, "for_each"); ok {
			want := schema.ListOf(anyType)
			if ctxPath.MatchString(src) { // a context list: its elements keep their type
				if f := def.Context.Path(strings.Split(src, ".")[1:]); f != nil && f.Type.Kind == schema.List {
					want, item = f.Type, f.Type.Elem
				}
			}
			prog, err := d.compile(exprKey{src: src, env: env, kind: 'v', want: want})
			if err != nil {
				d.exprError(forEach.Val, "for_each", err)
			}
			g.ForEach = prog
		}
	case hasCount:
		item = intType
		if src, ok := d.Scalar(count.Val, "count"); ok {
			prog, err := d.compile(exprKey{src: src, env: env, kind: 'v', want: intType})
			if err != nil {
				d.exprError(count.Val, "count", err)
			}
			g.Count = prog
		}
	default:
		d.Errorf(g.Pos, "%s needs `for_each` (a list: one child per element) or `count` (an int)", what)
	}
	d.childContext(g, spec, guards.Env{Context: def.Context, NoEvent: true, Item: item}, what)
	for _, k := range []string{"on_final", "on_exit"} {
		if v, ok := spec.Get(k); ok {
			if ev, ok := d.Scalar(v.Val, k); ok && d.Name(d.Resolve(v.Val), "event") {
				if k == "on_final" {
					g.OnFinal = ev
					d.finalEvent(def, g, v.Val)
				} else {
					g.OnExit = ev
					if g.Child != nil && !g.Child.KnownEvent(ev) && !d.childHandles(g.Child, ev) {
						d.Errorf(source.At(v.Val), "%s: on_exit event %q is not an event of definition %q", what, ev, g.Definition)
					}
				}
			}
		}
	}
	return g
}

// childHandles reports whether some state of child handles event. The child may still be being
// loaded (its `known` set is built after validation), so its states are looked at.
func (d *parser) childHandles(child *Definition, event string) bool {
	if _, ok := child.Events[event]; ok {
		return true
	}
	for _, s := range child.States {
		if s.On[event] != nil {
			return true
		}
	}
	return false
}

// childContext compiles a group's `context`: each field against the child definition's type of it;
// a required field of the child without a default must be given.
func (d *parser) childContext(g *ChildGroup, spec source.Fields, env guards.Env, what string) {
	given := map[string]bool{}
	if v, ok := spec.Get("context"); ok {
		fields, _ := d.Mapping(v.Val, what+" context")
		for _, f := range fields {
			given[f.Key] = true
			want := anyType
			if g.Child != nil {
				cf := g.Child.Context.Field(f.Key)
				if cf == nil {
					d.Errorf(source.At(f.KeyNode), "%s: context: definition %q has no context field %q", what, g.Definition, f.Key)
					continue
				}
				want = cf.Type
			}
			src, ok := d.Scalar(f.Val, "context "+f.Key)
			if !ok {
				continue
			}
			prog, err := d.compile(exprKey{src: src, env: env, kind: 'v', want: want})
			if err != nil {
				d.exprError(f.Val, "context "+f.Key, err)
				continue
			}
			g.Context = append(g.Context, &ChildField{Name: f.Key, Expr: prog, Pos: source.At(f.KeyNode)})
		}
	}
	if g.Child == nil {
		return
	}
	for _, f := range g.Child.Context.Fields {
		if f.Required && !f.HasDefault && !given[f.Name] {
			d.Errorf(g.Pos, "%s: context: definition %q requires the context field %q", what, g.Definition, f.Name)
		}
	}
}

// FinalPayload is the payload type of a group's on_final event: {child, group, index, state,
// context}, the context typed by the child definition.
func FinalPayload(child *Definition) *schema.Type {
	ctx := schema.ObjectOf()
	if child != nil && child.Context != nil {
		ctx = child.Context
	}
	return schema.ObjectOf(
		&schema.Field{Name: "child", Type: schema.Scalar(schema.String), Required: true},
		&schema.Field{Name: "group", Type: schema.Scalar(schema.String), Required: true},
		&schema.Field{Name: "index", Type: intType, Required: true},
		&schema.Field{Name: "state", Type: schema.Scalar(schema.String), Required: true},
		&schema.Field{Name: "context", Type: ctx, Required: true},
	)
}

// finalEvent gives a group's on_final event its payload type, derived from the child definition:
// it must not be declared in `events`, and groups that share it must share their child definition.
func (d *parser) finalEvent(def *Definition, g *ChildGroup, n *yaml.Node) {
	if prev := d.finals[g.OnFinal]; prev != nil {
		if prev.Definition != g.Definition {
			d.Errorf(source.At(n), "on_final event %q is also the on_final of group %q, whose children are of definition %q: "+
				"its payload is the child's, so one event serves one child definition", g.OnFinal, prev.Name, prev.Definition)
		}
		return
	}
	if ev := def.Events[g.OnFinal]; ev != nil {
		d.Errorf(source.At(n), "on_final event %q is declared in `events`: its payload is {child, group, index, state, context}, "+
			"derived from definition %q; remove it from `events`", g.OnFinal, g.Definition)
		return
	}
	if d.finals == nil {
		d.finals = map[string]*ChildGroup{}
	}
	d.finals[g.OnFinal] = g
	def.Events[g.OnFinal] = &EventSpec{Name: g.OnFinal, Payload: FinalPayload(g.Child), Pos: source.At(n), FromChildren: true}
}

// validateChildren checks what needs the whole definition: a group's on_final event is handled in
// its state, as a timer's is.
func validateChildren(def *Definition, r *source.Reporter) {
	for _, name := range def.StateOrder {
		s := def.States[name]
		for _, g := range s.Children {
			if g.OnFinal != "" && s.On[g.OnFinal] == nil {
				r.Errorf(g.Pos, "on_final event %q of child group %q is not handled in `on` of state %q", g.OnFinal, g.Name, s.Name)
			}
		}
	}
}

// childScope is `children` as the expressions of an event see it: every group of the definition,
// with the counts the snapshot carries (zero for the groups it has none of).
func (def *Definition) childScope(snap Snapshot) map[string]any {
	if len(def.Groups) == 0 {
		return nil
	}
	out := make(map[string]any, len(def.Groups))
	for name := range def.Groups {
		c := snap.Children[name]
		ids := make([]any, len(c.IDs))
		for i, id := range c.IDs {
			ids[i] = id
		}
		out[name] = map[string]any{"total": c.Total, "running": c.Running, "final": c.Final, "ids": ids}
	}
	return out
}

// starts evaluates the child groups of the state entered (st): each child's context in the scope of
// the instance after the transition, with its element as item and its position as index.
func starts(st *State, depth int, v guards.Vars, scope guards.Scope) ([]ChildStart, error) {
	if len(st.Children) == 0 {
		return nil, nil
	}
	base := scope.With(v)
	out := make([]ChildStart, 0, len(st.Children))
	for _, g := range st.Children {
		var items []any
		n := 0
		if g.ForEach != nil {
			val, err := g.ForEach.Value(base)
			if err != nil {
				return nil, fmt.Errorf("group %s: for_each: %w", g.Name, err)
			}
			items, _ = val.([]any)
			n = len(items)
		} else {
			val, err := g.Count.Value(base)
			if err != nil {
				return nil, fmt.Errorf("group %s: count: %w", g.Name, err)
			}
			c, _ := val.(int)
			if c < 0 {
				return nil, fmt.Errorf("group %s: count is %d; it cannot be negative", g.Name, c)
			}
			n = int(min(c, MaxChildren+1))
		}
		if n > MaxChildren {
			return nil, fmt.Errorf("group %s: more than %d children; a group starts at most %[2]d", g.Name, MaxChildren)
		}
		if n > 0 && depth+1 > MaxChildDepth {
			return nil, fmt.Errorf("group %s: a child would be %d levels deep; children nest at most %d levels", g.Name, depth+1, MaxChildDepth)
		}
		start := ChildStart{Group: g, Contexts: make([]map[string]any, n)}
		for i := range n {
			cv := v
			cv.HasItem, cv.Index, cv.Item = true, i, i
			if items != nil {
				cv.Item = items[i]
			}
			cs := scope.With(cv)
			ctx := make(map[string]any, len(g.Context))
			for _, f := range g.Context {
				val, err := f.Expr.Value(cs)
				if err != nil {
					return nil, fmt.Errorf("group %s: child %d: context %s: %w", g.Name, i, f.Name, err)
				}
				ctx[f.Name] = val
			}
			start.Contexts[i] = ctx
		}
		out = append(out, start)
	}
	return out, nil
}

// exits lists the groups of the state left (st) whose running children get an event.
func exits(st *State) []*ChildGroup {
	var out []*ChildGroup
	for _, g := range st.Children {
		if g.OnExit != "" {
			out = append(out, g)
		}
	}
	return out
}

// finalMessage is the message a child that reaches a final state sends its parent, when its group
// has on_final.
func finalMessage(snap Snapshot, state string, ctx map[string]any) []Message {
	p := snap.Parent
	if p.ID == "" || p.OnFinal == "" {
		return nil
	}
	return []Message{{To: p.ID, Event: p.OnFinal, ChildFinal: true, Payload: map[string]any{
		"child": snap.ID, "group": p.Group, "index": p.Index, "state": state, "context": ctx}}}
}

// UsesChildren reports whether the expressions of state's handler of event refer to `children`
// (counts), and to a group's `ids` (ids): the caller reads the children's counts, and their ids,
// only for the events that see them. It goes by the expressions' source, which names `children`
// wherever they are read.
func (def *Definition) UsesChildren(state, event string) (counts, ids bool) {
	st := def.States[state]
	if st == nil || st.On[event] == nil || len(def.Groups) == 0 {
		return false, false
	}
	var srcs []string
	for _, b := range st.On[event].Branches {
		srcs = append(srcs, b.GuardSource)
		for _, a := range b.Set {
			srcs = append(srcs, a.Expr.Source)
		}
		for _, m := range b.Send {
			srcs = append(srcs, m.To.Source)
			for _, f := range m.Payload {
				srcs = append(srcs, f.Expr.Source)
			}
		}
	}
	for _, src := range srcs {
		if strings.Contains(src, "children") {
			counts = true
			ids = ids || strings.Contains(src, "ids") || strings.Contains(src, "[")
		}
	}
	return counts, ids
}
