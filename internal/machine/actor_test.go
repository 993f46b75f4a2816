package machine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
)

const actorDef = `name: doc
initial: review
context:
  author: string
  approved_by: string
states:
  review:
    on:
      approve:
        - to: done
          allow: [approvers, leads]
          guard: actor.name != ctx.author
          guard_message: four eyes
          set: {approved_by: actor.name}
      comment:
        - to: review
          allow: [leads]
        - {allow: [reviewers]}
      touch:
        set: {approved_by: actor.kind}
  done: {final: true}
`

// TestActorAllow: allow lets the users of its groups take a branch and skips it for the others
// (none left: transition_forbidden, with the groups per branch); timers, messages and the system
// are not subject to it; `actor` is who sends the event.
func TestActorAllow(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("doc.yaml", []byte(actorDef))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	snap := machine.Snapshot{ID: "d-1", Version: 1, State: "review", Context: map[string]any{"author": "ann", "approved_by": ""}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	user := func(name string, groups ...string) machine.Actor {
		return machine.Actor{Name: name, Groups: append([]string{}, groups...), Kind: machine.ActorUser}
	}
	tests := []struct {
		name      string
		actor     machine.Actor
		event     string
		to        string // "" for an error
		forbidden bool
	}{
		{"an approver approves", user("bob", "approvers"), "approve", "done", false},
		{"a lead approves", user("cid", "x", "leads"), "approve", "done", false},
		{"the author is an approver: four eyes", user("ann", "approvers"), "approve", "", false},
		{"a user of no allowed group", user("dan", "sales"), "approve", "", true},
		{"a user of no group", user("eve"), "approve", "", true},
		{"a timer is not subject to allow", machine.Actor{Kind: machine.ActorTimer}, "approve", "done", false},
		{"a message is not subject to allow", machine.Actor{Name: "p-1", Kind: machine.ActorMessage}, "approve", "done", false},
		{"the first branch allowed is taken", user("fay", "reviewers", "leads"), "comment", "review", false},
		{"a later branch allowed is taken", user("gus", "reviewers"), "comment", "review", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := machine.Limits{}.FireAs(def, snap, tt.actor, tt.event, nil, now)
			var tf *machine.TransitionForbiddenError
			switch {
			case tt.forbidden:
				if !errors.As(err, &tf) || len(tf.Branches) != 1 || tf.Branches[0].To != "done" || len(tf.Branches[0].Allow) != 2 {
					t.Fatalf("got %v, want transition_forbidden listing [approvers leads]", err)
				}
			case tt.to == "":
				var gr *machine.GuardRejectedError
				if !errors.As(err, &gr) {
					t.Fatalf("got %v, want guard_rejected", err)
				}
			case err != nil || tr.To != tt.to:
				t.Fatalf("got %+v %v, want to %s", tr, err, tt.to)
			case tt.event == "approve" && tr.ContextAfter["approved_by"] != tt.actor.Name:
				t.Fatalf("approved_by %v, want %q", tr.ContextAfter["approved_by"], tt.actor.Name)
			}
		})
	}
	tr, err := machine.Fire(def, snap, "touch", nil, now) // the system
	if err != nil || tr.ContextAfter["approved_by"] != "system" {
		t.Fatalf("actor.kind of Fire: %+v %v, want system", tr, err)
	}
	x := machine.Limits{}.ExplainAs(def, snap, user("gus", "reviewers"), "comment", nil, now)
	if len(x.Branches) != 2 || x.Branches[0].Allowed || !x.Branches[1].Allowed || !x.Branches[1].Taken {
		t.Fatalf("explain: %+v", x.Branches)
	}
}

func TestActorAllowChecks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, allow, want string }{
		{"empty", "allow: []", `doc.yaml:8:18: error: on.approve in state "review": allow lists no group: name at least one (leave allow out to let every actor take the branch)`},
		{"not a list", "allow: leads", `doc.yaml:8:18: error: on.approve in state "review": allow must be a list, not "leads"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := `name: doc
initial: review
states:
  review:
    on:
      approve:
        - to: done
          ` + tt.allow + `
  done: {final: true}
`
			_, got := diagText("doc.yaml", src)
			diffLines(t, got, []string{tt.want})
		})
	}
}
