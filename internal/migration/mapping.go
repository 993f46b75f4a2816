// Package migration is the pure part of moving running instances from one version of a definition
// to another, by the `migrate` rules of the newer version (definitions.md, "Migration rules"):
// definitions in, decisions out, like internal/machine. Compile makes a Mapping from one version to
// another; Mapping.Decide decides where one instance goes, Mapping.Group how all the instances of one
// state go when their data does not matter; Check finds the rules that cannot work when a version is
// registered. It imports no database: the executor that applies these decisions to the live
// population, in batches, in transactions, is internal/service (migrate_plan.go, migrate_run.go).
package migration

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Why an instance cannot move (api.md): it stays on its version, stranded.
const (
	StateUnmapped  = "state_unmapped"  // its state is gone from the new version and no rule maps it
	RuleFailed     = "rule_failed"     // a rule or expression failed, or no branch of its rule holds
	ContextInvalid = "context_invalid" // a value of its context does not fit the new schema
)

// Mapping is how instances of one version (From) move to another (To): the rules of To.Migrate
// compiled against From's context. It is immutable and safe for concurrent use.
type Mapping struct {
	From, To  *machine.Definition
	ToVersion int                 // To's number, for instance.version in its timers' expressions (0 when unknown)
	states    map[string][]branch // From's state -> the ordered branches of its rule
	context   []assignment
	rewrite   *Rewrite // nil when the new context needs an evaluation per instance
	err       error    // a rule or expression that does not compile against From: nothing can move
}

// Rewrite is how the new context follows from the old one when that needs no evaluation per
// instance: no migrate.context rule, and every field both versions have is of the same type. The new
// context is then Defaults (every field of To with its initial value) with the old context's values
// over it, less Drop (the fields To lacks): what newContext computes for a context that fits From,
// in a form SQL can apply to many instances at once.
type Rewrite struct {
	Defaults []byte // a JSON object
	Drop     []string
	// The shape SQL checks a stored context against before it moves it: From's top-level fields
	// (Fields) and the JSON type each is stored as (Kinds: a jsonb_typeof name, "integer", or "any").
	// A context of another shape (an unknown field, a value of the wrong JSON type: written outside
	// fsmd) is decided in Go like the guarded ones, and stranded as context_invalid if it does not fit.
	Fields, Kinds []string
	// Nullable says, for each of Fields, whether null is also of its shape (an optional field).
	Nullable []bool
}

// jsonKinds is the JSON type a value of each kind is stored as.
var jsonKinds = map[schema.Kind]string{schema.Any: "any", schema.String: "string", schema.Int: "integer",
	schema.Float: "number", schema.Bool: "boolean", schema.Time: "string", schema.Duration: "string",
	schema.List: "array", schema.Object: "object"}

type branch struct {
	to     string
	guard  *guards.Program // nil: unguarded
	source string
}

type assignment struct {
	path []string
	prog *guards.Program
}

// Compile compiles To's migrate rules for instances of From. A rule that cannot compile against
// From (a guard that is not bool there, a field From lacks) does not fail here: every instance of
// From is then stranded by it with reason rule_failed, as the plan shows.
func Compile(from, to *machine.Definition) *Mapping {
	m := &Mapping{From: from, To: to, states: map[string][]branch{}}
	env := guards.Env{Context: from.Context, NoEvent: true}
	var errs []error
	if to.Migrate != nil {
		// In name order, so that Err (and the Detail of every stranded instance) is the same on
		// every run: the rules are a map.
		for _, name := range slices.Sorted(maps.Keys(to.Migrate.States)) {
			rule := to.Migrate.States[name]
			for _, b := range rule.Branches {
				br := branch{to: b.To, source: b.Guard}
				if b.Guard != "" {
					p, err := guards.CompileGuard(b.Guard, env)
					if err != nil {
						errs = append(errs, fmt.Errorf("the guard of the rule for state %q (%s): %w", name, b.Guard, err))
					}
					br.guard = p
				}
				m.states[name] = append(m.states[name], br)
			}
		}
		for _, a := range to.Migrate.Context {
			f := to.Context.Path(a.Path)
			if f == nil { // validation refuses this; stay safe on a definition built by hand
				errs = append(errs, fmt.Errorf("migrate context: the context has no field %q", strings.Join(a.Path, ".")))
				continue
			}
			p, err := guards.CompileValue(a.Expr, env, f.Type)
			if err != nil {
				errs = append(errs, fmt.Errorf("migrate context %s (%s): %w", strings.Join(a.Path, "."), a.Expr, err))
				continue
			}
			m.context = append(m.context, assignment{path: a.Path, prog: p})
		}
	}
	m.err = errors.Join(errs...)
	m.rewrite = rewriteOf(from, to)
	return m
}

// rewriteOf is the Rewrite from from's context to to's, or nil when there is none.
func rewriteOf(from, to *machine.Definition) *Rewrite {
	if to.Migrate != nil && len(to.Migrate.Context) > 0 {
		return nil
	}
	defaults := make(map[string]any, len(to.Context.Fields))
	for _, f := range to.Context.Fields {
		if old := from.Context.Field(f.Name); old != nil && !schema.Identical(old.Type, f.Type) {
			return nil // the old value may not fit: each instance's is checked
		}
		defaults[f.Name] = schema.Clone(f.Type.Zero())
		if f.HasDefault {
			defaults[f.Name] = schema.Clone(f.Default)
		}
	}
	b, err := json.Marshal(schema.Encode(defaults))
	if err != nil {
		return nil
	}
	r := &Rewrite{Defaults: b, Drop: []string{}, Fields: []string{}, Kinds: []string{}}
	for _, f := range from.Context.Fields {
		if to.Context.Field(f.Name) == nil {
			r.Drop = append(r.Drop, f.Name)
		}
		kind, ok := jsonKinds[f.Type.Kind]
		if !ok {
			return nil // a kind SQL cannot check: each instance's context is checked in Go
		}
		r.Fields, r.Kinds = append(r.Fields, f.Name), append(r.Kinds, kind)
		r.Nullable = append(r.Nullable, f.Type.Optional) // its null is of its shape: SQL moves it too
	}
	return r
}

// Rewrite is the context's Rewrite, or nil when each instance's new context must be evaluated.
func (m *Mapping) Rewrite() *Rewrite { return m.rewrite }

// MaxText bounds the text of a stored context that SQL may move with this rewrite: the bound of a
// context less the defaults the rewrite adds (PostgreSQL's text of a context is never shorter than
// its JSON as measured), so that SQL never moves a context past schema.MaxContextSize. A longer one
// is decided by Decide, exactly, and stranded as context_invalid when it would be over.
func (r *Rewrite) MaxText() int { return max(1, schema.MaxContextSize-len(r.Defaults)) }

// Err is the compile error of the rules for From, if any: every instance of From is stranded by it.
func (m *Mapping) Err() error { return m.err }

// Outcome is where one instance goes: To's state and context, or why it stays.
type Outcome struct {
	To      string         // the new state; "" when stranded
	Context map[string]any // the new context, typed by To's schema
	Timers  []machine.Due  // the timers of the new state, from when the instance entered its state
	Reason  string         // "" when it moves; StateUnmapped, RuleFailed or ContextInvalid
	Detail  string         // what failed, for people
}

// Stranded reports whether the instance stays on its version.
func (o Outcome) Stranded() bool { return o.Reason != "" }

// Decide computes where a running instance of From goes, with now as expressions' `now`. snap's context
// is typed by From's schema.
func (m *Mapping) Decide(snap machine.Snapshot, now time.Time) Outcome {
	if m.err != nil {
		return Outcome{Reason: RuleFailed, Detail: m.err.Error()}
	}
	scope := guards.NewScope(guards.Vars{Ctx: snap.Context, State: snap.State, Now: now,
		Instance: guards.Instance{ID: snap.ID, Version: snap.Version, CreatedAt: snap.CreatedAt, EnteredAt: snap.EnteredAt}})
	to, out := m.state(snap.State, scope)
	if out.Stranded() {
		return out
	}
	ctx, out := m.newContext(snap.Context, scope)
	if out.Stranded() {
		return out
	}
	// The new state's timers replace the old one's, counted from when the instance entered its
	// state: a migration does not re-enter it.
	due, err := m.To.Timers(machine.Snapshot{ID: snap.ID, Version: m.ToVersion, State: to, Context: ctx,
		CreatedAt: snap.CreatedAt, EnteredAt: snap.EnteredAt})
	if err != nil {
		return Outcome{Reason: RuleFailed, Detail: fmt.Sprintf("a timer of state %q: %v", to, err)}
	}
	return Outcome{To: to, Context: ctx, Timers: due}
}

// Group is how the running instances of one state of From move, decided once for all of them:
// none can move (Stranded), all go to one state with nothing evaluated per instance (Together), or
// neither: then each instance's data decides (Decide).
type Group struct {
	// Reason and Detail: none of them can move, whatever its data (StateUnmapped or RuleFailed).
	Reason, Detail string
	// Together: all go to To, their contexts rewritten by the Mapping's Rewrite and their timers
	// replaced by Timers, counted from when each entered its state: what SQL can apply to a whole
	// batch at once.
	Together bool
	To       string
	Timers   []Delay
}

// Stranded reports whether none of the group's instances can move.
func (g Group) Stranded() bool { return g.Reason != "" }

// Delay is a timer that fires a fixed time after its state was entered.
type Delay struct {
	Event string
	After time.Duration
}

// Group decides how the running instances of From in state move.
func (m *Mapping) Group(state string) Group {
	if m.err != nil {
		return Group{Reason: RuleFailed, Detail: m.err.Error()}
	}
	to, ok := m.Target(state)
	switch {
	case ok && m.rewrite != nil:
		if timers, ok := m.delays(to); ok {
			return Group{Together: true, To: to, Timers: timers}
		}
	case !ok && m.unmapped(state):
		return Group{Reason: StateUnmapped, Detail: unmappedDetail(state)}
	}
	return Group{}
}

// delays are the timers of state when each fires a fixed time after the state was entered (which
// SQL can count from entered_at); ok is false when one is computed by an expression.
func (m *Mapping) delays(state string) (timers []Delay, ok bool) {
	st := m.To.States[state]
	if st == nil {
		return nil, false
	}
	timers = []Delay{}
	for _, t := range st.Timers {
		if t.At != nil {
			return nil, false
		}
		timers = append(timers, Delay{Event: t.Event, After: t.After})
	}
	return timers, true
}

// Target is the state an instance in state goes to when no rule of it has a guard: ok false when
// the rule is guarded (the instance's data decides) or the state is unmapped. Group builds on it.
func (m *Mapping) Target(state string) (to string, ok bool) {
	if m.err != nil {
		return "", false
	}
	rule, ok := m.states[state]
	if !ok {
		if m.To.States[state] != nil {
			return state, true
		}
		return "", false
	}
	if rule[0].guard != nil {
		return "", false
	}
	return rule[0].to, true
}

// unmapped reports whether instances in state have nowhere to go: the new version lacks it and no
// rule maps it.
func (m *Mapping) unmapped(state string) bool {
	_, ruled := m.states[state]
	return !ruled && m.To.States[state] == nil
}

func unmappedDetail(state string) string {
	return fmt.Sprintf("state %q is gone from the new version and no migrate rule maps it", state)
}

// state applies the rule of an old state, or keeps a name that still exists.
func (m *Mapping) state(from string, scope guards.Scope) (string, Outcome) {
	rule, ok := m.states[from]
	if !ok {
		if m.To.States[from] != nil {
			return from, Outcome{}
		}
		return "", Outcome{Reason: StateUnmapped, Detail: unmappedDetail(from)}
	}
	for _, b := range rule {
		if b.guard == nil {
			return b.to, Outcome{}
		}
		ok, err := b.guard.Bool(scope)
		if err != nil {
			return "", Outcome{Reason: RuleFailed, Detail: fmt.Sprintf("the guard of the rule for state %q (%s): %v", from, b.source, err)}
		}
		if ok {
			return b.to, Outcome{}
		}
	}
	return "", Outcome{Reason: RuleFailed, Detail: fmt.Sprintf("no branch of the rule for state %q holds", from)}
}

// newContext builds the context in To's schema: every field To declares takes the old value where
// the name exists and the value fits the new type, else its default; fields To lacks are dropped;
// then the migrate.context expressions, evaluated on the old context, set theirs. A kept value that
// no longer fits its field, with no expression to replace it, is context_invalid: fsmd does not
// silently swap data for a default.
func (m *Mapping) newContext(old map[string]any, scope guards.Scope) (map[string]any, Outcome) {
	set := map[string]bool{}
	values := make([]any, len(m.context))
	for i, a := range m.context {
		v, err := a.prog.Value(scope)
		if err != nil {
			return nil, Outcome{Reason: RuleFailed, Detail: fmt.Sprintf("migrate context %s: %v", strings.Join(a.path, "."), err)}
		}
		values[i] = v
		set[strings.Join(a.path, ".")] = true
	}
	ctx, err := carry(m.To.Context, old, "", set)
	if err != nil {
		return nil, Outcome{Reason: ContextInvalid, Detail: err.Error()}
	}
	for i, a := range m.context {
		obj := ctx
		for _, name := range a.path[:len(a.path)-1] {
			inner, _ := obj[name].(map[string]any)
			if inner == nil {
				inner = map[string]any{}
				obj[name] = inner
			}
			obj = inner
		}
		obj[a.path[len(a.path)-1]] = values[i]
	}
	typed, err := m.To.Context.Decode(ctx, "ctx", schema.Options{})
	if err != nil {
		return nil, Outcome{Reason: ContextInvalid, Detail: err.Error()}
	}
	// A context that its rules grow past the bound of a context stays where it is.
	if _, err := schema.CheckContext(typed.(map[string]any)); err != nil {
		return nil, Outcome{Reason: ContextInvalid, Detail: err.Error()}
	}
	return typed.(map[string]any), Outcome{}
}

// carry takes from old the fields of t (an object type), nested objects field by field; a field old
// lacks takes its default. Paths in replaced are set by expressions afterwards: their old values are
// not checked.
func carry(t *schema.Type, old map[string]any, prefix string, replaced map[string]bool) (map[string]any, error) {
	out := make(map[string]any, len(t.Fields))
	for _, f := range t.Fields {
		path := f.Name
		if prefix != "" {
			path = prefix + "." + f.Name
		}
		v, ok := old[f.Name]
		switch {
		case !ok:
			out[f.Name] = schema.Clone(f.Type.Zero())
			if f.HasDefault {
				out[f.Name] = schema.Clone(f.Default)
			}
		case replaced[path]:
			// An expression sets the whole value, a nested object too: what the old value held,
			// fitting or not, is not looked at.
		case f.Type.Kind == schema.Object:
			inner, isObj := v.(map[string]any)
			if !isObj {
				return nil, fmt.Errorf("ctx.%s: the old value is not an object", path)
			}
			c, err := carry(f.Type, inner, path, replaced)
			if err != nil {
				return nil, err
			}
			out[f.Name] = c
		default:
			typed, err := f.Type.Decode(schema.Clone(v), "ctx."+path, schema.Options{})
			if err != nil {
				return nil, fmt.Errorf("%w (add a migrate context rule for %s)", err, path)
			}
			out[f.Name] = typed
		}
	}
	return out, nil
}
