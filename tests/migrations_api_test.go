package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The migration endpoints end to end, on PostgreSQL and on SQLite (api.md "Definitions",
// docs/api.md "Migrations"): version 1 of claim (testdata/api/put/claim_v1.yaml) is put through
// the API with claims in every state, then version 2 (claim_v2.yaml): a rename, a guarded split, a
// removed state without a rule, a field whose type changes and a context rule. Then the plan, the
// run, its progress, what became of each claim, and the running claims counted per version by GET
// /v1/definitions/{name}.

// apiMove is one entry of a plan's moves.
type apiMove struct {
	FromVersion int    `json:"from_version"`
	FromState   string `json:"from_state"`
	ToState     string `json:"to_state"`
	Count       int64  `json:"count"`
}

// apiStranded is one entry of a plan's stranded instances.
type apiStranded struct {
	FromVersion int      `json:"from_version"`
	FromState   string   `json:"from_state"`
	Reason      string   `json:"reason"`
	Count       int64    `json:"count"`
	Detail      string   `json:"detail"`
	Sample      []string `json:"sample"`
}

// apiPlan is a migration plan, or a finished migration's result.
type apiPlan struct {
	Definition string        `json:"definition"`
	ToVersion  int           `json:"to_version"`
	Total      int64         `json:"total"`
	Moves      []apiMove     `json:"moves"`
	Stranded   []apiStranded `json:"stranded"`
}

// apiMigration is a migration's status.
type apiMigration struct {
	ID         string     `json:"id"`
	Definition string     `json:"definition"`
	ToVersion  int        `json:"to_version"`
	Status     string     `json:"status"`
	Migrated   int64      `json:"migrated"`
	Stranded   int64      `json:"stranded"`
	Total      int64      `json:"total"`
	Error      string     `json:"error"`
	Result     *apiPlan   `json:"result"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// apiRunning is one entry of running_by_version in GET /v1/definitions/{name}.
type apiRunning struct {
	Version int   `json:"version"`
	Count   int64 `json:"count"`
}

// apiPlanFields and apiDoneFields are the fields of a plan and of a finished migration.
var (
	apiPlanFields = []string{"definition", "to_version", "total", "moves", "stranded"}
	apiDoneFields = []string{"id", "definition", "to_version", "status", "migrated", "stranded", "total",
		"started_at", "finished_at", "result"}
)

// apiClaimDue is the due date of the claims that have one: a date as version 1 keeps it (text),
// which version 2's time takes as it is.
const apiClaimDue = "2026-03-01T00:00:00Z"

// apiClaim is a claim of version 1 and what becomes of it when it migrates to version 2.
type apiClaim struct {
	id     string
	amount int
	due    string
	events []string // fired in order after creation; hold with a reason
	// After the migration:
	version  int
	state    string
	reason   string // the stranded reason when it stays on version 1 while running; "" otherwise
	priority string // version 2's computed field, when it moves
}

// apiClaims are claims in every state of version 1, each meeting one of version 2's rules.
var apiClaims = []apiClaim{
	{id: "claim-f1", amount: 100, due: apiClaimDue, version: 2, state: "submitted", priority: "normal"},                                        // renamed
	{id: "claim-s1", amount: 5000, due: apiClaimDue, events: []string{"assess"}, version: 2, state: "senior_review", priority: "high"},         // split, first branch
	{id: "claim-s2", amount: 500, due: apiClaimDue, events: []string{"assess"}, version: 2, state: "assessing", priority: "normal"},            // split, second branch
	{id: "claim-s3", amount: 0, due: apiClaimDue, events: []string{"assess"}, version: 1, state: "assessing", reason: "rule_failed"},           // no branch holds
	{id: "claim-h1", amount: 50, due: apiClaimDue, events: []string{"assess", "hold"}, version: 1, state: "on_hold", reason: "state_unmapped"}, // removed, no rule
	{id: "claim-a1", amount: 200, due: apiClaimDue, events: []string{"assess", "approve"}, version: 2, state: "approved", priority: "normal"},  // keeps its name
	{id: "claim-a2", amount: 300, due: "", events: []string{"assess", "approve"}, version: 1, state: "approved", reason: "context_invalid"},    // due is not a time
	{id: "claim-p1", amount: 400, due: apiClaimDue, events: []string{"assess", "approve", "pay"}, version: 1, state: "paid"},                   // final
	{id: "claim-r1", amount: 600, due: apiClaimDue, events: []string{"assess", "reject"}, version: 1, state: "rejected"},                       // final
}

// apiClaimPlan is the plan of migrating apiClaims to version 2 (details aside): every running claim
// counted once, in (version, state, target) and (version, state, reason) order.
var apiClaimPlan = apiPlan{Definition: "claim", ToVersion: 2, Total: 7,
	Moves: []apiMove{
		{1, "approved", "approved", 1},
		{1, "assessing", "assessing", 1},
		{1, "assessing", "senior_review", 1},
		{1, "filed", "submitted", 1},
	},
	Stranded: []apiStranded{
		{FromVersion: 1, FromState: "approved", Reason: "context_invalid", Count: 1, Sample: []string{"claim-a2"}},
		{FromVersion: 1, FromState: "assessing", Reason: "rule_failed", Count: 1, Sample: []string{"claim-s3"}},
		{FromVersion: 1, FromState: "on_hold", Reason: "state_unmapped", Count: 1, Sample: []string{"claim-h1"}},
	},
}

// apiClaimV2 is version 2 of claim with its migration policy line replaced by policy (a whole line,
// "" to leave it out and take the default, auto).
func apiClaimV2(t testing.TB, policy string) []byte {
	t.Helper()
	src := string(apiReadFile(t, apiPutDir+"/claim_v2.yaml"))
	const line = "  policy: manual\n"
	if !strings.Contains(src, line) {
		t.Fatalf("claim_v2.yaml has no line %q", line)
	}
	return []byte(strings.Replace(src, line, policy, 1))
}

// putClaim puts a version of claim and expects it new.
func (e *apiEnv) putClaim(t testing.TB, src []byte, version int) {
	t.Helper()
	r := e.do(t, "PUT", "/v1/definitions/claim", src, "Content-Type", "application/yaml")
	res := apiWant[struct {
		Definition map[string]any `json:"definition"`
		Created    bool           `json:"created"`
	}](t, r, http.StatusCreated)
	if !res.Created || res.Definition["version"] != float64(version) {
		t.Fatalf("%s: want version %d created", r, version)
	}
	if _, ok := res.Definition["running_by_version"]; ok {
		t.Errorf("%s: the answer to a put counts running instances", r)
	}
}

// seedClaims puts claim version 1 and creates apiClaims on it, and returns them as they are.
func (e *apiEnv) seedClaims(t testing.TB) map[string]apiInstance {
	t.Helper()
	e.putClaim(t, apiReadFile(t, apiPutDir+"/claim_v1.yaml"), 1)
	out := map[string]apiInstance{}
	for _, c := range apiClaims {
		inst := e.create(t, "claim", c.id, map[string]any{"amount": c.amount, "note": "note of " + c.id, "due": c.due})
		for _, ev := range c.events {
			var payload map[string]any
			if ev == "hold" {
				payload = map[string]any{"reason": "waiting for papers"}
			}
			inst = e.mustFire(t, c.id, ev, payload).Instance
		}
		if inst.Version != 1 {
			t.Fatalf("%s on version %d, want 1", c.id, inst.Version)
		}
		out[c.id] = inst
	}
	return out
}

// running reads GET /v1/definitions/{name}: its latest version and running_by_version, which
// must be there.
func (e *apiEnv) running(t testing.TB, name string) (int, []apiRunning) {
	t.Helper()
	r := e.do(t, "GET", apiPath("/v1/definitions/%s", name), nil)
	def := apiWant[struct {
		Version int           `json:"version"`
		Running *[]apiRunning `json:"running_by_version"`
	}](t, r, http.StatusOK)
	if def.Running == nil {
		t.Fatalf("%s: no running_by_version", r)
	}
	return def.Version, *def.Running
}

// plan posts a migration plan request and expects 200.
func (e *apiEnv) plan(t testing.TB, name string, body any) apiPlan {
	t.Helper()
	r := e.do(t, "POST", apiPath("/v1/definitions/%s/migrations/plan", name), body)
	p := apiWant[apiPlan](t, r, http.StatusOK)
	apiCheckFields(t, r.String(), apiRaw(t, r), apiPlanFields)
	return p
}

// startMigration posts a migration and expects 202 with its Location; it returns the running
// migration.
func (e *apiEnv) startMigration(t testing.TB, name string, body any) apiMigration {
	t.Helper()
	before := time.Now().Add(-time.Second)
	r := e.do(t, "POST", apiPath("/v1/definitions/%s/migrations", name), body)
	m := apiWant[apiMigration](t, r, http.StatusAccepted)
	if m.ID == "" || m.Definition != name || m.Status != "running" || m.Migrated != 0 || m.Stranded != 0 ||
		m.Result != nil || m.FinishedAt != nil || m.StartedAt.Before(before) || m.StartedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("%s: not a migration just started", r)
	}
	if loc := r.header.Get("Location"); loc != apiPath("/v1/migrations/%s", m.ID) {
		t.Errorf("%s: Location %q", r, loc)
	}
	return m
}

// awaitMigration polls GET /v1/migrations/{id} until the migration is no longer running, for at
// most 15 seconds, and returns it.
func (e *apiEnv) awaitMigration(t testing.TB, id string) apiMigration {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := e.do(t, "GET", apiPath("/v1/migrations/%s", id), nil)
		m := apiWant[apiMigration](t, r, http.StatusOK)
		if m.ID != id {
			t.Fatalf("%s: another migration", r)
		}
		if m.Status != "running" {
			apiCheckFields(t, r.String(), apiRaw(t, r), apiDoneFields)
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still running after 15s", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawHistory reads the whole history of an instance as JSON objects (migration rows have a field
// the others lack, from_version), checking the fields of each row.
func (e *apiEnv) rawHistory(t testing.TB, id string) []map[string]any {
	t.Helper()
	r := e.do(t, "GET", apiPath("/v1/instances/%s/history?limit=1000", id), nil)
	page := apiWant[struct {
		Items []map[string]any `json:"items"`
		Next  string           `json:"next"`
	}](t, r, http.StatusOK)
	if page.Next != "" {
		t.Fatalf("%s: more than one page", r)
	}
	for _, row := range page.Items {
		fields := apiHistoryFields
		if row["source"] == "migration" {
			fields = append(fields[:len(fields):len(fields)], "from_version")
		}
		apiCheckFields(t, r.String(), row, fields)
	}
	return page.Items
}

// apiSamePlan fails unless got is want, comparing each stranded entry's detail only for being
// there.
func apiSamePlan(t testing.TB, what string, got, want apiPlan) {
	t.Helper()
	g := got
	if got.Stranded != nil {
		g.Stranded = make([]apiStranded, len(got.Stranded))
	}
	for i, s := range got.Stranded {
		if s.Detail == "" {
			t.Errorf("%s: stranded entry %+v has no detail", what, s)
		}
		s.Detail = ""
		g.Stranded[i] = s
	}
	if !reflect.DeepEqual(g, want) {
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(want)
		t.Errorf("%s:\n got %s\nwant %s", what, gj, wj)
	}
}

// TestAPIMigration: a manual migration through the API. The plan says exactly what the run then
// does and changes nothing; the run answers 202 and finishes; each running claim is on version 2
// with one migration row in its history, or still on version 1 with the reason the plan gave; the
// final claims are untouched; events afterwards follow each claim's version; GET
// /v1/definitions/claim counts the running claims per version at each step.
func TestAPIMigration(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		seeded := env.seedClaims(t)
		if v, running := env.running(t, "claim"); v != 1 || !reflect.DeepEqual(running, []apiRunning{{1, 7}}) {
			t.Errorf("claim version 1: version %d, running %+v, want 1 [{1 7}]", v, running)
		}
		env.putClaim(t, apiClaimV2(t, "  policy: manual\n"), 2)
		if v, running := env.running(t, "claim"); v != 2 || !reflect.DeepEqual(running, []apiRunning{{1, 7}}) {
			t.Errorf("after putting version 2 (manual): version %d, running %+v, want 2 [{1 7}]", v, running)
		}
		// Only the answer about the definition counts; the answers about its stored versions do not.
		for _, path := range []string{"/v1/definitions/claim/versions/1", "/v1/definitions/claim/versions/2"} {
			if v, ok := apiRaw(t, env.do(t, "GET", path, nil))["running_by_version"]; ok {
				t.Errorf("%s: running_by_version %v", path, v)
			}
		}
		for _, item := range apiRaw(t, env.do(t, "GET", "/v1/definitions/claim/versions", nil))["items"].([]any) {
			if _, ok := item.(map[string]any)["running_by_version"]; ok {
				t.Errorf("/v1/definitions/claim/versions: running_by_version in %v", item)
			}
		}

		// The plan: the same for no body, an empty object, the version named and the filter on
		// version 1; a filter on a state narrows it.
		for _, body := range []any{nil, map[string]any{}, map[string]any{"to_version": 2},
			map[string]any{"filter": map[string]any{"version": 1}}} {
			apiSamePlan(t, fmt.Sprintf("the plan for %v", body), env.plan(t, "claim", body), apiClaimPlan)
		}
		apiSamePlan(t, "the plan of the claims in assessing", env.plan(t, "claim", map[string]any{"filter": map[string]any{"state": "assessing"}}),
			apiPlan{Definition: "claim", ToVersion: 2, Total: 3, Moves: apiClaimPlan.Moves[1:3], Stranded: apiClaimPlan.Stranded[1:2]})
		// To version 1 there is nothing older to move.
		apiSamePlan(t, "the plan to version 1", env.plan(t, "claim", map[string]any{"to_version": 1}),
			apiPlan{Definition: "claim", ToVersion: 1, Moves: []apiMove{}, Stranded: []apiStranded{}})
		// Planning changed nothing.
		for _, c := range apiClaims {
			apiSame(t, c.id+" after the plans", env.instance(t, c.id), seeded[c.id])
			if h := env.rawHistory(t, c.id); len(h) != len(c.events) {
				t.Errorf("%s after the plans: %d history rows, want %d", c.id, len(h), len(c.events))
			}
		}
		if _, running := env.running(t, "claim"); !reflect.DeepEqual(running, []apiRunning{{1, 7}}) {
			t.Errorf("after the plans: running %+v", running)
		}

		// The run.
		started := env.startMigration(t, "claim", nil)
		if started.ToVersion != 2 || started.Total != 7 {
			t.Errorf("the migration started: %+v, want to_version 2, total 7", started)
		}
		done := env.awaitMigration(t, started.ID)
		if done.Status != "done" || done.Error != "" || done.Migrated != 4 || done.Stranded != 3 || done.Total != 7 ||
			done.Definition != "claim" || done.ToVersion != 2 || !done.StartedAt.Equal(started.StartedAt) ||
			done.FinishedAt == nil || done.FinishedAt.Before(done.StartedAt) || done.Result == nil {
			t.Fatalf("the migration: %+v (started %+v)", done, started)
		}
		apiSamePlan(t, "the migration's result", *done.Result, apiClaimPlan)
		// The definition's list of migrations holds it, as GET /v1/migrations/{id} shows it.
		list := apiWant[struct{ Items []apiMigration }](t, env.do(t, "GET", "/v1/definitions/claim/migrations", nil), http.StatusOK)
		if len(list.Items) != 1 || !reflect.DeepEqual(list.Items[0], done) {
			t.Errorf("GET /v1/definitions/claim/migrations: %+v, want only %+v", list.Items, done)
		}
		strandedAs := map[string]string{} // id -> reason, from the result's samples
		for _, s := range done.Result.Stranded {
			for _, id := range s.Sample {
				strandedAs[id] = s.Reason
			}
		}

		for _, c := range apiClaims {
			before := seeded[c.id]
			inst := env.instance(t, c.id)
			history := env.rawHistory(t, c.id)
			if c.version == 1 {
				// Stranded or final: untouched, on version 1, no migration row.
				apiSame(t, c.id+" (not migrated)", inst, before)
				if len(history) != len(c.events) {
					t.Errorf("%s: %d history rows, want %d", c.id, len(history), len(c.events))
				}
				if strandedAs[c.id] != c.reason {
					t.Errorf("%s: stranded as %q, want %q", c.id, strandedAs[c.id], c.reason)
				}
				continue
			}
			if strandedAs[c.id] != "" {
				t.Errorf("%s: stranded as %q, want it moved", c.id, strandedAs[c.id])
			}
			// Moved: version 2, its new state, one revision more, entered_at kept, the context
			// of version 2 (note dropped, due a time, priority computed from the amount).
			wantCtx := map[string]any{"amount": c.amount, "due": apiClaimDue, "priority": c.priority}
			if inst.Version != 2 || inst.State != c.state || inst.Revision != before.Revision+1 || inst.Final ||
				!inst.EnteredAt.Equal(before.EnteredAt) || !inst.CreatedAt.Equal(before.CreatedAt) || inst.UpdatedAt.Before(before.UpdatedAt) {
				t.Errorf("%s after the migration: %+v, want version 2 in %s at revision %d", c.id, inst, c.state, before.Revision+1)
			}
			apiSame(t, c.id+"'s context", inst.Context, wantCtx)
			var migrations []map[string]any
			for _, row := range history {
				if row["source"] == "migration" {
					migrations = append(migrations, row)
				}
			}
			if len(history) != len(c.events)+1 || len(migrations) != 1 {
				t.Errorf("%s: history %v, want the %d events and one migration row", c.id, history, len(c.events))
				continue
			}
			row := history[len(history)-1]
			want := map[string]any{"seq": inst.Revision, "event": "migrate", "from": before.State, "to": c.state,
				"payload": map[string]any{}, "context_before": before.Context, "context_after": wantCtx,
				"source": "migration", "request_id": started.ID, "idempotency_key": "", "definition_version": 2,
				"from_version": 1, "actor_kind": "migration", "at": row["at"]}
			apiSame(t, c.id+"'s migration row", row, want)
			if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(row["at"])); err != nil || !at.Equal(inst.UpdatedAt) {
				t.Errorf("%s: the migration row at %v, the instance updated at %v", c.id, row["at"], inst.UpdatedAt)
			}
		}
		if _, running := env.running(t, "claim"); !reflect.DeepEqual(running, []apiRunning{{1, 3}, {2, 4}}) {
			t.Errorf("after the migration: running %+v, want [{1 3} {2 4}]", running)
		}
		listed := apiIDs(env.list(t, url.Values{"definition": {"claim"}, "version": {"1"}}, 0))
		if want := []string{"claim-a2", "claim-h1", "claim-p1", "claim-r1", "claim-s3"}; !reflect.DeepEqual(listed, want) {
			t.Errorf("claims on version 1: %v, want %v", listed, want)
		}

		// Events afterwards follow each claim's version: escalate exists only in version 2.
		if res := env.mustFire(t, "claim-s2", "escalate", nil); res.Instance.State != "senior_review" || res.Instance.Version != 2 {
			t.Errorf("escalate after the migration: %+v", res.Instance)
		}
		if res := env.mustFire(t, "claim-f1", "assess", nil); res.Instance.State != "assessing" || res.Instance.Version != 2 ||
			res.Transition.From != "submitted" {
			t.Errorf("assess after the migration: %+v %+v", res.Instance, res.Transition)
		}
		if h := env.rawHistory(t, "claim-s2"); len(h) != 3 || h[2]["source"] != "api" || h[2]["definition_version"] != 2.0 {
			t.Errorf("claim-s2's history after escalate: %v", h)
		}
		apiProblemOf(t, env.fire(t, "claim-s3", "escalate", nil), http.StatusUnprocessableEntity, "unknown_event")
		if res := env.mustFire(t, "claim-h1", "resume", nil); res.Instance.State != "assessing" || res.Instance.Version != 1 {
			t.Errorf("resume on version 1: %+v", res.Instance)
		}

		// A second run moves claim-h1, in assessing now (its amount takes the second branch), counts
		// the two others stranded again, and moves no claim twice.
		again := env.awaitMigration(t, env.startMigration(t, "claim", map[string]any{}).ID)
		if again.Status != "done" || again.Migrated != 1 || again.Stranded != 2 || again.Total != 3 {
			t.Errorf("the second migration: %+v", again)
		}
		if inst := env.instance(t, "claim-h1"); inst.Version != 2 || inst.State != "assessing" || inst.Context["priority"] != "normal" {
			t.Errorf("claim-h1 after the second migration: %+v", inst)
		}
		for _, c := range apiClaims {
			var ids []string
			for _, row := range env.rawHistory(t, c.id) {
				if row["source"] == "migration" {
					ids = append(ids, fmt.Sprint(row["request_id"]))
				}
			}
			want := []string(nil)
			switch {
			case c.id == "claim-h1":
				want = []string{again.ID}
			case c.version == 2:
				want = []string{started.ID}
			}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("%s: migration rows of %v, want %v", c.id, ids, want)
			}
		}
		if _, running := env.running(t, "claim"); !reflect.DeepEqual(running, []apiRunning{{1, 2}, {2, 5}}) {
			t.Errorf("after the second migration: running %+v, want [{1 2} {2 5}]", running)
		}
	})
}

// TestAPIMigrationAuto: putting a version 2 whose migrate section leaves the policy out (auto)
// moves the running claims without being asked, as the manual run did.
func TestAPIMigrationAuto(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		seeded := env.seedClaims(t)
		env.putClaim(t, apiClaimV2(t, ""), 2)
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, running := env.running(t, "claim")
			if reflect.DeepEqual(running, []apiRunning{{1, 3}, {2, 4}}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("running %+v 15s after the put, want [{1 3} {2 4}]", running)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The migration is the one the audit rows name.
		var id string
		for _, row := range env.rawHistory(t, "claim-f1") {
			if row["source"] == "migration" {
				id, _ = row["request_id"].(string)
			}
		}
		if id == "" {
			t.Fatalf("claim-f1 has no migration row")
		}
		done := env.awaitMigration(t, id)
		if done.Status != "done" || done.Migrated != 4 || done.Stranded != 3 || done.Total != 7 || done.Result == nil {
			t.Fatalf("the migration: %+v", done)
		}
		apiSamePlan(t, "the migration's result", *done.Result, apiClaimPlan)
		// The definition's list of migrations holds it, as GET /v1/migrations/{id} shows it.
		list := apiWant[struct{ Items []apiMigration }](t, env.do(t, "GET", "/v1/definitions/claim/migrations", nil), http.StatusOK)
		if len(list.Items) != 1 || !reflect.DeepEqual(list.Items[0], done) {
			t.Errorf("GET /v1/definitions/claim/migrations: %+v, want only %+v", list.Items, done)
		}
		for _, c := range apiClaims {
			inst := env.instance(t, c.id)
			if c.version == 1 {
				apiSame(t, c.id+" (not migrated)", inst, seeded[c.id])
			} else if inst.Version != 2 || inst.State != c.state || inst.Revision != seeded[c.id].Revision+1 {
				t.Errorf("%s: %+v, want version 2 in %s", c.id, inst, c.state)
			}
		}
	})
}

// TestAPIMigrationBadRequests: the migration endpoints' problems, each with its status and code;
// none records a migration or moves an instance.
func TestAPIMigrationBadRequests(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("m", 201)
	cases := []struct {
		name, method, path string
		body               any // as env.do sends it
		header             []string
		status             int
		code               string
	}{
		{"plan: no such definition", "POST", "/v1/definitions/nope/migrations/plan", map[string]any{}, nil, 404, "not_found"},
		{"run: no such definition", "POST", "/v1/definitions/nope/migrations", nil, nil, 404, "not_found"},
		{"plan: no such version", "POST", "/v1/definitions/claim/migrations/plan", map[string]any{"to_version": 3}, nil, 404, "not_found"},
		{"run: no such version", "POST", "/v1/definitions/claim/migrations", map[string]any{"to_version": 3}, nil, 404, "not_found"},
		{"plan: from the target version", "POST", "/v1/definitions/claim/migrations/plan",
			map[string]any{"filter": map[string]any{"version": 2}}, nil, 400, "invalid_request"},
		{"run: from the target version", "POST", "/v1/definitions/claim/migrations",
			map[string]any{"filter": map[string]any{"version": 2}}, nil, 400, "invalid_request"},
		{"plan: from a newer version", "POST", "/v1/definitions/claim/migrations/plan",
			map[string]any{"to_version": 1, "filter": map[string]any{"version": 2}}, nil, 400, "invalid_request"},
		{"plan: from a version that does not exist", "POST", "/v1/definitions/claim/migrations/plan",
			map[string]any{"filter": map[string]any{"version": 9}}, nil, 400, "invalid_request"},
		{"plan: a negative to_version", "POST", "/v1/definitions/claim/migrations/plan", `{"to_version": -1}`, nil, 400, "invalid_request"},
		{"run: a negative filter version", "POST", "/v1/definitions/claim/migrations", `{"filter": {"version": -1}}`, nil, 400, "invalid_request"},
		{"plan: malformed JSON", "POST", "/v1/definitions/claim/migrations/plan", `{"to_version": 2`, nil, 400, "invalid_request"},
		{"run: malformed JSON", "POST", "/v1/definitions/claim/migrations", `{"to_version": 2`, nil, 400, "invalid_request"},
		{"run: an unknown field", "POST", "/v1/definitions/claim/migrations", `{"version": 2}`, nil, 400, "invalid_request"},
		{"run: an unknown filter field", "POST", "/v1/definitions/claim/migrations", `{"filter": {"from": 1}}`, nil, 400, "invalid_request"},
		{"run: a version as text", "POST", "/v1/definitions/claim/migrations", `{"to_version": "2"}`, nil, 400, "invalid_request"},
		{"run: a fractional version", "POST", "/v1/definitions/claim/migrations", `{"to_version": 1.5}`, nil, 400, "invalid_request"},
		{"run: a repeated field", "POST", "/v1/definitions/claim/migrations", `{"to_version": 2, "to_version": 2}`, nil, 400, "invalid_request"},
		{"run: trailing data", "POST", "/v1/definitions/claim/migrations", `{} {}`, nil, 400, "invalid_request"},
		{"run: an array", "POST", "/v1/definitions/claim/migrations", `[]`, nil, 400, "invalid_request"},
		{"run: not JSON", "POST", "/v1/definitions/claim/migrations", `{}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"run: no Content-Type", "POST", "/v1/definitions/claim/migrations", `{}`, []string{"Content-Type", ""}, 415, "unsupported_media_type"},
		{"plan: a name too long", "POST", "/v1/definitions/" + long + "/migrations/plan", nil, nil, 400, "invalid_request"},
		{"list: DELETE", "DELETE", "/v1/definitions/claim/migrations", nil, nil, 405, "method_not_allowed"},
		{"list: no such definition", "GET", "/v1/definitions/nope/migrations", nil, nil, 404, "not_found"},
		{"list: limit 0", "GET", "/v1/definitions/claim/migrations?limit=0", nil, nil, 400, "invalid_request"},
		{"list: a limit not a number", "GET", "/v1/definitions/claim/migrations?limit=ten", nil, nil, 400, "invalid_request"},
		{"list: an unknown query parameter", "GET", "/v1/definitions/claim/migrations?status=done", nil, nil, 400, "invalid_request"},
		{"plan: GET", "GET", "/v1/definitions/claim/migrations/plan", nil, nil, 405, "method_not_allowed"},
		{"status: no such migration", "GET", "/v1/migrations/nope", nil, nil, 404, "not_found"},
		{"status: an id too long", "GET", "/v1/migrations/" + long, nil, nil, 400, "invalid_request"},
		{"status: an unknown query parameter", "GET", "/v1/migrations/nope?verbose=1", nil, nil, 400, "invalid_request"},
		{"status: DELETE", "DELETE", "/v1/migrations/nope", nil, nil, 405, "method_not_allowed"},
		{"plan: an unknown query parameter", "POST", "/v1/definitions/claim/migrations/plan?bogus=1", nil, nil, 400, "invalid_request"},
		{"run: an unknown query parameter", "POST", "/v1/definitions/claim/migrations?bogus=1", nil, nil, 400, "invalid_request"},
		{"plan: a state no older version has", "POST", "/v1/definitions/claim/migrations/plan",
			map[string]any{"filter": map[string]any{"state": "nowhere"}}, nil, 400, "invalid_request"},
		{"run: a state no older version has", "POST", "/v1/definitions/claim/migrations",
			map[string]any{"filter": map[string]any{"state": "nowhere"}}, nil, 400, "invalid_request"},
		{"plan: a state with NUL", "POST", "/v1/definitions/claim/migrations/plan",
			map[string]any{"filter": map[string]any{"state": "a\x00b"}}, nil, 400, "invalid_request"},
	}
	apiEach(t, func(t *testing.T, env *apiEnv) {
		seeded := env.seedClaims(t)
		env.putClaim(t, apiClaimV2(t, "  policy: manual\n"), 2)
		t.Run("each", func(t *testing.T) { // returns once its parallel subtests have ended
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					apiProblemOf(t, env.do(t, c.method, c.path, c.body, c.header...), c.status, c.code)
				})
			}
		})
		// A body of white space, or an empty chunked one, is no body: the defaults.
		for _, body := range []any{" \n\t", apiChunked("")} {
			if r := env.do(t, "POST", "/v1/definitions/claim/migrations/plan", body); r.status != 200 {
				t.Errorf("a plan with the body %q: %s, want 200", body, r)
			}
		}
		var n int
		if err := env.db.X.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM migrations").Scan(&n); err != nil || n != 0 {
			t.Errorf("migrations recorded: %d, %v; want none", n, err)
		}
		for _, c := range apiClaims {
			apiSame(t, c.id+" after the bad requests", env.instance(t, c.id), seeded[c.id])
		}
	})
}
