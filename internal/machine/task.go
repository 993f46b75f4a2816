package machine

import (
	"fmt"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Tasks (docs/definitions.md, "Tasks"): a state may say who should act in it (`assign`) and by
// when (`due`). An instance gets its assignees and due date when it enters the state, and loses
// them when it leaves; a stay keeps them, and so does a migration, which does not enter a state.

// GroupPrefix marks an assignee that names a group: "group:finance" is every member of finance.
const GroupPrefix = "group:"

// MaxAssignees bounds the assignees of one instance: a list longer than this is an error where it
// is computed (expression_failed) or given (POST /v1/instances/{id}/assign), never a row that
// grows with its input.
const MaxAssignees = 100

// Task is what an instance must have done in its state: by whom, and by when.
type Task struct {
	Assignees []string  // user names and "group:NAME"s, in order, without repeats; nil for none
	DueAt     time.Time // zero for none
}

// Empty reports whether the task names nobody and no date: a state without `assign` or `due`.
func (t Task) Empty() bool { return len(t.Assignees) == 0 && t.DueAt.IsZero() }

// Assigned reports whether the task names a, by name or by one of a's groups.
func (t Task) Assigned(a Actor) bool {
	for _, s := range t.Assignees {
		if s == a.Name && a.Name != "" {
			return true
		}
		if g, ok := cutGroup(s); ok && slices.Contains(a.Groups, g) {
			return true
		}
	}
	return false
}

// Overdue reports whether the task has a due date before now.
func (t Task) Overdue(now time.Time) bool { return !t.DueAt.IsZero() && t.DueAt.Before(now) }

// cutGroup returns the group an assignee names, if it names one.
func cutGroup(s string) (string, bool) {
	if len(s) > len(GroupPrefix) && s[:len(GroupPrefix)] == GroupPrefix {
		return s[len(GroupPrefix):], true
	}
	return "", false
}

// Assignees checks and normalizes a list of assignees from outside (the API's assign, an
// expression's value): each 1 to ident.MaxLength characters without a control character, "group:"
// followed by a group's name when it names one; repeats dropped; at most MaxAssignees.
func Assignees(list []string) ([]string, error) {
	if len(list) > MaxAssignees {
		return nil, fmt.Errorf("%d assignees: the most is %d", len(list), MaxAssignees)
	}
	var out []string
	for i, s := range list {
		if err := ident.Check(fmt.Sprintf("assignee %d", i+1), s); err != nil {
			return nil, err
		}
		if s == GroupPrefix {
			return nil, fmt.Errorf("assignee %d: %q names no group (write group:NAME)", i+1, s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Task computes the task of the state snap entered at snap.EnteredAt, within the default Limits.
func (def *Definition) Task(snap Snapshot) (Task, error) { return def.task(snap, Limits{}, nil) }

// task computes the task of the state snap entered at snap.EnteredAt (its context the one after
// the transition), within the budget scope has left (nil: within l).
func (def *Definition) task(snap Snapshot, l Limits, event guards.Scope) (Task, error) {
	st := def.States[snap.State]
	if st == nil || (st.Assign == nil && st.DueAfter == 0 && st.DueAt == nil) {
		return Task{}, nil
	}
	var t Task
	if st.DueAfter > 0 {
		t.DueAt = snap.EnteredAt.Add(st.DueAfter)
	}
	if st.Assign == nil && st.DueAt == nil {
		return t, nil
	}
	v := snap.vars(snap.EnteredAt)
	v.Budget = l.Budget
	scope := guards.NewScope(v)
	if event != nil {
		scope = event.With(v)
	}
	if st.Assign != nil {
		val, err := st.Assign.Value(scope)
		if err != nil {
			return Task{}, fmt.Errorf("assign: %w", err)
		}
		var list []string
		switch val := val.(type) {
		case string:
			list = []string{val}
		case []any:
			for _, x := range val {
				s, _ := x.(string) // typed [string] at load
				list = append(list, s)
			}
		case nil: // an unset optional list: nobody
		default:
			return Task{}, fmt.Errorf("assign: a %T, want a string or a list of strings", val)
		}
		if t.Assignees, err = Assignees(list); err != nil {
			return Task{}, fmt.Errorf("assign: %w", err)
		}
	}
	if st.DueAt != nil {
		at, err := st.DueAt.Time(scope)
		if err != nil {
			return Task{}, fmt.Errorf("due: %w", err)
		}
		if at.Before(snap.EnteredAt) {
			return Task{}, fmt.Errorf("due: %s is in the past (the state is entered at %s)",
				at.UTC().Format(time.RFC3339), snap.EnteredAt.UTC().Format(time.RFC3339))
		}
		t.DueAt = at
	}
	return t, nil
}

// taskKeys parses a state's `assign` and `due`.
func (d *parser) taskKeys(def *Definition, s *State, spec source.Fields) {
	env := guards.Env{Context: def.Context, NoEvent: true}
	if e, ok := spec.Get("assign"); ok {
		if s.Final {
			d.Errorf(source.At(e.KeyNode), "final state %q cannot have `assign`: nothing is left to do in it", s.Name)
		}
		if src, ok := d.Scalar(e.Val, "assign"); ok {
			s.Assign = d.stringOrList(e.Val, src, env, "assign", "a string or a list of strings (user names, or group:NAME)")
		}
	}
	if e, ok := spec.Get("due"); ok {
		if s.Final {
			d.Errorf(source.At(e.KeyNode), "final state %q cannot have `due`: nothing is left to do in it", s.Name)
		}
		if src, ok := d.Scalar(e.Val, "due"); ok {
			s.DueAfter, s.DueAt = d.due(e.Val, src, env)
		}
	}
}

// due parses `due`: a duration after entering the state, or a time expression.
func (d *parser) due(n *yaml.Node, src string, env guards.Env) (time.Duration, *guards.Program) {
	if dur, err := schema.ParseDuration(src); err == nil {
		if dur <= 0 {
			d.Errorf(source.At(n), "due: %q is in the past: write a positive duration after entering the state (e.g. 48h or 2d) or a time expression", src)
		}
		return dur, nil
	}
	prog, err := d.compile(exprKey{src: src, env: env, kind: 't'})
	if err != nil {
		d.exprError(n, "due (a duration such as 48h or 2d, or an expression of type time)", err)
	}
	return 0, prog
}
