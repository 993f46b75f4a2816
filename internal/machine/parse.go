package machine

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

var (
	definitionKeys = []string{"name", "description", "initial", "context", "events", "states", "migrate", "notify", "retention", "keys", "index"}
	stateKeys      = []string{"description", "final", "on", "timers", "children", "assign", "due"}
	branchKeys     = []string{"to", "guard", "guard_message", "set", "send", "allow"}
	sendKeys       = []string{"to", "event", "payload"}
	timerKeys      = []string{"after", "at", "event"}
)

// MaxDepth bounds the nesting of context objects and lists.
const MaxDepth = 32

// definitionName is the form of a definition's name (definitions.md).
var definitionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// parser builds a definition from its YAML document.
type parser struct {
	*source.Doc
	shared  shared // what aliased nodes parsed to (share.go)
	resolve Resolve
	finals  map[string]*ChildGroup // the on_final events, by name: the first group to name each
}

// Parse reads one definition file. It returns the definition (nil when the file could not be read as
// one) and every problem found, errors and warnings. A definition is usable only when there is no
// error among the diagnostics.
func Parse(file string, data []byte) (*Definition, source.Diagnostics) {
	return ParseWith(file, data, nil)
}

// ParseWith is Parse with the definitions that child groups name found by resolve (nil: none is
// known, and a child group is an error).
func ParseWith(file string, data []byte, resolve Resolve) (*Definition, source.Diagnostics) {
	r := &source.Reporter{File: file}
	var def *Definition
	ok := source.Walk(r, data, func(d *source.Doc, root *yaml.Node) {
		def = (&parser{Doc: d, resolve: resolve}).definition(root)
	})
	if !ok {
		return nil, r.Diags
	}
	def.File, def.Source = file, data
	validate(def, r)
	if r.Diags.Errors() == 0 {
		def.build()
	}
	r.Diags.Sort()
	return def, r.Diags
}

func (d *parser) definition(root *yaml.Node) *Definition {
	def := &Definition{Events: map[string]*EventSpec{}, States: map[string]*State{}, Context: schema.ObjectOf()}
	entries, ok := d.Mapping(root, "a definition")
	if !ok {
		return def
	}
	top := d.Keys(entries, "a definition", definitionKeys...)
	for _, k := range []string{"name", "initial", "states"} {
		if _, ok := top.Get(k); !ok {
			d.Errorf(source.At(root), "missing required key %q", k)
		}
	}
	if e, ok := top.Get("name"); ok {
		def.NamePos = source.At(e.Val)
		if s, ok := d.Scalar(e.Val, "name"); ok {
			def.Name = s
			if !definitionName.MatchString(s) {
				d.Errorf(source.At(e.Val), "definition name %q is not valid: it must match ^[a-z][a-z0-9_]{0,62}$", s)
			}
		}
	}
	if e, ok := top.Get("description"); ok {
		def.Description, _ = d.Scalar(e.Val, "description")
	}
	if e, ok := top.Get("initial"); ok {
		def.Initial, _ = d.Scalar(e.Val, "initial")
		def.InitialPos = source.At(e.Val)
	}
	if e, ok := top.Get("context"); ok {
		def.Context = d.object(e.Val, "context", 0)
	}
	if e, ok := top.Get("events"); ok {
		d.events(def, e.Val)
	}
	// notify before states: a webhook's on_dead declares its event's payload, which guards read.
	if e, ok := top.Get("notify"); ok {
		def.Notify = d.notify(def, e.Val)
	}
	if e, ok := top.Get("states"); ok {
		d.states(def, e.Val)
	}
	if e, ok := top.Get("migrate"); ok {
		def.Migrate = d.migrate(def, e)
	}
	if e, ok := top.Get("keys"); ok {
		def.Keys = d.fieldRefs(def, e.Val, "keys") // keys.go
	}
	if e, ok := top.Get("index"); ok {
		def.Index = d.fieldRefs(def, e.Val, "index")
	}
	if e, ok := top.Get("retention"); ok {
		def.Retention = d.retention(e.Val)
	}
	return def
}

func (d *parser) events(def *Definition, n *yaml.Node) {
	entries, _ := d.Mapping(n, "events")
	for _, e := range entries {
		if !d.Name(e.KeyNode, "event") {
			continue
		}
		def.Events[e.Key] = &EventSpec{Name: e.Key, Pos: source.At(e.KeyNode),
			Payload: d.object(e.Val, "the payload of event "+e.Key, 0)}
	}
}

func (d *parser) states(def *Definition, n *yaml.Node) {
	entries, ok := d.Mapping(n, "states")
	if !ok {
		return
	}
	if len(entries) == 0 {
		d.Errorf(source.At(n), "states is empty: a definition needs at least one state")
	}
	// Declare every state before reading any, so transitions may name states further down.
	for _, e := range entries {
		if d.Name(e.KeyNode, "state") {
			def.States[e.Key] = &State{Name: e.Key, Pos: source.At(e.KeyNode), On: map[string]*Handler{}}
			def.StateOrder = append(def.StateOrder, e.Key)
		}
	}
	d.childGroups(def, entries)
	for _, e := range entries {
		if s := def.States[e.Key]; s != nil {
			d.state(def, s, e.Val)
		}
	}
}

func (d *parser) state(def *Definition, s *State, n *yaml.Node) {
	what := fmt.Sprintf("state %q", s.Name)
	entries, _ := d.Mapping(n, what)
	spec := d.Keys(entries, what, stateKeys...)
	if e, ok := spec.Get("description"); ok {
		s.Description, _ = d.Scalar(e.Val, "description")
	}
	if e, ok := spec.Get("final"); ok {
		s.Final = d.Boolean(e.Val, "final")
	}
	d.taskKeys(def, s, spec)
	if e, ok := spec.Get("on"); ok {
		if s.Final {
			d.Errorf(source.At(e.KeyNode), "final state %q cannot have `on`: nothing leaves a final state", s.Name)
		}
		n := d.Resolve(e.Val)
		p := once(d, &d.shared.ons, n, n, e.Val, func() parsedOn {
			p := parsedOn{on: map[string]*Handler{}}
			ons, _ := d.Mapping(n, what+" on")
			for _, on := range ons {
				if d.Name(on.KeyNode, "event") {
					p.on[on.Key] = d.handler(def, s, on)
					p.order = append(p.order, on.Key)
				}
			}
			return p
		})
		s.On, s.OnOrder = p.on, p.order
	}
	if e, ok := spec.Get("timers"); ok {
		if s.Final {
			d.Errorf(source.At(e.KeyNode), "final state %q cannot have `timers`: nothing leaves a final state", s.Name)
		}
		n := d.Resolve(e.Val)
		s.Timers = once(d, &d.shared.timers, n, n, e.Val, func() []*Timer {
			var timers []*Timer
			for _, t := range d.Sequence(n, what+" timers") {
				if timer := d.timer(def, s, t); timer != nil {
					timers = append(timers, timer)
				}
			}
			return timers
		})
	}
}

// handler parses `on.<event>`: a state name, one transition object, or a list of them. The states
// that name one such node (an alias) share its handler.
func (d *parser) handler(def *Definition, s *State, e source.Entry) *Handler {
	v := d.Resolve(e.Val)
	return once(d, &d.shared.handlers, handlerKey{v, e.Key}, v, e.Val, func() *Handler { return d.branches(def, s, e, v) })
}

func (d *parser) branches(def *Definition, s *State, e source.Entry, v *yaml.Node) *Handler {
	h := &Handler{Event: e.Key, Pos: source.At(e.KeyNode)}
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
		if len(items) == 0 {
			d.Errorf(source.At(v), "on.%s in state %q has no branches", e.Key, s.Name)
		}
	}
	unguarded := -1
	for _, item := range items {
		b := d.branch(def, s, e.Key, item)
		if b == nil {
			continue
		}
		b.Index = len(h.Branches)
		if unguarded >= 0 {
			d.Errorf(b.Pos, "on.%s in state %q: this branch can never be taken, branch %d before it has no guard", e.Key, s.Name, unguarded+1)
		}
		if b.GuardSource == "" && b.Allow == nil && unguarded < 0 { // a branch with allow is not taken by everyone
			unguarded = b.Index
		}
		h.Branches = append(h.Branches, b)
	}
	return h
}

func (d *parser) branch(def *Definition, s *State, event string, n *yaml.Node) *Branch {
	n = d.Resolve(n)
	b := &Branch{Pos: source.At(n)}
	what := fmt.Sprintf("on.%s in state %q", event, s.Name)
	if n.Kind == yaml.ScalarNode && !source.IsNull(n) {
		if b.To = n.Value; b.To == "" {
			d.Errorf(b.Pos, "%s names no state: name one, or give a transition without `to` ({}) to stay in the state", what)
			return nil
		}
		return b
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(source.At(n), "%s must name a state, a transition {to, guard, guard_message, set} or a list of them, not %s", what, source.Describe(n))
		return nil
	}
	entries, _ := d.Mapping(n, what)
	spec := d.Keys(entries, "a transition", branchKeys...)
	// Without `to` the branch stays: the instance keeps its state (and its timers); with `to` naming
	// the state itself, it re-enters it.
	if to, ok := spec.Get("to"); ok {
		b.Pos = source.At(to.Val)
		var ok bool
		if b.To, ok = d.Scalar(to.Val, "to"); !ok {
			return nil
		}
		if b.To == "" {
			d.Errorf(b.Pos, "%s: `to` is empty; name a state, or leave `to` out to stay in the state", what)
			return nil
		}
	}
	env := guards.Env{Context: def.Context, Children: def.childrenType}
	if ev := def.Events[event]; ev != nil {
		env.Event = ev.Payload
	}
	if g, ok := spec.Get("guard"); ok {
		if src, ok := d.Scalar(g.Val, "guard"); ok {
			b.GuardPos, b.GuardSource = source.At(g.Val), src
			prog, err := d.compile(exprKey{src: src, env: env, kind: 'g'})
			if err != nil {
				d.exprError(g.Val, "guard", err)
			}
			b.Guard = prog
		}
	}
	// `set` and `send` run only when the guard held, on the same ctx and event: what it proves of
	// optional values (`ctx.paid_at != nil && ...`) lets them use those values plainly.
	env.NotNil = b.Guard.NotNil()
	if m, ok := spec.Get("guard_message"); ok {
		b.GuardMessage, _ = d.Scalar(m.Val, "guard_message")
	}
	if set, ok := spec.Get("set"); ok {
		b.Set = d.assignments(def, set.Val, env)
	}
	if a, ok := spec.Get("allow"); ok {
		b.Allow = d.allow(a.Val, what)
	}
	if send, ok := spec.Get("send"); ok {
		for _, n := range d.Sequence(send.Val, "send") {
			if m := d.send(n, env); m != nil {
				b.Send = append(b.Send, m)
			}
		}
	}
	return b
}

// assignments parses a `set` mapping of context field paths to expressions.
func (d *parser) assignments(def *Definition, n *yaml.Node, env guards.Env) []*Assignment {
	entries, _ := d.Mapping(n, "set")
	var out []*Assignment
	for _, e := range entries {
		path := strings.Split(e.Key, ".")
		f := def.Context.Path(path)
		if f == nil {
			d.Errorf(source.At(e.KeyNode), "set: the context has no field %q", e.Key)
			continue
		}
		src, ok := d.Scalar(e.Val, "set "+e.Key)
		if !ok {
			continue
		}
		prog, err := d.compile(exprKey{src: src, env: env, kind: 'v', want: f.Type})
		if err != nil {
			d.exprError(e.Val, "set "+e.Key, err)
			continue
		}
		out = append(out, &Assignment{Path: path, Field: f, Expr: prog, Pos: source.At(e.KeyNode)})
	}
	return out
}

// Types a `send` entry's `to` may have.
var (
	sendID  = schema.Scalar(schema.String)
	sendIDs = schema.ListOf(schema.Scalar(schema.String))
	sendAny = schema.Scalar(schema.Any)
)

const sendWhat = "a message"

// send parses one `send` entry: {to, event, payload}. Its expressions are compiled in the scope of
// the transition, as `set`'s are. `to` must be a string or a list of strings (an expression of
// type any is checked when it is evaluated); the payload's types are checked at delivery, by the
// target's definition, which is not known here.
func (d *parser) send(n *yaml.Node, env guards.Env) *Send {
	entries, ok := d.Mapping(n, sendWhat)
	if !ok {
		return nil
	}
	spec := d.Keys(entries, sendWhat, sendKeys...)
	m := &Send{Pos: source.At(d.Resolve(n))}
	ok = true
	if e, has := spec.Get("to"); !has {
		d.Errorf(m.Pos, "%s needs `to`: an expression giving the id of an instance, or a list of ids", sendWhat)
		ok = false
	} else if src, isScalar := d.Scalar(e.Val, "send to"); !isScalar {
		ok = false
	} else if m.To = d.sendTo(e.Val, src, env); m.To == nil {
		ok = false
	}
	if e, has := spec.Get("event"); !has {
		d.Errorf(m.Pos, "%s needs `event`", sendWhat)
		ok = false
	} else if ev, isScalar := d.Scalar(e.Val, "send event"); !isScalar || !d.Name(d.Resolve(e.Val), "event") {
		ok = false
	} else {
		m.Event = ev
	}
	if e, has := spec.Get("payload"); has {
		fields, _ := d.Mapping(e.Val, "send payload")
		for _, f := range fields {
			if !d.Name(f.KeyNode, "payload field") {
				ok = false
				continue
			}
			src, isScalar := d.Scalar(f.Val, "send payload "+f.Key)
			if !isScalar {
				ok = false
				continue
			}
			prog, err := d.compile(exprKey{src: src, env: env, kind: 'v', want: sendAny})
			if err != nil {
				d.exprError(f.Val, "send payload "+f.Key, err)
				ok = false
				continue
			}
			m.Payload = append(m.Payload, &SendField{Name: f.Key, Expr: prog, Pos: source.At(f.KeyNode)})
		}
	}
	if !ok {
		return nil
	}
	return m
}

// sendTo compiles a `send` entry's `to`: it must be of type string or list of strings.
func (d *parser) sendTo(n *yaml.Node, src string, env guards.Env) *guards.Program {
	return d.stringOrList(n, src, env, "send to", "a string id or a list of string ids")
}

// stringOrList compiles an expression that must be of type string or list of strings (what names
// it in errors, want describes those types to people), as one of type any, checked when evaluated.
func (d *parser) stringOrList(n *yaml.Node, src string, env guards.Env, what, want string) *guards.Program {
	if _, err := d.compile(exprKey{src: src, env: env, kind: 'v', want: sendID}); err != nil {
		if _, errList := d.compile(exprKey{src: src, env: env, kind: 'v', want: sendIDs}); errList != nil {
			var ge *guards.Error
			if errors.As(err, &ge) && strings.HasPrefix(ge.Message, "expression is of type") {
				err = &guards.Error{Line: 1, Message: strings.TrimSuffix(ge.Message, "string") + want}
			}
			d.exprError(n, what, err)
			return nil
		}
	}
	prog, err := d.compile(exprKey{src: src, env: env, kind: 'v', want: sendAny})
	if err != nil {
		d.exprError(n, what, err)
		return nil
	}
	return prog
}

func (d *parser) timer(def *Definition, s *State, n *yaml.Node) *Timer {
	what := fmt.Sprintf("a timer of state %q", s.Name)
	entries, ok := d.Mapping(n, what)
	if !ok {
		return nil
	}
	spec := d.Keys(entries, what, timerKeys...)
	t := &Timer{Pos: source.At(d.Resolve(n))}
	if e, ok := spec.Get("event"); ok {
		t.Event, _ = d.Scalar(e.Val, "event")
	} else {
		d.Errorf(t.Pos, "%s needs `event`", what)
	}
	after, hasAfter := spec.Get("after")
	at, hasAt := spec.Get("at")
	switch {
	case hasAfter && hasAt:
		d.Errorf(source.At(at.KeyNode), "%s has both `after` and `at`; give one", what)
	case hasAfter:
		if src, ok := d.Scalar(after.Val, "after"); ok {
			dur, err := schema.ParseDuration(src)
			switch {
			case err != nil:
				d.Errorf(source.At(after.Val), "after: %q is not a duration (write e.g. 90m, 72h or 3d)", src)
			case dur <= 0:
				d.Errorf(source.At(after.Val), "after: %q must be positive", src)
			case dur < MinTimerDelay:
				d.Errorf(source.At(after.Val), "after: %q is shorter than %v: a timer's delay is at least %[2]v", src, MinTimerDelay)
			}
			t.After = dur
		}
	case hasAt:
		if src, ok := d.Scalar(at.Val, "at"); ok {
			prog, err := d.compile(exprKey{src: src, env: guards.Env{Context: def.Context, NoEvent: true}, kind: 't'})
			if err != nil {
				d.exprError(at.Val, "at", err)
			}
			t.At = prog
		}
	default:
		d.Errorf(t.Pos, "%s needs `after` (a duration) or `at` (a time expression)", what)
	}
	return t
}

// exprError reports a compile error at its place within the YAML scalar where that can be known.
func (d *parser) exprError(n *yaml.Node, what string, err error) {
	p := source.At(n)
	if ge, ok := err.(*guards.Error); ok && ge.Line == 1 {
		p = d.Inside(n, ge.Column)
	}
	d.Errorf(p, "%s: %v", what, err)
}
