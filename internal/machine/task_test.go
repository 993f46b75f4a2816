package machine_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
)

const taskDef = `name: claim
initial: triage
context:
  reviewer: string
  reviewers: [string]
  deadline: time
states:
  triage:
    assign: '"group:triage"'
    due: 2h
    on:
      review: review
      panel: panel
      note: {}
      sleep: waiting
  review:
    assign: ctx.reviewer
    due: ctx.deadline
    on:
      again: review
      done: closed
  panel:
    assign: concat(ctx.reviewers, ["group:leads"])
    on:
      done: closed
  waiting:
    on:
      done: closed
  closed: {final: true}
`

// TestTasks: an instance gets the task of each state it enters (assign evaluated on the context
// after the transition, due from when it enters), keeps it on a stay, loses it in a state without
// one; assignees are checked and deduplicated; a due date in the past is an expression_failed.
func TestTasks(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("claim.yaml", []byte(taskDef))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	deadline := now.Add(72 * time.Hour)
	b, err := machine.Limits{}.Begin(def, machine.Snapshot{ID: "c-1", Version: 1,
		Context: map[string]any{"reviewer": "ann", "deadline": deadline.Format(time.RFC3339)}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := (machine.Task{Assignees: []string{"group:triage"}, DueAt: now.Add(2 * time.Hour)}); !reflect.DeepEqual(b.Task, want) {
		t.Fatalf("the initial state's task: %+v, want %+v", b.Task, want)
	}
	fire := func(snap machine.Snapshot, event string) (*machine.Transition, error) {
		return machine.Limits{}.FireAs(def, snap, machine.TestActor, event, nil, now.Add(time.Hour))
	}
	tests := []struct {
		name    string
		ctx     map[string]any
		event   string
		want    *machine.Task // nil: the task is kept
		wantErr string
	}{
		{"a stay keeps the task", nil, "note", nil, ""},
		{"assign from the context, due from an expression", nil, "review",
			&machine.Task{Assignees: []string{"ann"}, DueAt: deadline}, ""},
		{"a list, repeats dropped", map[string]any{"reviewers": []any{"bo", "cy", "bo"}}, "panel",
			&machine.Task{Assignees: []string{"bo", "cy", "group:leads"}}, ""},
		{"a state without a task clears it", nil, "sleep", &machine.Task{}, ""},
		{"an empty assignee", map[string]any{"reviewer": ""}, "review", nil, "assign: assignee 1 is empty"},
		{"a control character", map[string]any{"reviewer": "ann\x07"}, "review", nil, "assign: assignee 1 contains a control character"},
		{"a group without a name", map[string]any{"reviewers": []any{"group:"}}, "panel", nil, `names no group`},
		{"too many", map[string]any{"reviewers": manyNames(101)}, "panel", nil, "the most is 100"},
		{"due in the past", map[string]any{"deadline": now.Add(-time.Hour).Format(time.RFC3339)}, "review", nil, "is in the past"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := b.Snapshot
			snap.Context = map[string]any{}
			for k, v := range b.Snapshot.Context {
				snap.Context[k] = v
			}
			for k, v := range tt.ctx {
				snap.Context[k] = v
				if k == "deadline" {
					snap.Context[k], _ = time.Parse(time.RFC3339, v.(string))
				}
			}
			tr, err := fire(snap, tt.event)
			if tt.wantErr != "" {
				var ee *machine.ExpressionError
				if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an expression error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tr.Task, tt.want) {
				t.Fatalf("task %+v, want %+v", tr.Task, tt.want)
			}
		})
	}
}

func manyNames(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = "user" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return out
}

// TestTaskLoadErrors: a wrong `assign` or `due` is a load error at its place, naming what is wrong.
func TestTaskLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, state, want string }{
		{"assign of the wrong type", "assign: ctx.n", "assign: expression is of type int, want a string or a list of strings"},
		{"assign of a list of numbers", "assign: '[1, 2]'", "assign: expression is of type"},
		{"assign naming nothing known", "assign: ctx.nobody", "assign:"},
		{"due of the wrong type", "due: ctx.n", "due"},
		{"due a negative duration", "due: -48h", `due: "-48h" is in the past`},
		{"due zero", "due: 0s", `due: "0s" is in the past`},
		{"due not a duration or expression", "due: soon please", "due"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := "name: x\ninitial: a\ncontext:\n  n: int\nstates:\n  a:\n    " + tt.state + "\n    on:\n      go: b\n  b: {final: true}\n"
			_, lines := diagText("x.yaml", src)
			if got := strings.Join(lines, "\n"); !strings.Contains(got, tt.want) || !strings.Contains(got, "x.yaml:7:") {
				t.Fatalf("got %s, want an error at line 7 containing %q", got, tt.want)
			}
		})
	}
	src := "name: x\ninitial: a\nstates:\n  a:\n    on:\n      go: b\n  b:\n    final: true\n    assign: '\"ann\"'\n"
	if _, lines := diagText("x.yaml", src); !strings.Contains(strings.Join(lines, "\n"), "final state \"b\" cannot have `assign`") {
		t.Fatalf("a final state with assign: %v", lines)
	}
}
