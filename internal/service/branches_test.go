package service_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/service"
)

// TestDefinitionBranches: each state of a definition's answer lists its handlers' branches, event
// by event and in order: where each leads (a stay: the state itself) and the groups its allow
// names, absent when every actor may take it. A client offers an event when one branch allows the
// caller.
func TestDefinitionBranches(t *testing.T) {
	t.Parallel()
	svc := service.New(dbtest.SQLite(t), service.Options{})
	t.Cleanup(svc.Close)
	ctx := context.Background()
	if err := svc.Register(ctx, examples(t, "approval")); err != nil {
		t.Fatal(err)
	}
	d, err := svc.GetDefinition(ctx, "approval")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]service.State{}
	for _, st := range d.States {
		states[st.Name] = st
	}
	for state, want := range map[string]string{
		"finance_review": `[{"event":"approve","to":"approved","allow":["finance"]},{"event":"reject","to":"rejected"},` +
			`{"event":"request_changes","to":"rework"},{"event":"comment","to":"finance_review"},` +
			`{"event":"remind","to":"finance_review"},{"event":"withdraw","to":"withdrawn"}]`,
		"approved": `[]`,
	} {
		b, _ := json.Marshal(states[state].Branches)
		if string(b) != want {
			t.Errorf("%s: %s, want %s", state, b, want)
		}
	}
	b, _ := json.Marshal(states["manager_review"].Branches[:2])
	if want := `[{"event":"approve","to":"finance_review"},{"event":"approve","to":"approved"}]`; string(b) != want {
		t.Errorf("manager_review's approve: %s, want %s", b, want)
	}
}
