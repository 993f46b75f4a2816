package tests

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// TestActorsOverTheAPI: the approval example's finance step, through the API with keys of groups:
// a key outside the finance group is 403 transition_forbidden (the groups per branch, the
// instance); the requester's key in the finance group is refused by the four-eyes guard on who
// sends the event, whatever its payload claims; another finance key approves, and the history
// records its name and kind (user), and explain says which branches the caller may take.
func TestActorsOverTheAPI(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		set, diags, err := machine.Load("../definitions")
		if err != nil || diags.Errors() > 0 {
			t.Fatalf("%v %v", err, diags)
		}
		svc := service.New(db, service.Options{})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set); err != nil {
			t.Fatal(err)
		}
		keys, parsed := testKeys(t, testKey{auth.Write, "alice", []string{"finance", "engineering"}}, testKey{auth.Write, "bob", nil},
			testKey{auth.Write, "dave", []string{"finance"}}, testKey{auth.Write, "erin", []string{"engineering"}})
		srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed}))
		t.Cleanup(srv.Close)
		call := func(who, path, body string) (int, map[string]any) {
			t.Helper()
			return callerOf(t, srv.URL, keys[who])("POST", path, body)
		}
		if code, _ := call("alice", "/v1/instances", `{"definition": "approval", "id": "pr-1", "context": {"requester": "alice"}}`); code != 201 {
			t.Fatalf("create: %d", code)
		}
		for _, step := range []struct{ who, body string }{
			{"alice", `{"event": "submit", "payload": {"amount": 9000.0, "description": "a server"}}`},
			{"bob", `{"event": "approve", "payload": {"approver": "bob"}}`},
		} {
			if code, out := call(step.who, "/v1/instances/pr-1/events", step.body); code != 200 {
				t.Fatalf("%s: %d %v", step.body, code, out)
			}
		}
		code, out := call("erin", "/v1/instances/pr-1/events", `{"event": "approve"}`)
		allowed, _ := out["allowed"].([]any)
		if code != 403 || out["code"] != "transition_forbidden" || len(allowed) != 1 || out["instance"] == nil ||
			!strings.Contains(asJSON(allowed), `"allow":["finance"]`) {
			t.Fatalf("erin (engineering): %d %v, want 403 transition_forbidden listing finance", code, out)
		}
		if code, out := call("alice", "/v1/instances/pr-1/events", `{"event": "approve", "payload": {"approver": "dave"}}`); code != 409 || out["code"] != "guard_rejected" {
			t.Fatalf("alice (the requester, in finance): %d %v, want guard_rejected", code, out)
		}
		code, out = call("dave", "/v1/instances/pr-1/explain", `{"event": "approve"}`)
		branches, _ := out["branches"].([]any)
		if code != 200 || len(branches) != 1 || branches[0].(map[string]any)["allowed"] != true {
			t.Fatalf("explain for dave: %d %v", code, out)
		}
		code, out = call("erin", "/v1/instances/pr-1/explain", `{"event": "approve"}`)
		branches, _ = out["branches"].([]any)
		if code != 200 || len(branches) != 1 || branches[0].(map[string]any)["allowed"] != false {
			t.Fatalf("explain for erin: %d %v", code, out)
		}
		if code, out := call("dave", "/v1/instances/pr-1/events", `{"event": "approve"}`); code != 200 ||
			out["instance"].(map[string]any)["context"].(map[string]any)["finance_approver"] != "dave" {
			t.Fatalf("dave (finance): %d %v", code, out)
		}
		h, err := svc.History(ctx, "pr-1", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		last := h.Items[len(h.Items)-1]
		if last.Actor != "dave" || last.ActorKind != "user" || last.To != "approved" {
			t.Fatalf("the last history row: %+v, want dave (user) to approved", last)
		}
	})
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
