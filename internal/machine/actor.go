package machine

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/source"
)

// The kinds of actor (docs/definitions.md, "Actors"): who sent an event.
const (
	ActorUser      = "user"      // an API key or a bearer token
	ActorTimer     = "timer"     // a timer of the instance
	ActorMessage   = "message"   // another instance (a message), or the instance itself (on_dead)
	ActorMigration = "migration" // a migration
	ActorSystem    = "system"    // fsmd itself
)

// Actor is who sends an event: `actor` in expressions, and in the audit row (name, kind).
type Actor struct {
	Name   string
	Groups []string
	Kind   string
}

// TestActor is the actor of a transition table's steps when the case names none.
var TestActor = Actor{Name: "test", Groups: []string{}, Kind: ActorUser}

// vars is the actor as expressions see it.
func (a Actor) vars() map[string]any {
	groups := make([]any, len(a.Groups))
	for i, g := range a.Groups {
		groups[i] = g
	}
	kind := a.Kind
	if kind == "" {
		kind = ActorSystem
	}
	return map[string]any{"name": a.Name, "groups": groups, "kind": kind}
}

// allowed reports whether a may take b: b has no `allow`, a is not a user (timers, messages and
// migrations are not subject to it), or a is in one of b's groups.
func (b *Branch) allowed(a Actor) bool {
	if b.Allow == nil || (a.Kind != ActorUser && a.Kind != "") {
		return true
	}
	return slices.ContainsFunc(a.Groups, func(g string) bool { return slices.Contains(b.Allow, g) })
}

// allow parses a branch's `allow`: a list of group names, at least one.
func (d *parser) allow(n *yaml.Node, what string) []string {
	groups := []string{}
	items := d.Sequence(n, what+": allow")
	if r := d.Resolve(n); len(items) == 0 && r.Kind == yaml.SequenceNode {
		d.Errorf(source.At(n), "%s: allow lists no group: name at least one (leave allow out to let every actor take the branch)", what)
	}
	for _, item := range items {
		g, ok := d.Scalar(item, "allow")
		if !ok {
			continue
		}
		if g == "" || len(g) > 200 || strings.ContainsFunc(g, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			d.Errorf(source.At(item), "%s: allow: %q is not a group name (1 to 200 characters, no control character)", what, g)
			continue
		}
		groups = append(groups, g)
	}
	return groups
}

// TransitionForbiddenError: the state handles the event, but no branch allows the actor to take it.
type TransitionForbiddenError struct {
	State, Event string
	Actor        string
	Branches     []Allowed // one per branch, in order
}

// Allowed is one branch of a TransitionForbiddenError: where it leads and the groups it allows
// (none: every actor).
type Allowed struct {
	To    string   `json:"to" validate:"required"`
	Allow []string `json:"allow" validate:"required"`
}

func (e *TransitionForbiddenError) Error() string {
	parts := make([]string, len(e.Branches))
	for i, b := range e.Branches {
		parts[i] = fmt.Sprintf("to %s: %s", b.To, strings.Join(b.Allow, ", "))
	}
	return fmt.Sprintf("event %q in state %q: %q is in none of the groups its branches allow (%s)", e.Event, e.State, e.Actor,
		strings.Join(parts, "; "))
}

// Code is the error code.
func (e *TransitionForbiddenError) Code() string { return code.TransitionForbidden }

// Offered lists the events of state that a may send now, in file order: those with a branch a
// may take (its `allow`), whatever their guards (which depend on the payload) would say.
func (d *Definition) Offered(state string, a Actor) []string {
	s := d.States[state]
	if s == nil || s.Final {
		return []string{}
	}
	out := []string{}
	for _, ev := range s.OnOrder {
		if slices.ContainsFunc(s.On[ev].Branches, func(b *Branch) bool { return b.allowed(a) }) {
			out = append(out, ev)
		}
	}
	return out
}
