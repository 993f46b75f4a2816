package machine

import (
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
)

// Explanation is what an event would do to an instance now: every branch with its guard's value, and
// the transition Fire would make, or its error. Explain has no side effect.
type Explanation struct {
	Branches   []BranchResult // every branch of the state's handler, in order; none when there is no handler
	Transition *Transition    // nil when the event would be refused
	Err        error          // why it would be refused
}

// BranchResult is one branch of an explanation. For an unguarded branch Guard is "" and Result true.
type BranchResult struct {
	Index   int
	To      string // the state the branch leads to: for a stay, the state itself
	Stays   bool   // the branch has no `to`
	Guard   string
	Message string
	Result  bool
	Err     error // the guard failed to evaluate
	Taken   bool
	Allowed bool // the actor may take the branch (its `allow`)
}

// Explain evaluates every branch's guard, not only up to the first that holds as Fire does, so that a
// user sees why each branch would or would not be taken. Its expressions have the default Limits.
func Explain(def *Definition, snap Snapshot, event string, payload map[string]any, now time.Time) Explanation {
	return Limits{}.Explain(def, snap, event, payload, now)
}

// Explain is the package's Explain within l: what Fire does has l's budget, and the guards of the
// branches evaluated again have another, so that an explanation takes at most twice the budget. A
// guard that spends it is reported with its error, and the guards after it fail at once.
func (l Limits) Explain(def *Definition, snap Snapshot, event string, payload map[string]any, now time.Time) Explanation {
	return l.ExplainAs(def, snap, Actor{Kind: ActorSystem}, event, payload, now)
}

// ExplainAs is Explain for an event sent by actor.
func (l Limits) ExplainAs(def *Definition, snap Snapshot, actor Actor, event string, payload map[string]any, now time.Time) Explanation {
	var x Explanation
	x.Transition, x.Err = l.FireAs(def, snap, actor, event, payload, now)
	st, h, err := def.handler(snap.State, event)
	if err != nil {
		return x
	}
	typed, err := def.payload(event, payload)
	if err != nil {
		return x
	}
	scope := guards.NewScope(guards.Vars{Ctx: snap.Context, Event: typed, State: st.Name, Now: now,
		Instance: guards.Instance{ID: snap.ID, Version: snap.Version, CreatedAt: snap.CreatedAt, EnteredAt: snap.EnteredAt, Parent: snap.Parent.ID},
		Actor:    actor.vars(), Children: def.childScope(snap), Budget: l.Budget})
	for _, b := range h.Branches {
		r := BranchResult{Index: b.Index, To: b.Target(st.Name), Stays: b.Stays(), Guard: b.GuardSource, Message: b.GuardMessage, Result: true,
			Allowed: b.allowed(actor)}
		if b.Guard != nil {
			r.Result, r.Err = b.Guard.Bool(scope)
		}
		r.Taken = x.Transition != nil && x.Transition.Branch == b.Index
		x.Branches = append(x.Branches, r)
	}
	return x
}
