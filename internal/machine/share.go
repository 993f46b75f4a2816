package machine

import (
	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Why share: YAML aliases let a short file name one node many times. 350 states whose `on` is one
// anchored map of 350 branches are 23 KB of YAML that expand to 122,500 branches: 60 to 80 MB for
// each loaded version. So the parser parses an aliased node once and gives every place that names
// it the same result, wherever the result does not depend on the place (a state's handlers do not
// depend on the state; only their error messages name it), and compiles each distinct expression
// once per definition; the looplab/fsm graph has the branches of each distinct handler once
// (build). What is not shared, the walk's budget bounds: a document expands through aliases to at
// most a few times its own nodes (source.MaxExpansion). Shared parts are flat lists (handlers,
// branches, timers), never types: a type shared by its own fields would be a tree of 10^9 fields
// to every reader of the schema. What is shared still counts against source.MaxNodes, which bounds
// what the definition's readers iterate (validation, diagrams).

// shared holds what a parser made of the nodes it parsed, by node.
type shared struct {
	ons      map[*yaml.Node]memo[parsedOn] // a state's `on` mapping
	handlers map[handlerKey]memo[*Handler] // an `on.<event>` value
	timers   map[*yaml.Node]memo[[]*Timer] // a state's `timers` list
	exprs    map[exprKey]compiled          // a compiled expression
}

// memo is what a node parsed to, and how many nodes that named.
type memo[V any] struct {
	v     V
	nodes int
}

type parsedOn struct {
	on    map[string]*Handler
	order []string
}

type handlerKey struct {
	node  *yaml.Node
	event string
}

// exprKey is a distinct expression: its source, its environment, and what it must be.
type exprKey struct {
	src  string
	env  guards.Env
	kind byte         // 'g' guard, 'v' value, 't' time
	want *schema.Type // of a value
}

type compiled struct {
	prog *guards.Program
	err  error
}

// once returns what parse made of node (resolved; k its key) when it was parsed before, charging the
// nodes that parsing named, or parses it now; at is where the node is named (an alias). Only an
// anchored node can be named again: the others are parsed and not kept. The result is kept only when
// parsing it reported nothing: a node with errors is parsed again each time it is named, so that
// each place gets its messages.
func once[K comparable, V any](d *parser, m *map[K]memo[V], k K, node, at *yaml.Node, parse func() V) V {
	if node.Anchor == "" {
		return parse()
	}
	if e, ok := (*m)[k]; ok {
		d.Charge(at, e.nodes)
		return e.v
	}
	before, start := len(d.Diags), d.Nodes()
	v := parse()
	if len(d.Diags) == before {
		if *m == nil {
			*m = map[K]memo[V]{}
		}
		(*m)[k] = memo[V]{v, d.Nodes() - start}
	}
	return v
}

// compile compiles an expression once per definition: the expressions of a file repeat (a counter,
// a timestamp), and guards' own cache keeps only the few environments used last.
func (d *parser) compile(k exprKey) (*guards.Program, error) {
	if c, ok := d.shared.exprs[k]; ok {
		return c.prog, c.err
	}
	var c compiled
	switch k.kind {
	case 'g':
		c.prog, c.err = guards.CompileGuard(k.src, k.env)
	case 'v':
		c.prog, c.err = guards.CompileValue(k.src, k.env, k.want)
	default:
		c.prog, c.err = guards.CompileTime(k.src, k.env)
	}
	if d.shared.exprs == nil {
		d.shared.exprs = map[exprKey]compiled{}
	}
	d.shared.exprs[k] = c
	return c.prog, c.err
}
