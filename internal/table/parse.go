// Package table runs transition tables: the <name>.test.yaml files kept next to definitions
// (definitions.md §3). Each case sets an instance's snapshot, applies events and clock advances through
// the real engine, and compares the outcome; a case of `migrations:` moves an instance of an older
// version to the table's definition by its `migrate` rules (internal/migration) instead. The same
// runner serves `fsmd test` and `go test`.
package table

import (
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// DefaultNow is the time of a case that gives none.
var DefaultNow = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Table is one parsed transition table.
type Table struct {
	File       string
	Definition string  // the name given by `definition:`, or ""
	Cases      []*Case // those of `cases:`, then those of `migrations:`
}

// Case is one scenario: of `cases:`, or of `migrations:` when Migration is set.
type Case struct {
	Name  string
	Line  int
	Given Given // of a migration: the instance of the older version, typed by its schema
	Steps []Step
	Then  Then
	// Migration is set for a case of `migrations:`: it has no steps; the instance given moves from
	// the older version to the table's definition, and Then describes where it goes.
	Migration *Migration
}

// Migration is what a case of `migrations:` adds: the older version its instance runs on.
type Migration struct {
	From string              // the older definition's file, as written: relative to the table's folder
	Path string              // From joined to the table's folder
	Pos  source.Pos          // of `from` in the table
	Old  *machine.Definition // loaded by Load; nil until then
}

// Given is the snapshot a case starts from.
type Given struct {
	State string         // "" for the initial state
	Ctx   map[string]any // merged over the defaults
	Now   time.Time
	// Children are the counts of the child groups of the given state's current entry
	// (`children.<group>`); the ids of the running ones follow the child id rule.
	Children map[string]machine.ChildCounts
	// Parent makes the instance a child: `instance.parent` is its id, and a final state sends it
	// its on_final message.
	Parent machine.Parent
	// Actor sends the steps' events unless a step names its own: machine.TestActor by default.
	Actor machine.Actor
}

// Step is an event or a clock advance.
type Step struct {
	Event   string
	Payload map[string]any
	Advance time.Duration // when Event is ""
	Line    int
	Actor   *machine.Actor // who sends Event; nil: given.actor
}

func (s Step) String() string {
	if s.Event == "" {
		return "advance " + s.Advance.String()
	}
	return "event " + s.Event
}

// Then is what a case expects; nil fields are not compared.
type Then struct {
	State *string
	Ctx   map[string]any // a subset of the context
	Error *string
	Final *bool
	// Notified lists the webhooks (`notify` names) the case's transitions notify, in order: every
	// transition its steps took, timers included, each transition's webhooks in the order of the
	// definition's `notify`. nil: not compared; empty: none.
	Notified *[]string
	// Sent lists the messages the last step sent (processes.md §7), in order, one per target: every
	// transition the step took, timers included. Each payload is a subset. nil: not compared; empty:
	// none.
	Sent *[]Sent
	// Children are the children the last step started, by group: their number, or each one's
	// context (a subset). nil: not compared.
	Children map[string]StartedWant
	// Assignees and DueAt are the task of the state the instance is in (docs/definitions.md,
	// Tasks): its assignees in order (empty: none), and its due date (a zero time: none). nil: not
	// compared.
	Assignees *[]string
	DueAt     *time.Time
	// Of a migration only.
	Stranded *bool   // whether the instance stays on its version; nil: expected to move
	Reason   *string // why it stays: migration.StateUnmapped, RuleFailed or ContextInvalid
}

// StartedWant is what then.children expects of one group: Count children, or as many as Ctx has,
// each with a context of which Ctx[i] is a subset.
type StartedWant struct {
	Count int
	Ctx   []map[string]any // nil: only Count is compared
	Line  int
}

// Sent is one expected message of then.sent.
type Sent struct {
	To      string
	Event   string
	Payload map[string]any // a subset of the message's payload; nil: not compared
}

var (
	tableKeys  = []string{"definition", "cases", "migrations"}
	caseKeys   = []string{"name", "given", "when", "then"}
	givenKeys  = []string{"state", "ctx", "now", "children", "parent", "actor"}
	actorKeys  = []string{"name", "groups"}
	parentKeys = []string{"id", "group", "index", "on_final"}
	countKeys  = []string{"total", "running", "final"}
	stepKeys   = []string{"event", "payload", "advance", "actor"}
	thenKeys   = []string{"state", "ctx", "error", "final", "notified", "sent", "children", "assignees", "due_at"}
	sentKeys   = []string{"to", "event", "payload"}
	codes      = []string{code.UnknownEvent, code.InvalidTransition, code.GuardRejected, code.TransitionForbidden,
		code.InstanceFinal, code.InvalidPayload, code.ExpressionFailed}
	migrationKeys     = []string{"name", "from", "given", "then"}
	migrationThenKeys = []string{"state", "ctx", "stranded", "reason"}
	reasons           = []string{migration.StateUnmapped, migration.RuleFailed, migration.ContextInvalid}
	defName           = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

// Parse reads a transition table. Problems are reported all at once, with their line:col.
func Parse(file string, data []byte) (*Table, source.Diagnostics) {
	r := &source.Reporter{File: file}
	t := &Table{File: file}
	source.Walk(r, data, func(d *source.Doc, root *yaml.Node) {
		p := &parser{d}
		entries, _ := d.Mapping(root, "a transition table")
		top := d.Keys(entries, "a transition table", tableKeys...)
		if e, ok := top.Get("definition"); ok {
			if s, ok := d.Scalar(e.Val, "definition"); ok {
				t.Definition = s
				if !defName.MatchString(s) {
					d.Errorf(source.At(e.Val), "definition name %q is not valid", s)
				}
			}
		}
		names := map[string]int{}
		add := func(c *Case) {
			if line, dup := names[c.Name]; dup {
				d.Errorf(source.Pos{Line: c.Line, Col: 1}, "case %q is already named at line %d; names must be unique", c.Name, line)
			}
			names[c.Name] = c.Line
			t.Cases = append(t.Cases, c)
		}
		cases, hasCases := top.Get("cases")
		migrations, hasMigrations := top.Get("migrations")
		if !hasCases && !hasMigrations {
			d.Errorf(source.At(root), "missing required key \"cases\"")
			return
		}
		if hasCases {
			for _, n := range d.Sequence(cases.Val, "cases") {
				if c := p.testCase(n); c != nil {
					add(c)
				}
			}
		}
		if hasMigrations {
			for _, n := range d.Sequence(migrations.Val, "migrations") {
				if c := p.migration(n, filepath.Dir(file)); c != nil {
					add(c)
				}
			}
		}
	})
	r.Diags.Sort()
	return t, r.Diags
}

type parser struct {
	*source.Doc
}

func (p *parser) testCase(n *yaml.Node) *Case {
	n = p.Resolve(n)
	entries, ok := p.Mapping(n, "a case")
	if !ok {
		return nil
	}
	spec := p.Keys(entries, "a case", caseKeys...)
	c := &Case{Line: n.Line, Given: Given{Now: DefaultNow, Actor: machine.TestActor}}
	if e, ok := spec.Get("name"); ok {
		c.Name, _ = p.Scalar(e.Val, "name")
	} else {
		p.Errorf(source.At(n), "a case needs a `name`")
	}
	if e, ok := spec.Get("given"); ok {
		p.given(&c.Given, e.Val)
	}
	if e, ok := spec.Get("when"); ok {
		v := p.Resolve(e.Val)
		items := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			items = v.Content
		}
		for _, item := range items {
			if s, ok := p.step(item); ok {
				c.Steps = append(c.Steps, s)
			}
		}
	}
	if e, ok := spec.Get("then"); ok {
		p.then(&c.Then, e.Val)
	} else {
		p.Errorf(source.At(n), "case %q needs `then`", c.Name)
	}
	return c
}

// migration reads a case of `migrations:`; dir is the table's folder, which `from` is relative to.
func (p *parser) migration(n *yaml.Node, dir string) *Case {
	n = p.Resolve(n)
	entries, ok := p.Mapping(n, "a migration case")
	if !ok {
		return nil
	}
	spec := p.Keys(entries, "a migration case", migrationKeys...)
	c := &Case{Line: n.Line, Given: Given{Now: DefaultNow}, Migration: &Migration{}}
	if e, ok := spec.Get("name"); ok {
		c.Name, _ = p.Scalar(e.Val, "name")
	} else {
		p.Errorf(source.At(n), "a migration case needs a `name`")
	}
	if e, ok := spec.Get("from"); ok {
		if s, ok := p.Scalar(e.Val, "from"); ok {
			c.Migration.From, c.Migration.Pos = s, source.At(e.Val)
			c.Migration.Path = s
			if !filepath.IsAbs(s) {
				c.Migration.Path = filepath.Join(dir, s)
			}
		}
	} else {
		p.Errorf(source.At(n), "migration case %q needs `from`: the file of the older version, relative to this table", c.Name)
	}
	if e, ok := spec.Get("given"); ok {
		p.given(&c.Given, e.Val)
	}
	if e, ok := spec.Get("then"); ok {
		p.migrationThen(&c.Then, e.Val)
	} else {
		p.Errorf(source.At(n), "migration case %q needs `then`", c.Name)
	}
	return c
}

// migrationThen reads the `then` of a migration case: where the instance goes (state, ctx), or that
// it is stranded and why.
func (p *parser) migrationThen(t *Then, n *yaml.Node) {
	entries, _ := p.Mapping(n, "then")
	spec := p.Keys(entries, "then", migrationThenKeys...)
	p.thenWhere(t, spec)
	stranded, hasStranded := spec.Get("stranded")
	if hasStranded {
		b := p.Boolean(stranded.Val, "then.stranded")
		t.Stranded = &b
	}
	if e, ok := spec.Get("reason"); ok {
		if s, ok := p.Scalar(e.Val, "then.reason"); ok {
			t.Reason = &s
			if !slices.Contains(reasons, s) {
				p.Errorf(source.At(e.Val), "then.reason %q is not a reason an instance is stranded for (%v)", s, reasons)
			}
			if t.Stranded != nil && !*t.Stranded {
				p.Errorf(source.At(e.Val), "then.reason is why an instance is stranded; it contradicts stranded: false")
			}
		}
	}
	if (t.Stranded != nil && *t.Stranded || t.Reason != nil) && (t.State != nil || t.Ctx != nil) {
		p.Errorf(source.At(n), "a stranded instance stays on its version as it was: then.state and then.ctx are for an instance that moves")
	}
}

func (p *parser) given(g *Given, n *yaml.Node) {
	entries, _ := p.Mapping(n, "given")
	spec := p.Keys(entries, "given", givenKeys...)
	if e, ok := spec.Get("state"); ok {
		g.State, _ = p.Scalar(e.Val, "given.state")
	}
	if e, ok := spec.Get("ctx"); ok {
		g.Ctx = p.object(e.Val, "given.ctx")
	}
	if e, ok := spec.Get("now"); ok {
		g.Now = p.time(e.Val, "given.now")
	}
	if e, ok := spec.Get("actor"); ok {
		g.Actor = p.actor(e.Val, "given.actor")
	}
	if e, ok := spec.Get("parent"); ok {
		fields, _ := p.Mapping(e.Val, "given.parent")
		spec := p.Keys(fields, "given.parent", parentKeys...)
		for _, k := range parentKeys {
			f, ok := spec.Get(k)
			switch {
			case !ok && k == "id":
				p.Errorf(source.At(e.Val), "given.parent needs `id`")
			case !ok:
			case k == "index":
				g.Parent.Index = p.count(f.Val, "given.parent.index")
			default:
				v, _ := p.Scalar(f.Val, "given.parent."+k)
				switch k {
				case "id":
					g.Parent.ID = v
				case "group":
					g.Parent.Group = v
				case "on_final":
					g.Parent.OnFinal = v
				}
			}
		}
	}
	if e, ok := spec.Get("children"); ok {
		groups, _ := p.Mapping(e.Val, "given.children")
		g.Children = map[string]machine.ChildCounts{}
		for _, grp := range groups {
			what := "given.children." + grp.Key
			fields, ok := p.Mapping(grp.Val, what)
			if !ok {
				continue
			}
			spec := p.Keys(fields, what, countKeys...)
			var n [3]int
			for i, k := range countKeys {
				if f, ok := spec.Get(k); ok {
					n[i] = p.count(f.Val, what+"."+k)
				}
			}
			c := machine.ChildCounts{Total: n[0], Running: n[1], Final: n[2]}
			_, hasRunning := spec.Get("running")
			_, hasFinal := spec.Get("final")
			switch {
			case hasRunning && !hasFinal:
				c.Final = c.Total - c.Running
			case !hasRunning:
				c.Running = c.Total - c.Final
			}
			if c.Running < 0 || c.Final < 0 || c.Running+c.Final != c.Total {
				p.Errorf(source.At(grp.Val), "%s: running (%d) and final (%d) must add up to total (%d)", what, c.Running, c.Final, c.Total)
			}
			g.Children[grp.Key] = c
		}
	}
}

// actor reads {name, groups}: a user.
func (p *parser) actor(n *yaml.Node, what string) machine.Actor {
	a := machine.Actor{Name: machine.TestActor.Name, Groups: []string{}, Kind: machine.ActorUser}
	fields, _ := p.Mapping(n, what)
	spec := p.Keys(fields, what, actorKeys...)
	if f, ok := spec.Get("name"); ok {
		if name, ok := p.Scalar(f.Val, what+".name"); ok {
			if err := ident.Check(what+".name", name); err != nil {
				p.Errorf(source.At(f.Val), "%v", err)
			}
			a.Name = name
		}
	}
	if f, ok := spec.Get("groups"); ok {
		for _, item := range p.Sequence(f.Val, what+".groups") {
			if g, ok := p.Scalar(item, what+".groups"); ok {
				if err := ident.Check("a group of "+what, g); err != nil {
					p.Errorf(source.At(item), "%v", err)
				}
				a.Groups = append(a.Groups, g)
			}
		}
	}
	return a
}

// count reads a number of children: an int from 0 to machine.MaxChildren.
func (p *parser) count(n *yaml.Node, what string) int {
	var v int
	if err := p.Resolve(n).Decode(&v); err != nil || v < 0 || v > machine.MaxChildren {
		p.Errorf(source.At(n), "%s must be a number of children, from 0 to %d", what, machine.MaxChildren)
		return 0
	}
	return v
}

func (p *parser) step(n *yaml.Node) (Step, bool) {
	n = p.Resolve(n)
	entries, ok := p.Mapping(n, "a step")
	if !ok {
		return Step{}, false
	}
	spec := p.Keys(entries, "a step", stepKeys...)
	s := Step{Line: n.Line}
	ev, isEvent := spec.Get("event")
	adv, isAdvance := spec.Get("advance")
	switch {
	case isEvent && isAdvance:
		p.Errorf(source.At(n), "a step is an event or an advance, not both")
		return s, false
	case isEvent:
		s.Event, _ = p.Scalar(ev.Val, "event")
		if e, ok := spec.Get("actor"); ok {
			a := p.actor(e.Val, "actor")
			s.Actor = &a
		}
		if e, ok := spec.Get("payload"); ok {
			s.Payload = p.object(e.Val, "payload")
		}
	case isAdvance:
		if _, ok := spec.Get("payload"); ok {
			p.Errorf(source.At(n), "an advance step takes no payload")
		}
		if src, ok := p.Scalar(adv.Val, "advance"); ok {
			d, err := schema.ParseDuration(src)
			if err != nil || d < 0 {
				p.Errorf(source.At(adv.Val), "advance: %q is not a positive duration (write e.g. 90m, 72h or 3d)", src)
				return s, false
			}
			s.Advance = d
		}
	default:
		p.Errorf(source.At(n), "a step needs `event` or `advance`")
		return s, false
	}
	return s, true
}

// thenWhere reads what a `then` expects of where the instance is: its state and (a subset of) its
// context.
func (p *parser) thenWhere(t *Then, spec source.Fields) {
	if e, ok := spec.Get("state"); ok {
		if s, ok := p.Scalar(e.Val, "then.state"); ok {
			t.State = &s
		}
	}
	if e, ok := spec.Get("ctx"); ok {
		t.Ctx = p.object(e.Val, "then.ctx")
	}
}

func (p *parser) then(t *Then, n *yaml.Node) {
	entries, _ := p.Mapping(n, "then")
	spec := p.Keys(entries, "then", thenKeys...)
	p.thenWhere(t, spec)
	if e, ok := spec.Get("error"); ok {
		if s, ok := p.Scalar(e.Val, "then.error"); ok {
			t.Error = &s
			if !slices.Contains(codes, s) {
				p.Errorf(source.At(e.Val), "then.error %q is not an error code the engine returns (%v)", s, codes)
			}
		}
	}
	if e, ok := spec.Get("final"); ok {
		b := p.Boolean(e.Val, "then.final")
		t.Final = &b
	}
	if e, ok := spec.Get("assignees"); ok {
		names := []string{}
		for _, item := range p.Sequence(e.Val, "then.assignees") {
			if s, ok := p.Scalar(item, "a then.assignees entry"); ok {
				names = append(names, s)
			}
		}
		t.Assignees = &names
	}
	if e, ok := spec.Get("due_at"); ok {
		var due time.Time // null: no due date
		if !source.IsNull(p.Resolve(e.Val)) {
			due = p.time(e.Val, "then.due_at")
		}
		t.DueAt = &due
	}
	if e, ok := spec.Get("notified"); ok {
		names := []string{}
		for _, item := range p.Sequence(e.Val, "then.notified") {
			if s, ok := p.Scalar(item, "a then.notified entry"); ok {
				names = append(names, s)
			}
		}
		t.Notified = &names
	}
	if e, ok := spec.Get("sent"); ok {
		sent := []Sent{}
		for _, item := range p.Sequence(e.Val, "then.sent") {
			entries, ok := p.Mapping(item, "a then.sent entry")
			if !ok {
				continue
			}
			spec := p.Keys(entries, "a then.sent entry", sentKeys...)
			var m Sent
			for _, k := range []string{"to", "event"} {
				f, ok := spec.Get(k)
				if !ok {
					p.Errorf(source.At(item), "a then.sent entry needs `%s`", k)
					continue
				}
				v, _ := p.Scalar(f.Val, "then.sent "+k)
				if k == "to" {
					m.To = v
				} else {
					m.Event = v
				}
			}
			if f, ok := spec.Get("payload"); ok {
				m.Payload = p.object(f.Val, "then.sent payload")
			}
			sent = append(sent, m)
		}
		t.Sent = &sent
	}
	if e, ok := spec.Get("children"); ok {
		groups, _ := p.Mapping(e.Val, "then.children")
		t.Children = map[string]StartedWant{}
		for _, grp := range groups {
			what := "then.children." + grp.Key
			w := StartedWant{Line: grp.KeyNode.Line}
			v := p.Resolve(grp.Val)
			if v.Kind == yaml.SequenceNode {
				w.Ctx = []map[string]any{}
				for _, item := range v.Content {
					fields, ok := p.Mapping(item, "a "+what+" entry")
					if !ok {
						continue
					}
					spec := p.Keys(fields, "a "+what+" entry", "ctx")
					ctx := map[string]any{}
					if f, ok := spec.Get("ctx"); ok {
						ctx = p.object(f.Val, what+" ctx")
					}
					w.Ctx = append(w.Ctx, ctx)
				}
				w.Count = len(w.Ctx)
			} else {
				fields, _ := p.Mapping(v, what)
				spec := p.Keys(fields, what, "count")
				if f, ok := spec.Get("count"); ok {
					w.Count = p.count(f.Val, what+".count")
				} else {
					p.Errorf(source.At(v), "%s needs `count`, or a list of the children's {ctx}", what)
				}
			}
			t.Children[grp.Key] = w
		}
	}
}

// object reads a mapping into loosely typed values; the definition's schema types them later, as it
// types a JSON body.
func (p *parser) object(n *yaml.Node, what string) map[string]any {
	n = p.Resolve(n)
	if source.IsNull(n) {
		return map[string]any{}
	}
	if n.Kind != yaml.MappingNode {
		p.Errorf(source.At(n), "%s must be a mapping, not %s", what, source.Describe(n))
		return nil
	}
	v, ok := p.Value(n, what)
	if !ok {
		return nil
	}
	return v.(map[string]any)
}

func (p *parser) time(n *yaml.Node, what string) time.Time {
	n = p.Resolve(n)
	var t time.Time
	if err := n.Decode(&t); err != nil {
		p.Errorf(source.At(n), "%s: %q is not a time (write RFC 3339, e.g. 2026-01-01T00:00:00Z)", what, n.Value)
	}
	return t
}
