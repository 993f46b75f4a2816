package explore

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// Cases writes a transition table (definitions.md §3) with one case per state reached: the
// context the instance was created with, the shortest sequence found, and the state it ends in.
// It runs as it is with `fsmd test` (the walk starts at a table's default `now`, as its actor when
// it names no group); pasted into a definition's table, it pins down how each state is reached.
func (r *Report) Cases() ([]byte, error) {
	cases := &yaml.Node{Kind: yaml.SequenceNode}
	for _, re := range r.Reached {
		c := mapping()
		add(c, "name", scalar(fmt.Sprintf("explore reaches %s in %s", re.State, plural(len(re.Steps), "step"))))
		given := flow(mapping())
		if len(re.Ctx) > 0 {
			add(given, "ctx", value(re.Ctx))
		}
		if len(re.Children) > 0 { // started by the initial state: a table's given sets no children itself
			ch := flow(mapping())
			for _, g := range slices.Sorted(maps.Keys(re.Children)) {
				c := re.Children[g]
				counts := flow(mapping())
				add(counts, "total", value(c.Total))
				add(counts, "running", value(c.Running))
				add(counts, "final", value(c.Final))
				add(ch, g, counts)
			}
			add(given, "children", ch)
		}
		if len(r.Actor.Groups) > 0 { // the walk's actor is in every group a branch allows
			a := mapping()
			add(a, "name", scalar(r.Actor.Name))
			add(a, "groups", value(r.Actor.Groups))
			add(given, "actor", a)
		}
		if len(given.Content) > 0 {
			add(c, "given", given)
		}
		if len(re.Steps) > 0 {
			when := &yaml.Node{Kind: yaml.SequenceNode}
			for _, s := range re.Steps {
				step := flow(mapping())
				if s.Event == "" {
					add(step, "advance", scalar(formatDuration(s.Advance)))
				} else {
					add(step, "event", scalar(s.Event))
					if len(s.Payload) > 0 {
						add(step, "payload", value(s.Payload))
					}
				}
				when.Content = append(when.Content, step)
			}
			add(c, "when", when)
		}
		then := flow(mapping())
		add(then, "state", scalar(re.State))
		add(c, "then", then)
		cases.Content = append(cases.Content, c)
	}
	doc := mapping()
	doc.HeadComment = fmt.Sprintf("Written by fsmd test --explore: a shortest event sequence to each state of %s reached.", r.Def.Name)
	add(doc, "definition", scalar(r.Def.Name))
	add(doc, "cases", cases)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func flow(n *yaml.Node) *yaml.Node {
	n.Style = yaml.FlowStyle
	return n
}

func scalar(s string) *yaml.Node {
	n := &yaml.Node{}
	_ = n.Encode(s) // a string always encodes; Encode quotes what YAML would read as another type
	return n
}

func add(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, scalar(k), v)
}

// value is a loosely typed value in flow style, its map keys sorted (as yaml.v3 encodes maps).
func value(v any) *yaml.Node {
	n := &yaml.Node{}
	if err := n.Encode(schema.Encode(v)); err != nil {
		return scalar(fmt.Sprint(v))
	}
	setFlow(n)
	return n
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	for _, c := range n.Content {
		setFlow(c)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
