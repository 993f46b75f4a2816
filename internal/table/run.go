package table

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Result is the outcome of one case.
type Result struct {
	Case     *Case
	Step     int      // the step the comparison was made after (from 1); 0 when there were none
	Failures []string // "state: expected paid, got created"; none when the case passed
	Trace    []string // what each step did, for -v
}

// Passed reports whether the case held.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// instance is the state of a case as it runs: the snapshot, the virtual clock and the armed timers.
type instance struct {
	def     *machine.Definition
	snap    machine.Snapshot
	clock   time.Time
	pending []machine.Due
	cov     *Coverage
	trace   []string
	// notified lists the webhooks the transitions taken so far notified, in order.
	notified []string
	// sent lists the messages the transitions of the current step sent, in order.
	sent []machine.Message
	// started lists the children the transitions of the current step started.
	started []machine.ChildStart
	actor   machine.Actor // of the case (given.actor)
	task    machine.Task  // of the state it is in
}

// Run runs one case of a table against def, recording what it exercises in cov (which may be nil).
// A migration case moves its instance to def instead; it takes no transition, so cov records nothing.
func Run(def *machine.Definition, c *Case, cov *Coverage) *Result {
	if c.Migration != nil {
		return runMigration(def, c)
	}
	res := &Result{Case: c}
	in, err := start(def, c.Given, cov)
	if err != nil {
		res.Failures = []string{err.Error()}
		return res
	}
	var stepErr error
	for i, s := range c.Steps {
		res.Step = i + 1
		in.sent, in.started = nil, nil
		if s.Event != "" {
			// Timers already due fire first, as the service's scheduler would have fired them by now:
			// an `at` deadline can lie in the past when it is armed.
			actor := in.actor
			if s.Actor != nil {
				actor = *s.Actor
			}
			if stepErr = in.advance(0); stepErr == nil {
				stepErr = in.fire(actor, s.Event, s.Payload, "")
			}
		} else {
			stepErr = in.advance(s.Advance)
		}
		if stepErr != nil {
			break
		}
	}
	res.Trace = in.trace
	res.Failures = in.compare(c.Then, stepErr)
	return res
}

func start(def *machine.Definition, g Given, cov *Coverage) (*instance, error) {
	state := g.State
	if state == "" {
		state = def.Initial
	}
	if def.States[state] == nil {
		return nil, fmt.Errorf("given.state: %q is not a state of %s", state, def.Name)
	}
	ctx, err := def.Context.Decode(orEmpty(g.Ctx), "ctx", schema.Options{})
	if err != nil {
		return nil, fmt.Errorf("given.%v", err)
	}
	snap := machine.Snapshot{ID: "test", Version: 1, State: state, Context: ctx.(map[string]any), CreatedAt: g.Now, EnteredAt: g.Now,
		Parent: g.Parent}
	if g.Parent.ID != "" {
		snap.Depth = 1
	}
	for name, c := range g.Children {
		if def.Groups[name] == nil || def.Groups[name].State != state {
			return nil, fmt.Errorf("given.children: %q is not a child group of state %s", name, state)
		}
		if snap.Children == nil {
			snap.Children = map[string]machine.ChildCounts{}
		}
		snap.Children[name] = c.WithIDs("test", name, 1)
	}
	due, err := def.Timers(snap)
	if err != nil {
		return nil, fmt.Errorf("arming the timers of %s: %v", state, err)
	}
	task, err := def.Task(snap)
	if err != nil {
		return nil, fmt.Errorf("the task of %s: %v", state, err)
	}
	return &instance{def: def, snap: snap, clock: g.Now, pending: due, cov: cov, actor: g.Actor, task: task}, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// fire handles one event, as the service would. An event that is the on_final of a group of the
// state counts as a child's outcome received: the group's final goes up (it is the one being
// handled), as it does when a child's message is delivered.
func (in *instance) fire(actor machine.Actor, event string, payload map[string]any, via string) error {
	if st := in.def.States[in.snap.State]; st != nil {
		for _, g := range st.Children {
			if c, ok := in.snap.Children[g.Name]; ok && g.OnFinal == event && c.Running > 0 {
				c.Final, c.Running = c.Final+1, c.Running-1
				in.snap.Children = maps.Clone(in.snap.Children)
				in.snap.Children[g.Name] = c.WithIDs("test", g.Name, 1)
			}
		}
	}
	t, err := machine.Limits{}.FireAs(in.def, in.snap, actor, event, payload, in.clock)
	in.cov.record(in.def, in.snap.State, event, t, err)
	if err != nil {
		in.tracef("%s%s in %s: %s: %v", via, event, in.snap.State, code.Of(err), err)
		return err
	}
	var hooks []string
	stay := ""
	if t.Stayed {
		stay = " (stay)"
	}
	for _, w := range in.def.Notified(t) {
		hooks = append(hooks, w.Name)
	}
	in.notified = append(in.notified, hooks...)
	in.sent = append(in.sent, t.Sent...)
	if len(hooks) > 0 {
		in.tracef("%s%s: %s -> %s%s (notifies %s)", via, event, t.From, t.To, stay, strings.Join(hooks, ", "))
	} else {
		in.tracef("%s%s: %s -> %s%s", via, event, t.From, t.To, stay)
	}
	in.snap.Context = t.ContextAfter
	if t.Task != nil {
		in.task = *t.Task
	}
	if !t.Stayed { // a stay keeps the state, the time it was entered and its pending timers
		in.snap.State, in.snap.EnteredAt = t.To, in.clock
		in.pending = t.Arm
		in.snap.Children = nil // the groups of the state entered, all running
		for _, s := range t.Start {
			if in.snap.Children == nil {
				in.snap.Children = map[string]machine.ChildCounts{}
			}
			n := len(s.Contexts)
			in.snap.Children[s.Group.Name] = (machine.ChildCounts{Total: n, Running: n}).WithIDs("test", s.Group.Name, 1)
			in.tracef("  starts %d %s children (%s)", n, s.Group.Name, s.Group.Definition)
		}
		in.started = append(in.started, t.Start...)
	}
	return nil
}

// advance moves the clock by d, firing the timers that fall due on the way in deadline order, each at
// its own deadline. A timer's event that is refused (its guard does not hold) has no effect, as in the
// service; an expression that fails stops the step, since the definition is at fault.
func (in *instance) advance(d time.Duration) error {
	until := in.clock.Add(d)
	for len(in.pending) > 0 {
		sort.SliceStable(in.pending, func(i, j int) bool { return in.pending[i].At.Before(in.pending[j].At) })
		next := in.pending[0]
		if next.At.After(until) {
			break
		}
		in.pending = in.pending[1:]
		if next.At.After(in.clock) {
			in.clock = next.At
		}
		err := in.fire(machine.Actor{Kind: machine.ActorTimer, Groups: []string{}}, next.Event, nil, "timer ")
		if code.Of(err) == code.ExpressionFailed {
			return err
		}
	}
	in.clock = until
	return nil
}

func (in *instance) tracef(format string, args ...any) {
	in.trace = append(in.trace, in.clock.Format(time.RFC3339)+" "+fmt.Sprintf(format, args...))
}

// compare checks the outcome against then.
func (in *instance) compare(then Then, stepErr error) []string {
	var fails []string
	code := code.Of(stepErr)
	switch {
	case then.Error != nil && stepErr == nil:
		fails = append(fails, fmt.Sprintf("error: expected %s, got none (state %s)", *then.Error, in.snap.State))
	case then.Error != nil && code != *then.Error:
		fails = append(fails, fmt.Sprintf("error: expected %s, got %s: %v", *then.Error, orText(code), stepErr))
	case then.Error == nil && stepErr != nil:
		fails = append(fails, fmt.Sprintf("error: expected none, got %s: %v", orText(code), stepErr))
	}
	if then.State != nil && *then.State != in.snap.State {
		if in.def.States[*then.State] == nil {
			fails = append(fails, fmt.Sprintf("then.state: %q is not a state of %s (got %s)", *then.State, in.def.Name, in.snap.State))
		} else {
			fails = append(fails, fmt.Sprintf("state: expected %s, got %s", *then.State, in.snap.State))
		}
	}
	if then.Final != nil && *then.Final != in.def.Final(in.snap.State) {
		fails = append(fails, fmt.Sprintf("final: expected %v, got %v (state %s)", *then.Final, !*then.Final, in.snap.State))
	}
	if then.Ctx != nil {
		fails = append(fails, subset(in.def.Context, then.Ctx, in.snap.Context, "ctx")...)
	}
	if then.Notified != nil {
		fails = append(fails, in.compareNotified(*then.Notified)...)
	}
	if then.Sent != nil {
		fails = append(fails, compareSent(*then.Sent, in.sent)...)
	}
	if then.Children != nil {
		fails = append(fails, in.compareStarted(then.Children)...)
	}
	if then.Assignees != nil && !slices.Equal(*then.Assignees, in.task.Assignees) {
		fails = append(fails, fmt.Sprintf("assignees: expected %q, got %q", *then.Assignees, orNone(in.task.Assignees)))
	}
	if then.DueAt != nil && !then.DueAt.Equal(in.task.DueAt) {
		fails = append(fails, fmt.Sprintf("due_at: expected %s, got %s", timeOrNone(*then.DueAt), timeOrNone(in.task.DueAt)))
	}
	return fails
}

func orNone(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func timeOrNone(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// compareStarted checks the children the last step started against want, group by group: every
// group of want, and no other.
func (in *instance) compareStarted(want map[string]StartedWant) []string {
	var fails []string
	got := map[string]machine.ChildStart{}
	for _, s := range in.started {
		got[s.Group.Name] = s
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := want[name]
		if in.def.Groups[name] == nil {
			fails = append(fails, fmt.Sprintf("then.children: %q is not a child group of %s", name, in.def.Name))
			continue
		}
		g := got[name]
		if len(g.Contexts) != w.Count {
			fails = append(fails, fmt.Sprintf("children.%s: expected %d started, got %d", name, w.Count, len(g.Contexts)))
			continue
		}
		for i, ctx := range w.Ctx {
			for _, k := range slices.Sorted(maps.Keys(ctx)) {
				if gv, ok := g.Contexts[i][k]; !ok || asJSON(gv) != asJSON(ctx[k]) {
					fails = append(fails, fmt.Sprintf("children.%s[%d].ctx.%s: expected %s, got %s", name, i, k, asJSON(ctx[k]), asJSON(gv)))
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			fails = append(fails, fmt.Sprintf("children: %s started %d children, which then.children does not name", name, len(got[name].Contexts)))
		}
	}
	return fails
}

// compareSent checks the messages the last step sent against want: the same count, each with the
// same target and event and a payload of which want's is a subset (values compared as JSON).
func compareSent(want []Sent, got []machine.Message) []string {
	if len(want) != len(got) {
		return []string{fmt.Sprintf("sent: expected %d messages, got %d: %s", len(want), len(got), showSent(got))}
	}
	var fails []string
	for i, w := range want {
		g, p := got[i], fmt.Sprintf("sent[%d]", i)
		if w.To != g.To || w.Event != g.Event {
			fails = append(fails, fmt.Sprintf("%s: expected %s to %s, got %s to %s", p, w.Event, w.To, g.Event, g.To))
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(w.Payload)) {
			gv, ok := g.Payload[k]
			if !ok {
				fails = append(fails, fmt.Sprintf("%s.payload.%s: expected %s, got none", p, k, asJSON(w.Payload[k])))
			} else if asJSON(w.Payload[k]) != asJSON(gv) {
				fails = append(fails, fmt.Sprintf("%s.payload.%s: expected %s, got %s", p, k, asJSON(w.Payload[k]), asJSON(gv)))
			}
		}
	}
	return fails
}

// asJSON is a value as JSON with its numbers normalized (1 and 1.0 are one number), for comparing a
// value written in YAML with one an expression computed.
func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var n any
	if json.Unmarshal(b, &n) == nil {
		b, _ = json.Marshal(n)
	}
	return string(b)
}

func showSent(sent []machine.Message) string {
	parts := make([]string, len(sent))
	for i, m := range sent {
		parts[i] = m.Event + " to " + m.To
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// compareNotified checks the webhooks the case's transitions notified against want.
func (in *instance) compareNotified(want []string) []string {
	var fails []string
	for _, name := range want {
		if !slices.ContainsFunc(in.def.Notify, func(w *machine.Webhook) bool { return w.Name == name }) {
			fails = append(fails, fmt.Sprintf("then.notified: %q is not a webhook of %s (its notify section names %s)",
				name, in.def.Name, webhookNames(in.def)))
		}
	}
	if fails == nil && !slices.Equal(want, in.notified) {
		fails = append(fails, fmt.Sprintf("notified: expected %s, got %s", showNames(want), showNames(in.notified)))
	}
	return fails
}

func webhookNames(def *machine.Definition) string {
	names := make([]string, len(def.Notify))
	for i, w := range def.Notify {
		names[i] = w.Name
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// showNames formats a list of webhook names as YAML would: [a, b].
func showNames(names []string) string { return "[" + strings.Join(names, ", ") + "]" }

// runMigration moves the case's instance of the older version to def by def's migrate rules, at
// given.now, as a migration would, and compares where it goes (or why it stays) with then.
func runMigration(def *machine.Definition, c *Case) *Result {
	res := &Result{Case: c}
	old := c.Migration.Old
	if old == nil {
		res.Failures = []string{fmt.Sprintf("from: the older version %s is not loaded (table.Load loads it)", c.Migration.From)}
		return res
	}
	state := c.Given.State
	if state == "" {
		state = old.Initial
	}
	switch {
	case old.States[state] == nil:
		res.Failures = []string{fmt.Sprintf("given.state: %q is not a state of %s in %s", state, old.Name, c.Migration.From)}
		return res
	case old.Final(state):
		res.Failures = []string{fmt.Sprintf("given.state: %q is final in %s: only running instances migrate", state, c.Migration.From)}
		return res
	}
	ctx, err := old.Context.Decode(orEmpty(c.Given.Ctx), "ctx", schema.Options{})
	if err != nil {
		res.Failures = []string{fmt.Sprintf("given.%v (the context of %s)", err, c.Migration.From)}
		return res
	}
	now := c.Given.Now
	snap := machine.Snapshot{ID: "test", Version: 1, State: state, Context: ctx.(map[string]any), CreatedAt: now, EnteredAt: now}
	out := migration.Compile(old, def).Decide(snap, now)
	at := now.Format(time.RFC3339) + " "
	if out.Stranded() {
		res.Trace = []string{fmt.Sprintf("%smigrate from %s: %s stranded: %s: %s", at, c.Migration.From, state, out.Reason, out.Detail)}
	} else {
		res.Trace = []string{fmt.Sprintf("%smigrate from %s: %s -> %s", at, c.Migration.From, state, out.To)}
	}
	res.Failures = compareMigration(def, c.Then, state, out)
	return res
}

// compareMigration checks where an instance went (or why it stayed) against then.
func compareMigration(def *machine.Definition, then Then, from string, out migration.Outcome) []string {
	wantStranded := then.Stranded != nil && *then.Stranded || then.Reason != nil
	switch {
	case wantStranded && !out.Stranded():
		return []string{fmt.Sprintf("stranded: expected true, got false (%s moved to %s)", from, out.To)}
	case !wantStranded && out.Stranded():
		return []string{fmt.Sprintf("stranded: expected false, got true (%s: %s)", out.Reason, out.Detail)}
	case wantStranded:
		if then.Reason != nil && *then.Reason != out.Reason {
			return []string{fmt.Sprintf("reason: expected %s, got %s: %s", *then.Reason, out.Reason, out.Detail)}
		}
		return nil
	}
	var fails []string
	if then.State != nil && *then.State != out.To {
		if def.States[*then.State] == nil {
			fails = append(fails, fmt.Sprintf("then.state: %q is not a state of %s (got %s)", *then.State, def.Name, out.To))
		} else {
			fails = append(fails, fmt.Sprintf("state: expected %s, got %s", *then.State, out.To))
		}
	}
	if then.Ctx != nil {
		fails = append(fails, subset(def.Context, then.Ctx, out.Context, "ctx")...)
	}
	return fails
}

func orText(code string) string {
	if code == "" {
		return "an error without code"
	}
	return code
}

// subset compares the listed fields of want (loosely typed) with got (typed), into nested objects.
func subset(t *schema.Type, want, got map[string]any, path string) []string {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var fails []string
	for _, k := range keys {
		p := path + "." + k
		f := t.Field(k)
		if f == nil {
			fails = append(fails, fmt.Sprintf("%s: the context has no such field", p))
			continue
		}
		w, g := want[k], got[k]
		if wm, ok := w.(map[string]any); ok && f.Type.Kind == schema.Object {
			fails = append(fails, subset(f.Type, wm, g.(map[string]any), p)...)
			continue
		}
		typed, err := f.Type.Decode(w, p, schema.Options{})
		if err != nil {
			var de *schema.DecodeError
			if errors.As(err, &de) {
				fails = append(fails, fmt.Sprintf("%s: the expected value does not fit: %s", de.Path, de.Message))
			} else {
				fails = append(fails, err.Error())
			}
			continue
		}
		if !schema.Equal(typed, g) {
			fails = append(fails, fmt.Sprintf("%s: expected %s, got %s", p, show(typed), show(g)))
		}
	}
	return fails
}
