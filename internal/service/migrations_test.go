package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

const (
	docV1 = `name: doc
initial: draft
context:
  amount: int
  note: string
states:
  draft: {on: {submit: review}}
  review: {on: {approve: approved, hold: on_hold}}
  on_hold: {on: {resume: review}}
  approved: {final: true}
`
	// docV2 splits review by amount, drops on_hold (stranded), drops note and adds currency.
	docV2 = `name: doc
initial: draft
context:
  amount: int
  currency: string
migrate:
  policy: POLICY
  states:
    review:
      - to: legal_review
        guard: ctx.amount > 1000
      - to: review
  context:
    currency: '"EUR"'
states:
  draft: {on: {submit: review}}
  review: {on: {approve: approved}}
  legal_review: {on: {approve: approved}}
  approved: {final: true}
`
)

// docsThenV2 serves doc version 1 with instances in every state, then registers version 2 with a
// migration policy.
func docsThenV2(t *testing.T, db *persistence.DB, policy string) *service.Service {
	t.Helper()
	svc := start(t, db, docV1)
	t.Cleanup(svc.Close)
	seedDocs(t, svc)
	if _, err := svc.PutDefinition(context.Background(), "doc", []byte(strings.Replace(docV2, "POLICY", policy, 1))); err != nil {
		t.Fatal(err)
	}
	return svc
}

// seedDocs creates instances of doc version 1 in every state.
func seedDocs(t *testing.T, svc *service.Service) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []struct {
		id     string
		amount int
		events []string
	}{
		{"d1", 10, nil},
		{"r1", 500, []string{"submit"}},
		{"r2", 5000, []string{"submit"}},
		{"h1", 20, []string{"submit", "hold"}},
		{"a1", 30, []string{"submit", "approve"}},
	} {
		if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "doc", ID: c.id,
			Context: map[string]any{"amount": c.amount, "note": "n-" + c.id}}); err != nil {
			t.Fatal(err)
		}
		for _, e := range c.events {
			send(t, svc, c.id, e)
		}
	}
}

// TestMigration: a plan of version 1's instances to version 2 (manual), then the run: every
// running instance is on version 2 with one migration row, or stranded with its reason; the final
// one is untouched; events afterwards follow version 2.
func TestMigration(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := docsThenV2(t, db, "manual")
		plan, err := svc.PlanMigration(ctx, "doc", service.MigrationRequest{})
		if err != nil {
			t.Fatal(err)
		}
		wantPlan := "to 2 total 4 moves [1 draft->draft 1, 1 review->legal_review 1, 1 review->review 1] stranded [1 on_hold state_unmapped 1 [h1]]"
		if got := planString(plan); got != wantPlan {
			t.Fatalf("plan:\n got %s\nwant %s", got, wantPlan)
		}
		// The plan changed nothing.
		if inst, _ := svc.GetInstance(ctx, "r2"); inst.Version != 1 || inst.State != "review" {
			t.Fatalf("r2 after the plan: %+v", inst)
		}

		st, err := svc.StartMigration(ctx, "doc", service.MigrationRequest{})
		if err != nil {
			t.Fatal(err)
		}
		st = waitMigration(t, svc, st.ID)
		if st.Status != "done" || st.Migrated != 3 || st.Stranded != 1 || st.Total != 4 || st.Result == nil || planString(*st.Result) != wantPlan {
			t.Fatalf("migration: %+v (result %s)", st, planString(*st.Result))
		}
		for id, want := range map[string]string{"d1": "2 draft 1", "r1": "2 review 2", "r2": "2 legal_review 2", "h1": "1 on_hold 2", "a1": "1 approved 2"} {
			inst, err := svc.GetInstance(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(inst.Version, " ", inst.State, " ", inst.Revision); got != want {
				t.Errorf("%s: version state revision %s, want %s", id, got, want)
			}
			if inst.Version == 2 && (inst.Context["currency"] != "EUR" || inst.Context["note"] != nil) {
				t.Errorf("%s: context %v, want currency EUR and no note", id, inst.Context)
			}
		}
		h, err := svc.History(ctx, "r2", 0, 0)
		if err != nil || len(h.Items) != 2 {
			t.Fatalf("history of r2: %+v, %v", h.Items, err)
		}
		if m := h.Items[1]; m.Source != "migration" || m.FromVersion != 1 || m.DefinitionVersion != 2 || m.From != "review" ||
			m.To != "legal_review" || m.ContextBefore["note"] != "n-r2" || m.ContextAfter["currency"] != "EUR" || m.RequestID != st.ID {
			t.Errorf("r2's migration row: %+v", m)
		}
		// Version 2's rules now: legal_review approves; a second run moves nothing new.
		if res := send(t, svc, "r2", "approve"); res.Transition.To != "approved" || res.Instance.Version != 2 {
			t.Errorf("approve after the migration: %+v", res.Transition)
		}
		again, err := svc.StartMigration(ctx, "doc", service.MigrationRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if again = waitMigration(t, svc, again.ID); again.Migrated != 0 || again.Stranded != 1 {
			t.Errorf("second run: %+v", again)
		}
	})
}

// TestMigrationAuto: registering a version with policy auto migrates the running instances.
func TestMigrationAuto(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := docsThenV2(t, db, "auto")
		deadline := time.Now().Add(30 * time.Second) // generous: CI runs the race detector on a loaded machine
		for {
			inst, err := svc.GetInstance(ctx, "r1")
			if err != nil {
				t.Fatal(err)
			}
			if inst.Version == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("r1 still on version %d", inst.Version)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestMigrationBadRequests(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	svc := start(t, db, docV1)
	t.Cleanup(svc.Close)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		def  string
		req  service.MigrationRequest
		code string
	}{
		{"no such definition", "nope", service.MigrationRequest{}, "not_found"},
		{"no such version", "doc", service.MigrationRequest{ToVersion: 7}, "not_found"},
		{"from a version not older", "doc", service.MigrationRequest{Filter: &service.MigrationFilter{Version: 1}}, "invalid_request"},
	} {
		_, err := svc.PlanMigration(ctx, c.def, c.req)
		coded, ok := err.(interface{ Code() string })
		if !ok || coded.Code() != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	if _, err := svc.GetMigration(ctx, "nope"); code.Of(err) != code.NotFound || !strings.Contains(err.Error(), `no migration "nope"`) {
		t.Errorf("GetMigration nope: %v", err)
	}
}

func waitMigration(t *testing.T, svc *service.Service, id string) service.MigrationStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: CI runs the race detector on a loaded machine
	for {
		st, err := svc.GetMigration(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "running" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration %s still running: %+v", id, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func planString(p service.MigrationPlan) string {
	var moves, stranded []string
	for _, m := range p.Moves {
		moves = append(moves, fmt.Sprintf("%d %s->%s %d", m.FromVersion, m.FromState, m.ToState, m.Count))
	}
	for _, s := range p.Stranded {
		stranded = append(stranded, fmt.Sprintf("%d %s %s %d %v", s.FromVersion, s.FromState, s.Reason, s.Count, s.Sample))
	}
	return fmt.Sprintf("to %d total %d moves [%s] stranded [%s]", p.ToVersion, p.Total, strings.Join(moves, ", "), strings.Join(stranded, ", "))
}
