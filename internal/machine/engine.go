package machine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/looplab/fsm"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Snapshot is what the engine needs of an instance. Context holds typed values (schema package) and
// is never changed by the engine: a transition returns a new context.
type Snapshot struct {
	ID        string
	Version   int
	State     string
	Context   map[string]any
	CreatedAt time.Time
	EnteredAt time.Time // when State was entered
	// Parent is the instance's parent (children.go); the zero Parent when it has none.
	Parent Parent
	Depth  int // how many levels of parents it has
	// Children are the counts of its child groups (`children.<group>`), as far as the caller has
	// them: a group missing counts zero.
	Children map[string]ChildCounts
}

// GuardResult is one evaluated guard.
type GuardResult struct {
	Branch int    `json:"branch" validate:"required"`
	To     string `json:"to" validate:"required"`
	Guard  string `json:"guard" validate:"required"`
	Result bool   `json:"result" validate:"required"`
}

// Due is an armed timer: Event fires at At.
type Due struct {
	Event string    `json:"event"`
	At    time.Time `json:"at"`
}

// Transition is an accepted event: what changes, and why.
type Transition struct {
	Event         string
	Payload       map[string]any // typed, with every declared field
	From, To      string
	Stayed        bool          // the branch taken has no `to`: To is From, which was not left (no Cancel, no Arm)
	Branch        int           // the index of the branch taken among the handler's branches
	Guards        []GuardResult // each guard evaluated, in order, up to the branch taken
	ContextBefore map[string]any
	ContextAfter  map[string]any
	// ContextAfterJSON is ContextAfter as JSON when a `set` built it (it was encoded to be measured
	// against the context's bound, and is written as it is); nil when ContextAfter is ContextBefore.
	ContextAfterJSON []byte
	Cancel           []string // the timer events of From, all cancelled: leaving or re-entering a state ends them (none for a stay)
	Arm              []Due    // the timers of To, from now (none for a stay: From's keep running)
	Final            bool     // To is a final state
	At               time.Time
	// Sent are the messages the branch sends (its `send`), one per target, in order; then, when
	// the instance is a child that reaches a final state, the one to its parent (its on_final).
	Sent []Message
	// Start are the children the state entered starts, per group (none for a stay).
	Start []ChildStart
	// Exit are the groups of the state left whose running children get their on_exit event.
	Exit []*ChildGroup
	// Task is the entered state's task, which replaces the instance's (an empty one clears it);
	// nil for a stay, which keeps the instance's task.
	Task *Task
}

// Message is one event a transition sends to another instance: its id To, the event and its payload
// (values computed in the transition's scope; typed by the target's definition when it is delivered).
type Message struct {
	To      string
	Event   string
	Payload map[string]any
	// ChildFinal marks a child's message to its parent on reaching a final state (its group's
	// on_final): the one kind of message the parent counts in `children.<group>.final`.
	ChildFinal bool
}

// Limits bound the work of one event: the time its expressions (guards, `set`, the entered state's
// timer `at`) may take together, past which it fails with an ExpressionError ("time budget
// exceeded") and the evaluation stops. The zero value has guards.DefaultBudget.
type Limits struct {
	Budget time.Duration
}

// Fire handles event with payload (loosely typed, as decoded from JSON or YAML) against the instance
// snap at the time now. It returns the transition, or one of the errors of definitions.md §4. It has no
// side effect: the caller persists the result. Its expressions have the default Limits.
func Fire(def *Definition, snap Snapshot, event string, payload map[string]any, now time.Time) (*Transition, error) {
	return Limits{}.Fire(def, snap, event, payload, now)
}

// Fire is the package's Fire within l, the event sent by the system.
func (l Limits) Fire(def *Definition, snap Snapshot, event string, payload map[string]any, now time.Time) (*Transition, error) {
	return l.FireAs(def, snap, Actor{Kind: ActorSystem}, event, payload, now)
}

// FireAs is Fire with the event sent by actor: `actor` in the expressions, and the branches'
// `allow` (a user in none of the groups any branch allows: TransitionForbiddenError).
func (l Limits) FireAs(def *Definition, snap Snapshot, actor Actor, event string, payload map[string]any, now time.Time) (*Transition, error) {
	st, h, err := def.handler(snap.State, event)
	if err != nil {
		return nil, err
	}
	typed, err := def.payload(event, payload)
	if err != nil {
		return nil, err
	}
	scope := guards.NewScope(guards.Vars{Ctx: snap.Context, Event: typed, State: snap.State, Now: now,
		Instance: guards.Instance{ID: snap.ID, Version: snap.Version, CreatedAt: snap.CreatedAt, EnteredAt: snap.EnteredAt, Parent: snap.Parent.ID},
		Actor:    actor.vars(), Children: def.childScope(snap), Budget: l.Budget})
	b, results, err := choose(st, h, actor, scope)
	if err != nil {
		return nil, err
	}
	after, afterJSON, err := apply(snap.Context, b.Set, scope)
	if err != nil {
		return nil, &ExpressionError{State: st.Name, Event: event, Where: "set", Err: err}
	}
	sent, err := messages(b.Send, scope)
	if err != nil {
		return nil, &ExpressionError{State: st.Name, Event: event, Where: "send", Err: err}
	}
	if b.Stays() { // the state is not left: its timers run on, none is armed
		return &Transition{Event: event, Payload: typed, From: snap.State, To: snap.State, Stayed: true, Branch: b.Index,
			Guards: results, ContextBefore: snap.Context, ContextAfter: after, ContextAfterJSON: afterJSON, Sent: sent, At: now}, nil
	}
	to, err := def.step(snap.State, h, b)
	if err != nil {
		return nil, err
	}
	t := &Transition{Event: event, Payload: typed, From: snap.State, To: to, Branch: b.Index, Guards: results,
		ContextBefore: snap.Context, ContextAfter: after, ContextAfterJSON: afterJSON, Final: def.States[to].Final, Sent: sent, At: now,
		Exit: exits(st)}
	for _, timer := range st.Timers {
		t.Cancel = append(t.Cancel, timer.Event)
	}
	entered := snap
	entered.State, entered.Context, entered.EnteredAt = to, after, now
	if t.Arm, err = def.timers(entered, l, scope); err != nil { // within the event's budget
		return nil, &ExpressionError{State: to, Event: event, Where: "timer at", Err: err}
	}
	task, err := def.task(entered, l, scope)
	if err != nil {
		return nil, &ExpressionError{State: to, Event: event, Where: "task", Err: err}
	}
	t.Task = &task
	if t.Start, err = starts(def.States[to], snap.Depth, entered.vars(now), scope); err != nil {
		return nil, &ExpressionError{State: to, Event: event, Where: "children", Err: err}
	}
	if t.Final {
		t.Sent = append(t.Sent, finalMessage(snap, to, after)...)
	}
	return t, nil
}

// handler finds what state does with event, or why it does nothing.
func (def *Definition) handler(state, event string) (*State, *Handler, error) {
	if !def.known[event] {
		return nil, nil, &UnknownEventError{Event: event}
	}
	st := def.States[state]
	if st == nil {
		return nil, nil, fmt.Errorf("definition %s has no state %q", def.Name, state)
	}
	if st.Final {
		return nil, nil, &InstanceFinalError{State: state, Event: event}
	}
	h := st.On[event]
	if h == nil {
		return nil, nil, &InvalidTransitionError{State: state, Event: event, Handled: st.OnOrder}
	}
	return st, h, nil
}

// payload types the payload by the event's schema; an event without one takes no payload.
func (def *Definition) payload(event string, payload map[string]any) (map[string]any, error) {
	spec := def.Events[event]
	if spec == nil {
		if len(payload) > 0 {
			return nil, &InvalidPayloadError{Event: event, Err: errors.New("this event takes no payload")}
		}
		return map[string]any{}, nil
	}
	if payload == nil {
		payload = map[string]any{}
	}
	v, err := spec.Payload.Decode(payload, "", schema.Options{Required: true})
	if err != nil {
		return nil, &InvalidPayloadError{Event: event, Err: err}
	}
	return v.(map[string]any), nil
}

// choose takes the first branch the actor may take whose guard holds.
func choose(st *State, h *Handler, actor Actor, scope guards.Scope) (*Branch, []GuardResult, error) {
	var results []GuardResult
	allowed := 0
	for _, b := range h.Branches {
		if !b.allowed(actor) {
			continue
		}
		allowed++
		if b.Guard == nil {
			return b, results, nil
		}
		ok, err := b.Guard.Bool(scope)
		if err != nil {
			return nil, nil, &ExpressionError{State: st.Name, Event: h.Event, Where: "guard of branch " + strconv.Itoa(b.Index+1), Err: err}
		}
		results = append(results, GuardResult{Branch: b.Index, To: b.Target(st.Name), Guard: b.GuardSource, Result: ok})
		if ok {
			return b, results, nil
		}
	}
	if allowed == 0 {
		e := &TransitionForbiddenError{State: st.Name, Event: h.Event, Actor: actor.Name}
		for _, b := range h.Branches {
			allow := b.Allow
			if allow == nil {
				allow = []string{} // every actor
			}
			e.Branches = append(e.Branches, Allowed{To: b.Target(st.Name), Allow: allow})
		}
		return nil, nil, e
	}
	blockers := make([]Blocker, len(h.Branches))
	for i, b := range h.Branches {
		blockers[i] = Blocker{To: b.Target(st.Name), Guard: b.GuardSource, Message: b.GuardMessage}
	}
	return nil, nil, &GuardRejectedError{State: st.Name, Event: h.Event, Blockers: blockers}
}

// apply evaluates every `set` against the context before the change, then builds the new context,
// and its JSON, measured against the context's bound (schema.CheckContext). Objects along a changed
// path are copied; the rest is shared with before. Without a `set` the context is before, and
// there is no JSON to return.
func apply(before map[string]any, set []*Assignment, scope guards.Scope) (map[string]any, []byte, error) {
	if len(set) == 0 {
		return before, nil, nil
	}
	values := make([]any, len(set))
	for i, a := range set {
		v, err := a.Expr.Value(scope)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", joinPath(a.Path), err)
		}
		values[i] = v
	}
	after := copyMap(before)
	for i, a := range set {
		m := after
		for _, name := range a.Path[:len(a.Path)-1] {
			inner, _ := m[name].(map[string]any) // decoded contexts hold every object; nil copies as empty
			inner = copyMap(inner)
			m[name] = inner
			m = inner
		}
		m[a.Path[len(a.Path)-1]] = values[i]
	}
	// A set that grows the context past its bound (schema.MaxContextSize) fails: nothing is written.
	b, err := schema.CheckContext(after)
	if err != nil {
		return nil, nil, err
	}
	return after, b, nil
}

// messages evaluates a branch's `send` entries in the scope of the transition (the context before
// its `set`, as `set` sees it): one message per target id, in the order of the entries and of each
// entry's ids. An id that is not a non-empty string fails the event, as a `set` of the wrong type.
func messages(send []*Send, scope guards.Scope) ([]Message, error) {
	var out []Message
	for _, m := range send {
		to, err := m.To.Value(scope)
		if err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
		var ids []string
		switch to := to.(type) {
		case string:
			ids = []string{to}
		case []any:
			for _, id := range to {
				s, ok := id.(string)
				if !ok {
					return nil, fmt.Errorf("to: evaluating %q: a list element is %T, want a string id", m.To.Source, id)
				}
				ids = append(ids, s)
			}
		default:
			return nil, fmt.Errorf("to: evaluating %q: got %T, want a string id or a list of string ids", m.To.Source, to)
		}
		payload := make(map[string]any, len(m.Payload))
		for _, f := range m.Payload {
			v, err := f.Expr.Value(scope)
			if err != nil {
				return nil, fmt.Errorf("payload %s: %w", f.Name, err)
			}
			payload[f.Name] = v
		}
		for _, id := range ids {
			if id == "" {
				return nil, fmt.Errorf("to: evaluating %q: an empty id", m.To.Source)
			}
			out = append(out, Message{To: id, Event: m.Event, Payload: payload})
		}
	}
	return out, nil
}

func copyMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func joinPath(p []string) string {
	s := p[0]
	for _, x := range p[1:] {
		s += "." + x
	}
	return s
}

// step executes the chosen branch of h, a handler of state from, on looplab/fsm, from the state it
// knows h's branches from (build). The FSM comes from the definition's pool: it is never shared
// between goroutines, Event is never called from a callback (there are none), and the context is
// never canceled, so none of looplab/fsm's traps apply.
func (def *Definition) step(from string, h *Handler, b *Branch) (string, error) {
	f := def.fsms.Get().(*fsm.FSM)
	defer def.fsms.Put(f)
	f.SetState(h.fsmState)
	if err := f.Event(context.Background(), b.fsmEvent); err != nil {
		var same fsm.NoTransitionError // a self-transition: it re-enters the state
		if !errors.As(err, &same) {
			return "", fmt.Errorf("looplab/fsm refused %s -> %s: %w", from, b.To, err)
		}
	}
	return f.Current(), nil
}

// build prepares what Fire needs; it runs once, after validation found no error. looplab/fsm keeps a
// transition per (event, source state): a handler that states share (an alias) enters the graph once,
// from the first of them, so that the graph is in proportion to the file and not to its aliases.
// Each branch is "event#index" from that state; step fires it from there, which is where it goes
// from any state that has the handler.
func (def *Definition) build() {
	def.known = make(map[string]bool, len(def.Events))
	for name := range def.Events {
		def.known[name] = true
	}
	for _, name := range def.StateOrder {
		s := def.States[name]
		for _, ev := range s.OnOrder {
			def.known[ev] = true
			h := s.On[ev]
			if h.fsmState != "" {
				continue // shared with a state before
			}
			h.fsmState = name
			src := []string{name}
			for _, b := range h.Branches {
				if b.Stays() {
					continue // Fire takes a stay without looplab/fsm: it moves nothing
				}
				b.fsmEvent = ev + "#" + strconv.Itoa(b.Index)
				def.graph = append(def.graph, fsm.EventDesc{Name: b.fsmEvent, Src: src, Dst: b.To})
			}
		}
	}
	graph := def.graph
	initial := def.Initial
	def.fsms.New = func() any { return fsm.NewFSM(initial, graph, nil) }
}

// Timers computes the deadlines of the timers of snap's state, which it entered at snap.EnteredAt,
// sorted by deadline: none earlier than MinTimerDelay after entering. Its `at` expressions have the
// default Limits.
func (def *Definition) Timers(snap Snapshot) ([]Due, error) {
	return def.timers(snap, Limits{}, nil)
}

// timers computes the deadlines within l, or within the budget that the scope of the event entering
// the state has left when there is one.
func (def *Definition) timers(snap Snapshot, l Limits, event guards.Scope) ([]Due, error) {
	st := def.States[snap.State]
	if st == nil || len(st.Timers) == 0 {
		return nil, nil
	}
	var scope guards.Scope
	due := make([]Due, 0, len(st.Timers))
	for _, t := range st.Timers {
		if t.At == nil {
			due = append(due, Due{Event: t.Event, At: snap.EnteredAt.Add(t.After)})
			continue
		}
		if scope == nil {
			v := snap.vars(snap.EnteredAt)
			v.Budget = l.Budget
			if event != nil {
				scope = event.With(v)
			} else {
				scope = guards.NewScope(v)
			}
		}
		at, err := t.At.Time(scope)
		if err != nil {
			return nil, err
		}
		if earliest := snap.EnteredAt.Add(MinTimerDelay); at.Before(earliest) {
			at = earliest // a deadline already past, or imminent, fires a second after entering
		}
		due = append(due, Due{Event: t.Event, At: at})
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].At.Before(due[j].At) })
	return due, nil
}

// vars are the values expressions see of the instance at now, without an event.
func (snap Snapshot) vars(now time.Time) guards.Vars {
	return guards.Vars{Ctx: snap.Context, State: snap.State, Now: now,
		Instance: guards.Instance{ID: snap.ID, Version: snap.Version, CreatedAt: snap.CreatedAt, EnteredAt: snap.EnteredAt, Parent: snap.Parent.ID}}
}

// Start makes the snapshot of a new instance in the initial state, and the timers it arms. ctx is
// loosely typed; fields marked required must be given. Its `at` expressions have the default Limits.
func Start(def *Definition, id string, version int, ctx map[string]any, now time.Time) (Snapshot, []Due, error) {
	return Limits{}.Start(def, id, version, ctx, now)
}

// Start is the package's Start within l.
func (l Limits) Start(def *Definition, id string, version int, ctx map[string]any, now time.Time) (Snapshot, []Due, error) {
	b, err := l.Begin(def, Snapshot{ID: id, Version: version, Context: ctx}, now)
	return b.Snapshot, b.Arm, err
}

// Beginning is a new instance: its snapshot in the initial state, the timers that state arms and
// the children it starts.
type Beginning struct {
	Snapshot
	Arm   []Due
	Start []ChildStart
	Task  Task
}

// Begin makes a new instance of snap's ID, Version, Parent and Depth, its context snap.Context
// (loosely typed: fields marked required must be given, defaults are added), in the initial state
// entered at now.
func (l Limits) Begin(def *Definition, snap Snapshot, now time.Time) (Beginning, error) {
	ctx := snap.Context
	if ctx == nil {
		ctx = map[string]any{}
	}
	v, err := def.Context.Decode(ctx, "", schema.Options{Required: true})
	if err != nil {
		return Beginning{}, &InvalidContextError{Err: err}
	}
	snap.State, snap.Context, snap.CreatedAt, snap.EnteredAt = def.Initial, v.(map[string]any), now, now
	b := Beginning{Snapshot: snap}
	if b.Arm, err = def.timers(snap, l, nil); err != nil {
		return Beginning{}, &ExpressionError{State: def.Initial, Where: "timer at", Err: err}
	}
	if b.Task, err = def.task(snap, l, nil); err != nil {
		return Beginning{}, &ExpressionError{State: def.Initial, Where: "task", Err: err}
	}
	if st := def.States[def.Initial]; len(st.Children) > 0 {
		vars := snap.vars(now)
		vars.Budget = l.Budget
		if b.Start, err = starts(st, snap.Depth, vars, guards.NewScope(vars)); err != nil {
			return Beginning{}, &ExpressionError{State: def.Initial, Where: "children", Err: err}
		}
	}
	return b, nil
}

// Prepare emits the bytecode of every expression of the definition now, rather than on the first
// event that evaluates each: a service calls it after start so that no request pays for it.
func (def *Definition) Prepare() error {
	for _, name := range def.StateOrder {
		s := def.States[name]
		for _, ev := range s.OnOrder {
			for _, b := range s.On[ev].Branches {
				if b.Guard != nil {
					if err := b.Guard.Prepare(); err != nil {
						return err
					}
				}
				for _, a := range b.Set {
					if err := a.Expr.Prepare(); err != nil {
						return err
					}
				}
				for _, m := range b.Send {
					if err := m.To.Prepare(); err != nil {
						return err
					}
					for _, f := range m.Payload {
						if err := f.Expr.Prepare(); err != nil {
							return err
						}
					}
				}
			}
		}
		for _, t := range s.Timers {
			if t.At != nil {
				if err := t.At.Prepare(); err != nil {
					return err
				}
			}
		}
		for _, p := range []*guards.Program{s.Assign, s.DueAt} {
			if p != nil {
				if err := p.Prepare(); err != nil {
					return err
				}
			}
		}
		for _, g := range s.Children {
			progs := []*guards.Program{g.ForEach, g.Count}
			for _, f := range g.Context {
				progs = append(progs, f.Expr)
			}
			for _, p := range progs {
				if p == nil {
					continue
				}
				if err := p.Prepare(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
