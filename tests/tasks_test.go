package tests

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/auth/authtest"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// tasksClock is a clock a test moves.
type tasksClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tasksClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *tasksClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestTasksOverTheAPI: the approval example's tasks through the API with keys and tokens, on both
// databases: a submitted request is assigned to its manager or to the managers group, due in three
// days; each caller's work list holds what is assigned to them or their groups, with the events
// they may send (none for a read key); ?assignee= and ?overdue=true filter the instances; past the
// due date they are overdue in the work list, the list, the stats and fsmd_instances_overdue;
// a current assignee reassigns (audited, with the caller as actor), a stranger may not, an admin
// may; bad reassignments are 400 and write nothing. `allow` with tokens: an escalated request is
// approved by a token of the approvers group, refused to one of another group.
func TestTasksOverTheAPI(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		set, diags, err := machine.Load("../definitions")
		if err != nil || diags.Errors() > 0 {
			t.Fatalf("%v %v", err, diags)
		}
		clock := &tasksClock{now: time.Date(2026, 4, 6, 8, 0, 0, 0, time.UTC)}
		svc := service.New(db, service.Options{Now: clock.Now})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		if err := svc.RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}
		keys, parsed := testKeys(t,
			testKey{auth.Write, "alice", nil}, testKey{auth.Write, "bob", []string{"managers"}}, testKey{auth.Write, "erin", nil},
			testKey{auth.Write, "carol", []string{"approvers"}}, testKey{auth.Read, "rita", []string{"managers"}}, testKey{auth.Admin, "root", nil})
		is := authtest.NewIssuer(t, t.TempDir())
		tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: is.JWKS, Issuer: "https://id.example", Audience: "fsmd"})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed, Tokens: tokens}))
		t.Cleanup(srv.Close)
		as := func(bearer string) apiCaller { return callerOf(t, srv.URL, bearer) }
		alice, bob, erin, carol, rita, root := as(keys["alice"]), as(keys["bob"]), as(keys["erin"]), as(keys["carol"]), as(keys["rita"]), as(keys["root"])
		must := func(call apiCaller, method, path, body string, status int) map[string]any {
			t.Helper()
			return call.must(t, method, path, body, status)
		}
		for _, c := range []struct{ id, ctx string }{
			{"pr-1", `{"requester": "alice"}`}, {"pr-2", `{"requester": "alice", "manager": "erin"}`}, {"pr-3", `{"requester": "alice"}`},
		} {
			must(alice, "POST", "/v1/instances", `{"definition": "approval", "id": "`+c.id+`", "context": `+c.ctx+`}`, 201)
			out := must(alice, "POST", "/v1/instances/"+c.id+"/events", `{"event": "submit", "payload": {"amount": 9000.0, "description": "a server"}}`, 200)
			inst := out["instance"].(map[string]any)
			if inst["due_at"] != "2026-04-09T08:00:00Z" || len(inst["assignees"].([]any)) != 1 {
				t.Fatalf("%s after submit: %v, want assigned and due 2026-04-09T08:00:00Z", c.id, inst)
			}
		}
		// pr-3 leaves manager_review: its task is the approvers group's, due in 48 hours.
		must(bob, "POST", "/v1/instances/pr-3/events", `{"event": "escalate"}`, 200)

		worklist := func(call apiCaller) (ids []string, items []map[string]any) {
			t.Helper()
			out := must(call, "GET", "/v1/worklist", "", 200)
			for _, it := range out["items"].([]any) {
				item := it.(map[string]any)
				ids = append(ids, item["instance"].(map[string]any)["id"].(string))
				items = append(items, item)
			}
			return ids, items
		}
		for _, tt := range []struct {
			name string
			call apiCaller
			want string
		}{
			{"bob, of the managers group", bob, "pr-1"}, {"erin, named", erin, "pr-2"}, {"rita, a read key of managers", rita, "pr-1"},
			{"carol, of approvers", carol, "pr-3"}, {"alice, of no group", alice, ""},
		} {
			ids, items := worklist(tt.call)
			if strings.Join(ids, " ") != tt.want {
				t.Errorf("the work list of %s: %v, want %q", tt.name, ids, tt.want)
			}
			for _, it := range items {
				events := asJSON(it["events"])
				switch {
				case tt.name == "rita, a read key of managers" && events != "[]":
					t.Errorf("a read key's work list offers %s", events)
				case tt.name == "bob, of the managers group" && !strings.Contains(events, `"approve"`):
					t.Errorf("bob's work list offers %s, want approve among them", events)
				case tt.name == "carol, of approvers" && !strings.Contains(events, `"approve"`):
					t.Errorf("carol's work list offers %s", events)
				}
				if it["overdue"] != false {
					t.Errorf("%s: overdue before the due date: %v", tt.name, it)
				}
			}
		}
		list := func(query string) string {
			t.Helper()
			out := must(root, "GET", "/v1/instances?"+query, "", 200)
			var ids []string
			for _, it := range out["items"].([]any) {
				ids = append(ids, it.(map[string]any)["id"].(string))
			}
			return strings.Join(ids, " ")
		}
		if got := list("assignee=group:managers"); got != "pr-1" {
			t.Errorf("?assignee=group:managers: %q", got)
		}
		if got := list("assignee=erin"); got != "pr-2" {
			t.Errorf("?assignee=erin: %q", got)
		}
		if got := list("overdue=true"); got != "" {
			t.Errorf("?overdue=true before any due date: %q", got)
		}

		// Three days and an hour later: all three are overdue (the escalated one was due in 48 hours).
		clock.Add(73 * time.Hour)
		if got := list("overdue=true"); got != "pr-1 pr-2 pr-3" {
			t.Errorf("?overdue=true: %q, want pr-1 pr-2 pr-3", got)
		}
		if _, items := worklist(bob); len(items) != 1 || items[0]["overdue"] != true {
			t.Errorf("bob's work list past the due date: %v", items)
		}
		stats := must(root, "GET", "/v1/definitions/approval/stats", "", 200)
		for _, st := range stats["states"].([]any) {
			st := st.(map[string]any)
			want := map[any]float64{"manager_review": 2, "escalated": 1}[st["state"]]
			if st["overdue"] != want {
				t.Errorf("stats of %s: overdue %v, want %v", st["state"], st["overdue"], want)
			}
		}
		if err := svc.RefreshMetrics(ctx); err != nil {
			t.Fatal(err)
		}
		if got := tasksOverdueMetric(t, reg); got != "approval/escalated=1 approval/manager_review=2" {
			t.Errorf("fsmd_instances_overdue: %q", got)
		}

		// Reassignment: a stranger may not, a current assignee (by group) may, an admin may.
		if code, out := erin("POST", "/v1/instances/pr-1/assign", `{"to": ["erin"]}`); code != 403 || out["code"] != "forbidden" ||
			!strings.Contains(out["detail"].(string), "group:managers") {
			t.Errorf("erin reassigning pr-1: %d %v, want 403 forbidden naming its assignees", code, out)
		}
		inst := must(bob, "POST", "/v1/instances/pr-1/assign", `{"to": ["carol"], "reason": "bob is away"}`, 200)
		if asJSON(inst["assignees"]) != `["carol"]` || inst["due_at"] != "2026-04-09T08:00:00Z" {
			t.Errorf("pr-1 reassigned: %v, want carol, the due date kept", inst)
		}
		if ids, _ := worklist(carol); strings.Join(ids, " ") != "pr-3 pr-1" {
			t.Errorf("carol's work list after the reassignment: %v, want pr-3 (due first) then pr-1", ids)
		}
		if ids, _ := worklist(bob); len(ids) != 0 {
			t.Errorf("bob's work list after the reassignment: %v", ids)
		}
		h, err := svc.History(ctx, "pr-1", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		last := h.Items[len(h.Items)-1]
		if last.Source != "assign" || last.Event != "assign" || last.Actor != "bob" || last.ActorKind != "user" ||
			last.From != "manager_review" || last.To != "manager_review" || asJSON(last.Payload) != `{"reason":"bob is away","to":["carol"]}` {
			t.Errorf("the reassignment's history row: %+v", last)
		}
		must(root, "POST", "/v1/instances/pr-2/assign", `{"to": ["group:managers"]}`, 200)

		// Bad reassignments: 400, nothing written.
		before := must(root, "GET", "/v1/instances/pr-2", "", 200)["revision"]
		for _, body := range []string{
			`{"to": []}`, `{"to": [""]}`, `{"to": ["ann\u0007"]}`, `{"to": ["group:"]}`, `{"to": 7}`,
			`{"to": ["x"], "reason": "` + strings.Repeat("r", 1001) + `"}`, `{"to": ["x"], "reason": "a\u0000b"}`,
			`{"to": [` + strings.Repeat(`"u",`, 100) + `"v"]}`, `{"to": ["x"], "extra": 1}`,
		} {
			if code, out := root("POST", "/v1/instances/pr-2/assign", body); code != 400 || out["code"] != "invalid_request" {
				t.Errorf("assign %.60s: %d %v, want 400 invalid_request", body, code, out)
			}
		}
		if after := must(root, "GET", "/v1/instances/pr-2", "", 200)["revision"]; after != before {
			t.Errorf("a refused reassignment moved the revision from %v to %v", before, after)
		}
		if code, _ := rita("POST", "/v1/instances/pr-2/assign", `{"to": ["rita"]}`); code != 403 {
			t.Errorf("a read key reassigning: %d, want 403", code)
		}

		// allow with tokens: pr-3 is escalated; only the approvers group may approve it.
		token := func(sub string, groups ...string) apiCaller {
			return as(is.Sign(t, "ed", map[string]any{"iss": "https://id.example", "aud": "fsmd", "sub": sub, "fsmd_role": "write",
				"groups": groups, "exp": time.Now().Add(time.Hour), "iat": time.Now()}))
		}
		if code, out := token("fred", "finance")("POST", "/v1/instances/pr-3/events", `{"event": "approve"}`); code != 403 || out["code"] != "transition_forbidden" {
			t.Errorf("a finance token approving an escalated request: %d %v, want transition_forbidden", code, out)
		}
		out := must(token("hana", "approvers"), "POST", "/v1/instances/pr-3/events", `{"event": "approve"}`, 200)
		if inst := out["instance"].(map[string]any); inst["state"] != "finance_review" || inst["context"].(map[string]any)["manager_approver"] != "hana" ||
			asJSON(inst["assignees"]) != `["group:finance"]` || inst["due_at"] != nil {
			t.Errorf("an approvers token approving pr-3: %v, want finance_review assigned to group:finance without a date", inst)
		}
		// A final instance cannot be reassigned.
		must(alice, "POST", "/v1/instances/pr-2/events", `{"event": "withdraw"}`, 200)
		if code, out := root("POST", "/v1/instances/pr-2/assign", `{"to": ["erin"]}`); code != 409 || out["code"] != "instance_final" {
			t.Errorf("reassigning a withdrawn request: %d %v, want 409 instance_final", code, out)
		}
	})
}

// tasksOverdueMetric reads fsmd_instances_overdue as "definition/state=n" lines, sorted.
func tasksOverdueMetric(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != "fsmd_instances_overdue" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, labels["definition"]+"/"+labels["state"]+"="+jsonNumber(m.GetGauge().GetValue()))
		}
	}
	return strings.Join(out, " ")
}

func jsonNumber(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
