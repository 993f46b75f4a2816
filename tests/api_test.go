package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The HTTP API end to end, on PostgreSQL and on SQLite: every endpoint of docs/api.md but
// migrations (migrations_api_test.go) and reload, each error code of docs/definitions.md ("Error codes") with its
// status. The fixtures are testdata/api (see helpers_api_test.go).

// apiSame fails unless got and want are the same JSON value.
func apiSame(t testing.TB, what string, got, want any) {
	t.Helper()
	g, w := apiNormal(t, got), apiNormal(t, want)
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gj, wj)
	}
}

// apiNormal is v as encoding/json decodes its JSON.
func apiNormal(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAPIInstances runs the tests that need of a database only instances of their own, all on one
// server per dialect (a PostgreSQL database takes a while to make), each in parallel with the
// others: so their instance ids differ.
func TestAPIInstances(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t *testing.T, env *apiEnv)
	}{
		{"create", apiTestCreate},
		{"get", apiTestGet},
		{"events", apiTestEvents},
		{"idempotency", apiTestIdempotency},
		{"explain", apiTestExplain},
		{"history", apiTestHistory},
		{"operations", apiTestOperations},
		{"hostile strings", apiTestHostile}, // badinput_api_test.go
		{"NUL", apiTestNUL},                 // badinput_api_test.go
		{"numbers as written", apiTestNumberText},
		{"int overflow", apiTestIntOverflow},
	}
	apiEach(t, func(t *testing.T, env *apiEnv) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tt.fn(t, env)
			})
		}
	})
}

// apiDoorContext is the context of a new door with code: every declared field, zero or default.
func apiDoorContext(code string) map[string]any {
	return map[string]any{"code": code, "opened": 0, "note": "", "tags": []any{}, "owner": map[string]any{"name": ""}, "meta": nil}
}

// apiClosedEvents are the events the state closed of door handles, in file order.
var apiClosedEvents = []string{"open", "lock", "knock", "label", "smash"}

// apiTestCreate: POST /v1/instances with a chosen or a generated id, idempotent for an identical
// body, instance_exists for another, invalid_context and not_found.
func apiTestCreate(t *testing.T, env *apiEnv) {
	t.Run("client-chosen id", func(t *testing.T) {
		t.Parallel()
		before := time.Now().Add(-time.Second)
		r := env.do(t, "POST", "/v1/instances", map[string]any{"definition": "door", "id": "chosen-1", "context": map[string]any{"code": "1"}})
		inst := apiWant[apiInstance](t, r, http.StatusCreated)
		apiCheckFields(t, r.String(), apiRaw(t, r), apiInstanceFields)
		if loc := r.header.Get("Location"); loc != "/v1/instances/chosen-1" {
			t.Errorf("Location %q", loc)
		}
		want := apiInstance{ID: "chosen-1", Definition: "door", Version: 1, State: "closed", Revision: 0, Final: false,
			Events: apiClosedEvents, CreatedAt: inst.CreatedAt, UpdatedAt: inst.CreatedAt, EnteredAt: inst.CreatedAt}
		got := inst
		got.Context = nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("created\n got %+v\nwant %+v", got, want)
		}
		apiSame(t, "context", inst.Context, apiDoorContext("1"))
		if inst.CreatedAt.Before(before) || inst.CreatedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("created_at %v is not now", inst.CreatedAt)
		}
		apiSame(t, "GET after creation", env.instance(t, "chosen-1"), inst)
	})

	t.Run("generated id", func(t *testing.T) {
		t.Parallel()
		a := env.create(t, "door", "", map[string]any{"code": "2"})
		b := env.create(t, "door", "", map[string]any{"code": "2"})
		if len(a.ID) != 26 || a.ID == b.ID {
			t.Errorf("generated ids %q and %q: want two different ids of 26 characters", a.ID, b.ID)
		}
		apiSame(t, "GET", env.instance(t, a.ID), a)
	})

	t.Run("a definition without context fields needs none", func(t *testing.T) {
		t.Parallel()
		inst := env.create(t, "ticket", "ticket-created", nil)
		if inst.State != "open" || len(inst.Context) != 0 || inst.Context == nil {
			t.Errorf("ticket: %+v", inst)
		}
	})

	t.Run("an identical repeat is the same instance", func(t *testing.T) {
		t.Parallel()
		first := env.do(t, "POST", "/v1/instances", `{"definition":"door","id":"repeat-1","context":{"code":"7","opened":1}}`)
		apiWant[apiInstance](t, first, http.StatusCreated)
		// The same request: the same answer, 200 rather than 201, whatever the key order or the
		// way a number is written.
		for _, body := range []string{
			`{"definition":"door","id":"repeat-1","context":{"code":"7","opened":1}}`,
			`{"context":{"opened":1.0,"code":"7"},"id":"repeat-1","definition":"door"}`,
		} {
			again := env.do(t, "POST", "/v1/instances", body)
			apiWant[apiInstance](t, again, http.StatusOK)
			if !bytes.Equal(bytes.TrimSpace(again.body), bytes.TrimSpace(first.body)) {
				t.Errorf("repeat %s:\n got %s\nwant %s", body, again.body, first.body)
			}
		}
	})

	t.Run("another body under a taken id is instance_exists", func(t *testing.T) {
		t.Parallel()
		existing := env.create(t, "door", "taken-1", map[string]any{"code": "1"})
		for name, body := range map[string]any{
			"another context":       map[string]any{"definition": "door", "id": "taken-1", "context": map[string]any{"code": "2"}},
			"a default spelled out": map[string]any{"definition": "door", "id": "taken-1", "context": map[string]any{"code": "1", "opened": 0}},
			"another definition":    map[string]any{"definition": "ticket", "id": "taken-1"},
		} {
			p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", body), http.StatusConflict, "instance_exists")
			if p.Instance == nil {
				t.Fatalf("%s: no instance in the problem", name)
			}
			apiSame(t, name+": the problem's instance", *p.Instance, existing)
		}
		apiSame(t, "the instance after", env.instance(t, "taken-1"), existing)
	})

	refused := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"a context field of the wrong type", map[string]any{"code": 1234}, 422, "invalid_context"},
		{"a nested field of the wrong type", map[string]any{"code": "1", "owner": map[string]any{"name": 3}}, 422, "invalid_context"},
		{"a list element of the wrong type", map[string]any{"code": "1", "tags": []any{"a", 2}}, 422, "invalid_context"},
		{"an int with a fraction", map[string]any{"code": "1", "opened": 1.5}, 422, "invalid_context"},
		{"an int beyond int64", map[string]any{"code": "1", "opened": json.Number("9223372036854775808")}, 422, "invalid_context"},
		{"an unknown context field", map[string]any{"code": "1", "colour": "red"}, 422, "invalid_context"},
		{"an unknown nested field", map[string]any{"code": "1", "owner": map[string]any{"age": 3}}, 422, "invalid_context"},
		{"a required field missing", map[string]any{"opened": 1}, 422, "invalid_context"},
		{"no context where one is required", nil, 422, "invalid_context"},
	}
	for i, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("refused-%d", i)
			body := map[string]any{"definition": "door", "id": id}
			if c.body != nil {
				body["context"] = c.body
			}
			apiProblemOf(t, env.do(t, "POST", "/v1/instances", body), c.status, c.code)
			apiProblemOf(t, env.do(t, "GET", "/v1/instances/"+id, nil), http.StatusNotFound, "not_found")
		})
	}

	t.Run("numbers keep every digit", func(t *testing.T) {
		t.Parallel()
		const big = 1<<53 + 1 // a float64 would make it 1<<53
		r := env.do(t, "POST", "/v1/instances", fmt.Sprintf(`{"definition":"door","id":"big-int","context":{"code":"1","opened":%d}}`, big))
		apiWant[apiInstance](t, r, http.StatusCreated)
		for _, r := range []apiResponse{r, env.do(t, "GET", "/v1/instances/big-int", nil)} {
			if !bytes.Contains(r.body, fmt.Appendf(nil, `"opened":%d`, big)) {
				t.Errorf("%s: want opened %d", r, big)
			}
		}
		r = env.fire(t, "big-int", "open", nil)
		apiWant[apiEventResult](t, r, http.StatusOK)
		if !bytes.Contains(r.body, fmt.Appendf(nil, `"opened":%d`, big+1)) {
			t.Errorf("%s: want opened %d", r, big+1)
		}
	})

	t.Run("an unknown definition is not_found", func(t *testing.T) {
		t.Parallel()
		p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", map[string]any{"definition": "window", "id": "w-1"}),
			http.StatusNotFound, "not_found")
		if !strings.Contains(p.Detail, "window") {
			t.Errorf("detail %q does not name the definition", p.Detail)
		}
		apiProblemOf(t, env.do(t, "GET", "/v1/instances/w-1", nil), http.StatusNotFound, "not_found")
	})
}

// apiTestGet: GET /v1/instances/{id}, its ETag the revision.
func apiTestGet(t *testing.T, env *apiEnv) {
	env.door(t, "get-1")
	for rev := 0; rev < 3; rev++ {
		if rev > 0 {
			env.mustFire(t, "get-1", "knock", map[string]any{"note": fmt.Sprint(rev)})
		}
		r := env.do(t, "GET", "/v1/instances/get-1", nil)
		inst := apiWant[apiInstance](t, r, http.StatusOK)
		// GET of one instance adds its pending timers (door has none).
		apiCheckFields(t, r.String(), apiRaw(t, r), append(slices.Clone(apiInstanceFields), "timers"))
		if timers, ok := apiRaw(t, r)["timers"].([]any); !ok || len(timers) != 0 {
			t.Errorf("timers %v, want []", apiRaw(t, r)["timers"])
		}
		if etag := r.header.Get("ETag"); etag != fmt.Sprintf(`"%d"`, rev) || inst.Revision != int64(rev) {
			t.Errorf("revision %d: ETag %s, revision %d", rev, etag, inst.Revision)
		}
	}
	p := apiProblemOf(t, env.do(t, "GET", "/v1/instances/nope", nil), http.StatusNotFound, "not_found")
	if p.Instance != nil {
		t.Errorf("not_found carries an instance: %+v", p.Instance)
	}
}

// apiStep is one event.
type apiStep struct {
	event   string
	payload map[string]any
}

// apiTestEvents: POST /v1/instances/{id}/events accepted, and refused with each error code of an
// event; a refused event changes nothing.
func apiTestEvents(t *testing.T, env *apiEnv) {
	cases := []struct {
		name    string
		setup   []apiStep // accepted first
		event   string
		payload map[string]any
		header  []string
		status  int
		code    string // of the problem, for a refused event
		state   string // after the event (accepted) or still (refused)
		check   func(t *testing.T, res apiEventResult, p apiProblem)
	}{
		{name: "accepted", event: "open", status: 200, state: "opened",
			check: func(t *testing.T, res apiEventResult, _ apiProblem) {
				tr := res.Transition
				if tr.Seq != 1 || tr.Event != "open" || tr.From != "closed" || tr.To != "opened" || !tr.At.Equal(res.Instance.UpdatedAt) {
					t.Errorf("transition %+v", tr)
				}
				apiSame(t, "payload", tr.Payload, map[string]any{})
				apiSame(t, "context_before", tr.ContextBefore, apiDoorContext("1234"))
				after := apiDoorContext("1234")
				after["opened"] = 1
				apiSame(t, "context_after", tr.ContextAfter, after)
				apiSame(t, "instance context", res.Instance.Context, after)
				if !slices.Equal(res.Instance.Events, []string{"close", "smash"}) || res.Instance.Final {
					t.Errorf("instance %+v", res.Instance)
				}
			}},
		{name: "a self-transition re-enters the state", event: "knock", payload: map[string]any{"note": "who's there"}, status: 200, state: "closed",
			check: func(t *testing.T, res apiEventResult, _ apiProblem) {
				inst := res.Instance
				if inst.Context["note"] != "who's there" || !inst.EnteredAt.Equal(inst.UpdatedAt) || inst.EnteredAt.Before(inst.CreatedAt) {
					t.Errorf("instance %+v", inst)
				}
				if res.Transition.From != "closed" || res.Transition.To != "closed" {
					t.Errorf("transition %+v", res.Transition)
				}
			}},
		{name: "a guarded branch taken", setup: []apiStep{{"lock", nil}}, event: "unlock", payload: map[string]any{"code": "1234"},
			status: 200, state: "closed"},
		{name: "If-Match with the current revision", setup: []apiStep{{"open", nil}}, event: "close", header: []string{"If-Match", `"1"`},
			status: 200, state: "closed"},
		{name: "If-Match weak", setup: []apiStep{{"open", nil}}, event: "close", header: []string{"If-Match", `W/"1"`},
			status: 200, state: "closed"},
		{name: "If-Match bare", setup: []apiStep{{"open", nil}}, event: "close", header: []string{"If-Match", `1`},
			status: 200, state: "closed"},

		{name: "unknown_event", event: "fly", status: 422, code: "unknown_event", state: "closed"},
		{name: "invalid_transition", event: "close", status: 409, code: "invalid_transition", state: "closed"},
		{name: "guard_rejected", setup: []apiStep{{"lock", nil}}, event: "unlock", payload: map[string]any{"code": "0000"},
			status: 409, code: "guard_rejected", state: "locked",
			check: func(t *testing.T, _ apiEventResult, p apiProblem) {
				want := []apiBlocker{
					{To: "closed", Guard: "event.code == ctx.code", Message: "the code is wrong"},
					{To: "closed", Guard: `event.code == "master" && ctx.opened > 100`, Message: "the master code opens only well-used doors"},
				}
				if !reflect.DeepEqual(p.Blockers, want) {
					t.Errorf("blockers\n got %+v\nwant %+v", p.Blockers, want)
				}
			}},
		{name: "instance_final", setup: []apiStep{{"smash", nil}}, event: "open", status: 409, code: "instance_final", state: "broken",
			check: func(t *testing.T, _ apiEventResult, p apiProblem) {
				if !p.Instance.Final || len(p.Instance.Events) != 0 || p.Instance.Events == nil {
					t.Errorf("instance %+v: want final, with events []", p.Instance)
				}
			}},
		{name: "invalid_payload: a field of the wrong type", setup: []apiStep{{"lock", nil}}, event: "unlock", payload: map[string]any{"code": 1234},
			status: 422, code: "invalid_payload", state: "locked"},
		{name: "invalid_payload: an unknown field", event: "knock", payload: map[string]any{"note": "x", "volume": 11},
			status: 422, code: "invalid_payload", state: "closed"},
		{name: "invalid_payload: a payload for an event without one", event: "open", payload: map[string]any{"force": true},
			status: 422, code: "invalid_payload", state: "closed"},
		{name: "invalid_payload: a list of the wrong type", event: "label", payload: map[string]any{"tags": "red"},
			status: 422, code: "invalid_payload", state: "closed"},
		{name: "version_conflict: a revision ahead", event: "open", header: []string{"If-Match", `"7"`},
			status: 412, code: "version_conflict", state: "closed"},
		{name: "version_conflict: a stale revision", setup: []apiStep{{"open", nil}, {"close", nil}}, event: "open", header: []string{"If-Match", `"1"`},
			status: 412, code: "version_conflict", state: "closed",
			check: func(t *testing.T, _ apiEventResult, p apiProblem) {
				if p.Instance.Revision != 2 {
					t.Errorf("the problem's instance is at revision %d, want the current 2", p.Instance.Revision)
				}
			}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("event-%d", i)
			env.door(t, id)
			for _, s := range c.setup {
				env.mustFire(t, id, s.event, s.payload)
			}
			before := env.instance(t, id)
			r := env.fire(t, id, c.event, c.payload, c.header...)
			var res apiEventResult
			var p apiProblem
			if c.code == "" {
				res = apiWant[apiEventResult](t, r, c.status)
				raw := apiRaw(t, r)
				apiCheckFields(t, r.String(), raw, []string{"instance", "transition"})
				apiCheckFields(t, r.String(), raw["instance"], apiInstanceFields)
				if res.Instance.State != c.state || res.Instance.Revision != before.Revision+1 || res.Transition.Seq != res.Instance.Revision {
					t.Errorf("after %s: %+v", c.event, res)
				}
				apiSame(t, "GET after the event", env.instance(t, id), res.Instance)
			} else {
				p = apiProblemOf(t, r, c.status, c.code)
				// api.md: 409 carries the instance; so do the others the instance was read for.
				if p.Instance == nil {
					t.Fatalf("%s: no instance in the problem", r)
				}
				apiSame(t, "the problem's instance", *p.Instance, before)
				if c.code != "guard_rejected" && p.Blockers != nil {
					t.Errorf("%s: blockers in a %s problem", r, c.code)
				}
				after := env.instance(t, id)
				apiSame(t, "the instance after a refused event", after, before)
				if h := env.history(t, id, 0); int64(len(h)) != before.Revision {
					t.Errorf("a refused event left %d history rows, want %d", len(h), before.Revision)
				}
			}
			if c.check != nil {
				c.check(t, res, p)
			}
		})
	}
	t.Run("not_found", func(t *testing.T) {
		t.Parallel()
		p := apiProblemOf(t, env.fire(t, "no-such-door", "open", nil), http.StatusNotFound, "not_found")
		if p.Instance != nil {
			t.Errorf("not_found carries an instance")
		}
	})
}

// apiTestIdempotency: an Idempotency-Key replayed gives the first answer again and writes nothing;
// with another request it is idempotency_mismatch.
func apiTestIdempotency(t *testing.T, env *apiEnv) {
	env.door(t, "idem-1")
	first := env.fire(t, "idem-1", "knock", map[string]any{"note": "once"}, "Idempotency-Key", "key-1", "X-Request-ID", "req-1")
	apiWant[apiEventResult](t, first, http.StatusOK)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the first answer says Idempotent-Replayed: %q", first.header.Get("Idempotent-Replayed"))
	}

	replay := func(t *testing.T, what string, header ...string) {
		t.Helper()
		r := env.fire(t, "idem-1", "knock", map[string]any{"note": "once"}, append([]string{"Idempotency-Key", "key-1"}, header...)...)
		apiWant[apiEventResult](t, r, http.StatusOK)
		if r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: Idempotent-Replayed %q, want true", what, r.header.Get("Idempotent-Replayed"))
		}
		if !bytes.Equal(r.body, first.body) {
			t.Errorf("%s: the replay differs from the first answer:\n got %s\nwant %s", what, r.body, first.body)
		}
	}
	replay(t, "a replay")
	if h := env.history(t, "idem-1", 0); len(h) != 1 || h[0].IdempotencyKey != "key-1" || h[0].RequestID != "req-1" {
		t.Fatalf("history after a replay: %+v, want the one row of the first request", h)
	}
	if inst := env.instance(t, "idem-1"); inst.Revision != 1 {
		t.Errorf("revision %d after a replay, want 1", inst.Revision)
	}

	// Later events do not change the first answer; a replay with a stale If-Match is still the
	// replay, since a client retries with the headers it sent.
	env.mustFire(t, "idem-1", "open", nil)
	replay(t, "a replay after another event")
	replay(t, "a replay with a stale If-Match", "If-Match", `"0"`)
	if inst := env.instance(t, "idem-1"); inst.Revision != 2 || inst.State != "opened" {
		t.Errorf("after the replays: %+v, want revision 2, opened", inst)
	}

	// The same key with another request.
	for name, body := range map[string]map[string]any{
		"another payload": {"event": "knock", "payload": map[string]any{"note": "twice"}},
		"another event":   {"event": "close"},
		"no payload":      {"event": "knock"},
	} {
		p := apiProblemOf(t, env.do(t, "POST", "/v1/instances/idem-1/events", body, "Idempotency-Key", "key-1"),
			http.StatusUnprocessableEntity, "idempotency_mismatch")
		if !strings.Contains(p.Detail, "key-1") {
			t.Errorf("%s: detail %q does not name the key", name, p.Detail)
		}
	}
	if h := env.history(t, "idem-1", 0); len(h) != 2 {
		t.Errorf("history has %d rows, want 2", len(h))
	}

	// A key is the instance's: another instance may use it.
	env.door(t, "idem-2")
	r := env.fire(t, "idem-2", "knock", map[string]any{"note": "once"}, "Idempotency-Key", "key-1")
	apiWant[apiEventResult](t, r, http.StatusOK)
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Error("the key of another instance was replayed")
	}

	// A refused event does not use up its key: the retry is judged afresh.
	apiProblemOf(t, env.fire(t, "idem-2", "close", nil, "Idempotency-Key", "key-2"), http.StatusConflict, "invalid_transition")
	apiProblemOf(t, env.fire(t, "idem-2", "close", nil, "Idempotency-Key", "key-2"), http.StatusConflict, "invalid_transition")
	res := env.mustFire(t, "idem-2", "open", nil, "Idempotency-Key", "key-2")
	if res.Instance.Revision != 2 {
		t.Errorf("revision %d, want 2", res.Instance.Revision)
	}
}

// apiTestExplain: POST /v1/instances/{id}/explain answers 200 whatever the event would do, every
// branch with its guard's value, and changes nothing.
func apiTestExplain(t *testing.T, env *apiEnv) {
	yes, no := true, false
	type branch struct {
		To     string `json:"to"`
		Guard  string `json:"guard"`
		Result *bool  `json:"result"`
		Taken  bool   `json:"taken"`
	}
	type explanation struct {
		Event    string         `json:"event"`
		State    string         `json:"state"`
		Branches []branch       `json:"branches"`
		To       string         `json:"to"`
		Context  map[string]any `json:"context"`
		Error    *struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		} `json:"error"`
	}
	const g1, g2 = "event.code == ctx.code", `event.code == "master" && ctx.opened > 100`
	cases := []struct {
		name     string
		event    string
		payload  map[string]any
		to       string
		code     string // of the refusal
		branches []branch
	}{
		{"the first branch holds", "unlock", map[string]any{"code": "1234"}, "closed", "",
			[]branch{{"closed", g1, &yes, true}, {"closed", g2, &no, false}}},
		{"no branch holds", "unlock", map[string]any{"code": "9999"}, "", "guard_rejected",
			[]branch{{"closed", g1, &no, false}, {"closed", g2, &no, false}}},
		{"an unguarded branch", "smash", nil, "broken", "", []branch{{"broken", "", nil, true}}},
		{"not handled here", "open", nil, "", "invalid_transition", []branch{}},
		{"unknown", "fly", nil, "", "unknown_event", []branch{}},
		{"a bad payload", "unlock", map[string]any{"code": 1}, "", "invalid_payload", []branch{}},
	}
	env.door(t, "explain-1")
	env.mustFire(t, "explain-1", "lock", nil)
	before := env.instance(t, "explain-1")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"event": c.event}
			if c.payload != nil {
				body["payload"] = c.payload
			}
			x := apiWant[explanation](t, env.do(t, "POST", "/v1/instances/explain-1/explain", body), http.StatusOK)
			if x.Event != c.event || x.State != "locked" || x.To != c.to || !reflect.DeepEqual(x.Branches, c.branches) {
				t.Errorf("explanation %+v", x)
			}
			switch {
			case c.code == "" && (x.Error != nil || x.Context["code"] != "1234"):
				t.Errorf("accepted: error %+v, context %v", x.Error, x.Context)
			case c.code != "" && (x.Error == nil || x.Error.Code != c.code || x.Error.Detail == ""):
				t.Errorf("error %+v, want %s", x.Error, c.code)
			}
		})
	}
	apiSame(t, "the instance after explaining", env.instance(t, "explain-1"), before)
	if h := env.history(t, "explain-1", 0); len(h) != 1 {
		t.Errorf("history has %d rows after explaining, want 1", len(h))
	}
	env.door(t, "explain-2")
	env.mustFire(t, "explain-2", "smash", nil)
	x := apiWant[explanation](t, env.do(t, "POST", "/v1/instances/explain-2/explain", map[string]any{"event": "open"}), http.StatusOK)
	if x.Error == nil || x.Error.Code != "instance_final" || x.State != "broken" || len(x.Branches) != 0 {
		t.Errorf("explaining an event to a final instance: %+v", x)
	}
	apiProblemOf(t, env.do(t, "POST", "/v1/instances/nope/explain", map[string]any{"event": "open"}), http.StatusNotFound, "not_found")
}

// apiTestHistory: GET /v1/instances/{id}/history, oldest first, gap-free, page by page, with the
// request ids and idempotency keys of the requests.
func apiTestHistory(t *testing.T, env *apiEnv) {
	steps := []struct {
		event   string
		payload map[string]any
		key     string
		to      string
	}{
		{"knock", map[string]any{"note": "one"}, "k-1", "closed"},
		{"open", nil, "", "opened"},
		{"close", nil, "k-3", "closed"},
		{"lock", nil, "", "locked"},
		{"unlock", map[string]any{"code": "1234"}, "k-5", "closed"},
		{"label", map[string]any{"note": "n", "tags": []any{"a", "b"}, "owner": "ann", "meta": map[string]any{"x": []any{1, "y"}}}, "", "closed"},
		{"open", nil, "k-7", "opened"},
	}
	created := env.door(t, "hist-1")
	var results []apiEventResult
	for i, s := range steps {
		header := []string{"X-Request-ID", fmt.Sprintf("req-%d", i+1)}
		if s.key != "" {
			header = append(header, "Idempotency-Key", s.key)
		}
		r := env.fire(t, "hist-1", s.event, s.payload, header...)
		results = append(results, apiWant[apiEventResult](t, r, http.StatusOK))
		if got := r.header.Get("X-Request-ID"); got != fmt.Sprintf("req-%d", i+1) {
			t.Errorf("X-Request-ID %q in the answer", got)
		}
	}
	// A refused event is not in the history.
	apiProblemOf(t, env.fire(t, "hist-1", "open", nil), http.StatusConflict, "invalid_transition")

	for _, limit := range []int{0, 1, 2, 3, 7, 100} {
		h := env.history(t, "hist-1", limit)
		if len(h) != len(steps) {
			t.Fatalf("limit %d: %d rows, want %d", limit, len(h), len(steps))
		}
		prev := apiHistoryEntry{To: "closed", ContextAfter: created.Context, At: created.CreatedAt}
		for i, e := range h {
			s := steps[i]
			wantPayload := s.payload
			if wantPayload == nil {
				wantPayload = map[string]any{}
			}
			if e.Seq != int64(i+1) || e.Event != s.event || e.From != prev.To || e.To != s.to || e.Source != "api" ||
				e.RequestID != fmt.Sprintf("req-%d", i+1) || e.IdempotencyKey != s.key || e.DefinitionVersion != 1 ||
				e.At.Before(prev.At) || !e.At.Equal(results[i].Transition.At) {
				t.Errorf("limit %d: row %d: %+v", limit, i, e)
			}
			apiSame(t, fmt.Sprintf("row %d payload", i), e.Payload, wantPayload)
			apiSame(t, fmt.Sprintf("row %d context_before", i), e.ContextBefore, prev.ContextAfter)
			apiSame(t, fmt.Sprintf("row %d context_after", i), e.ContextAfter, results[i].Instance.Context)
			prev = e
		}
		if inst := env.instance(t, "hist-1"); inst.Revision != int64(len(h)) || inst.State != h[len(h)-1].To {
			t.Errorf("instance %+v does not agree with its history", inst)
		}
	}

	// The pages, one by one.
	page := apiWant[apiPage[apiHistoryEntry]](t, env.do(t, "GET", "/v1/instances/hist-1/history?limit=3&after=3", nil), http.StatusOK)
	if len(page.Items) != 3 || page.Items[0].Seq != 4 || page.Next != "6" {
		t.Errorf("limit 3 after 3: %+v", page)
	}
	page = apiWant[apiPage[apiHistoryEntry]](t, env.do(t, "GET", "/v1/instances/hist-1/history?after=7", nil), http.StatusOK)
	if len(page.Items) != 0 || page.Items == nil || page.Next != "" {
		t.Errorf("after the last: %+v", page)
	}

	// A request id the server cannot keep is replaced by one of its own, in the answer and in the
	// history alike.
	env.door(t, "hist-3")
	for i, bad := range []string{"caf\u00e9", strings.Repeat("r", 201), " padded"} {
		r := env.fire(t, "hist-3", "knock", nil, "X-Request-ID", bad)
		apiWant[apiEventResult](t, r, http.StatusOK)
		got := r.header.Get("X-Request-ID")
		if h := env.history(t, "hist-3", 0); got == "" || got == bad || h[i].RequestID != got {
			t.Errorf("X-Request-ID %q: answered %q, history %q", bad, got, h[i].RequestID)
		}
	}

	// An instance without events has an empty history; an unknown one is not_found.
	env.door(t, "hist-2")
	page = apiWant[apiPage[apiHistoryEntry]](t, env.do(t, "GET", "/v1/instances/hist-2/history", nil), http.StatusOK)
	if len(page.Items) != 0 || page.Items == nil {
		t.Errorf("a new instance's history: %+v", page)
	}
	apiProblemOf(t, env.do(t, "GET", "/v1/instances/nope/history", nil), http.StatusNotFound, "not_found")
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=-1", "after=x", "before=1", "limit=1&limit=2"} {
		apiProblemOf(t, env.do(t, "GET", "/v1/instances/hist-1/history?"+q, nil), http.StatusBadRequest, "invalid_request")
	}
}

func TestAPIListInstances(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		// Created out of order, with ids whose order by byte (the API's, on both databases) is not
		// their order by number, by letter case or in a locale.
		doors := []string{"d-10", "d-2", "d-1", "D-3", "d-11", "d-é", "d-9", "d-20", "d-Z"}
		locked := map[string]bool{"d-2": true, "d-11": true, "D-3": true}
		for _, id := range doors {
			env.door(t, id)
			if locked[id] {
				env.mustFire(t, id, "lock", nil)
			}
		}
		tickets := []string{"t-2", "t-1", "t-3"}
		for _, id := range tickets {
			env.create(t, "ticket", id, nil)
		}
		env.mustFire(t, "t-3", "resolve", nil)
		// Two doors on version 2.
		r := env.do(t, "PUT", "/v1/definitions/door", apiReadFile(t, apiPutDir+"/door_v2.yaml"), "Content-Type", "application/yaml")
		apiWant[map[string]any](t, r, http.StatusCreated)
		v2 := []string{"d-30", "d-4"}
		for _, id := range v2 {
			env.door(t, id)
		}
		allDoors := append(slices.Clone(doors), v2...)
		sorted := func(ids ...[]string) []string {
			all := slices.Concat(ids...)
			slices.Sort(all) // byte order
			return all
		}
		cases := []struct {
			query url.Values
			want  []string
		}{
			{url.Values{}, sorted(allDoors, tickets)},
			{url.Values{"definition": {"door"}}, sorted(allDoors)},
			{url.Values{"definition": {"ticket"}}, sorted(tickets)},
			{url.Values{"definition": {"ticket"}, "state": {"open"}}, []string{"t-1", "t-2"}},
			{url.Values{"state": {"locked"}}, []string{"D-3", "d-11", "d-2"}},
			{url.Values{"state": {"closed"}, "definition": {"door"}}, sorted([]string{"d-1", "d-10", "d-20", "d-9", "d-Z", "d-é"}, v2)},
			{url.Values{"definition": {"door"}, "version": {"1"}}, sorted(doors)},
			{url.Values{"definition": {"door"}, "version": {"2"}}, sorted(v2)},
			{url.Values{"version": {"2"}}, sorted(v2)},
			{url.Values{"definition": {"door"}, "version": {"3"}}, nil},
			{url.Values{"definition": {"window"}}, nil},
			{url.Values{"state": {"nowhere"}}, nil},
		}
		for _, c := range cases {
			for _, limit := range []int{0, 1, 2, 3, 1000} {
				got := apiIDs(env.list(t, c.query, limit))
				if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
					t.Errorf("%v, limit %d: %v, want %v", c.query, limit, got, c.want)
				}
			}
		}

		// Page by page: next is the last id of a full page and absent on the last one, even when
		// the last page is full.
		page := apiWant[apiPage[apiInstance]](t, env.do(t, "GET", "/v1/instances?definition=ticket&limit=2", nil), http.StatusOK)
		if !slices.Equal(apiIDs(page.Items), []string{"t-1", "t-2"}) || page.Next != "t-2" {
			t.Errorf("first page: %v next %q", apiIDs(page.Items), page.Next)
		}
		page = apiWant[apiPage[apiInstance]](t, env.do(t, "GET", "/v1/instances?definition=ticket&limit=2&after=t-2", nil), http.StatusOK)
		if !slices.Equal(apiIDs(page.Items), []string{"t-3"}) || page.Next != "" {
			t.Errorf("last page: %v next %q", apiIDs(page.Items), page.Next)
		}
		r = env.do(t, "GET", "/v1/instances?definition=ticket&limit=3", nil)
		if raw := apiRaw(t, r); raw["next"] != nil {
			t.Errorf("a full last page has next %v", raw["next"])
		}
		page = apiWant[apiPage[apiInstance]](t, env.do(t, "GET", "/v1/instances?after=zzz", nil), http.StatusOK)
		if page.Items == nil || len(page.Items) != 0 {
			t.Errorf("after the last id: %+v, want items []", page)
		}
		// after need not be an existing id.
		page = apiWant[apiPage[apiInstance]](t, env.do(t, "GET", "/v1/instances?definition=door&after=d-15&limit=2", nil), http.StatusOK)
		if !slices.Equal(apiIDs(page.Items), []string{"d-2", "d-20"}) {
			t.Errorf("after d-15: %v", apiIDs(page.Items))
		}
		// Each item is a whole instance.
		for _, item := range apiRaw(t, env.do(t, "GET", "/v1/instances?limit=3", nil))["items"].([]any) {
			apiCheckFields(t, "a listed instance", item, apiInstanceFields)
		}
		inst := env.list(t, url.Values{"state": {"locked"}}, 0)[0]
		apiSame(t, "a listed instance", inst, env.instance(t, inst.ID))

		for _, q := range []string{"limit=0", "limit=-1", "limit=1001", "limit=ten", "version=0", "version=x",
			"sort=id", "definition=door&definition=ticket"} {
			apiProblemOf(t, env.do(t, "GET", "/v1/instances?"+q, nil), http.StatusBadRequest, "invalid_request")
		}
	})
}

func TestAPIDefinitions(t *testing.T) {
	t.Parallel()
	type summary struct {
		Name        string `json:"name"`
		Version     int    `json:"version"`
		Description string `json:"description"`
		Running     int64  `json:"running"`
	}
	type state struct {
		Name   string   `json:"name"`
		Final  bool     `json:"final"`
		Events []string `json:"events"`
	}
	type version struct {
		Name        string   `json:"name"`
		Version     int      `json:"version"`
		Description string   `json:"description"`
		Source      string   `json:"source"`
		States      []state  `json:"states"`
		Events      []string `json:"events"`
	}
	apiEach(t, func(t *testing.T, env *apiEnv) {
		list := func() []summary {
			return apiWant[apiPage[summary]](t, env.do(t, "GET", "/v1/definitions", nil), http.StatusOK).Items
		}
		want := []summary{{"door", 1, "A door with a code lock.", 0}, {"ticket", 1, "A support ticket.", 0}}
		if got := list(); !reflect.DeepEqual(got, want) {
			t.Errorf("definitions %+v, want %+v", got, want)
		}
		// running counts the instances not in a final state.
		for _, id := range []string{"a", "b", "c"} {
			env.door(t, id)
		}
		env.mustFire(t, "b", "open", nil)
		env.mustFire(t, "c", "smash", nil)
		env.create(t, "ticket", "t", nil)
		env.mustFire(t, "t", "resolve", nil)
		want[0].Running = 2
		if got := list(); !reflect.DeepEqual(got, want) {
			t.Errorf("definitions %+v, want %+v", got, want)
		}

		source := string(apiReadFile(t, apiDefsDir+"/door.yaml"))
		r := env.do(t, "GET", "/v1/definitions/door", nil)
		door := apiWant[version](t, r, http.StatusOK)
		wantStates := []state{
			{"closed", false, []string{"open", "lock", "knock", "label", "smash"}},
			{"opened", false, []string{"close", "smash"}},
			{"locked", false, []string{"unlock", "smash"}},
			{"broken", true, []string{}},
		}
		if door.Name != "door" || door.Version != 1 || door.Source != source || door.Description != "A door with a code lock." ||
			!reflect.DeepEqual(door.States, wantStates) || !slices.Equal(door.Events, []string{"open", "lock", "knock", "label", "smash", "close", "unlock"}) {
			t.Errorf("door: %+v", door)
		}
		// The running instances per version (the final c is not one), [] when none runs; only the
		// answer about the definition has them, not those about its stored versions.
		apiSame(t, "door's running_by_version", apiRaw(t, r)["running_by_version"], []any{map[string]any{"version": 1, "count": 2}})
		apiSame(t, "ticket's running_by_version", apiRaw(t, env.do(t, "GET", "/v1/definitions/ticket", nil))["running_by_version"], []any{})
		r = env.do(t, "GET", "/v1/definitions/door/versions", nil)
		versions := apiWant[apiPage[version]](t, r, http.StatusOK)
		if len(versions.Items) != 1 || !reflect.DeepEqual(versions.Items[0], door) {
			t.Errorf("versions: %+v", versions)
		}
		if _, ok := apiRaw(t, r)["items"].([]any)[0].(map[string]any)["running_by_version"]; ok {
			t.Errorf("%s: running_by_version in a stored version", r)
		}
		r = env.do(t, "GET", "/v1/definitions/door/versions/1", nil)
		v1 := apiWant[version](t, r, http.StatusOK)
		if !reflect.DeepEqual(v1, door) {
			t.Errorf("version 1: %+v", v1)
		}
		if _, ok := apiRaw(t, r)["running_by_version"]; ok {
			t.Errorf("%s: running_by_version in a stored version", r)
		}

		for _, path := range []string{"/v1/definitions/door/diagram", "/v1/definitions/door/diagram?version=1"} {
			r := env.do(t, "GET", path, nil)
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
				!strings.HasPrefix(string(r.body), "stateDiagram-v2") || !strings.Contains(string(r.body), "locked") {
				t.Errorf("%s", r)
			}
		}

		for _, c := range []struct {
			path   string
			status int
			code   string
		}{
			{"/v1/definitions/window", 404, "not_found"},
			{"/v1/definitions/window/versions", 404, "not_found"},
			{"/v1/definitions/window/versions/1", 404, "not_found"},
			{"/v1/definitions/window/diagram", 404, "not_found"},
			{"/v1/definitions/door/versions/2", 404, "not_found"},
			{"/v1/definitions/door/diagram?version=2", 404, "not_found"},
			{"/v1/definitions/door/versions/0", 400, "invalid_request"},
			{"/v1/definitions/door/versions/one", 400, "invalid_request"},
			{"/v1/definitions/door/diagram?version=0", 400, "invalid_request"},
			{"/v1/definitions/door/diagram?v=1", 400, "invalid_request"},
			{"/v1/definitions?name=door", 400, "invalid_request"},
		} {
			apiProblemOf(t, env.do(t, "GET", c.path, nil), c.status, c.code)
		}
	})
}

func TestAPIPutDefinition(t *testing.T) {
	t.Parallel()
	type putResult struct {
		Definition struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
			Source  string `json:"source"`
		} `json:"definition"`
		Created bool `json:"created"`
	}
	v1 := apiReadFile(t, apiDefsDir+"/door.yaml")
	v2 := apiReadFile(t, apiPutDir+"/door_v2.yaml")
	put := func(t *testing.T, env *apiEnv, name string, body []byte, header ...string) apiResponse {
		t.Helper()
		return env.do(t, "PUT", "/v1/definitions/"+name, body, append([]string{"Content-Type", "application/yaml"}, header...)...)
	}
	apiEach(t, func(t *testing.T, env *apiEnv) {
		old := env.door(t, "old")
		env.mustFire(t, "old", "lock", nil)

		// The content loaded at start: the same version.
		res := apiWant[putResult](t, put(t, env, "door", v1), http.StatusOK)
		if res.Created || res.Definition.Version != 1 {
			t.Errorf("putting version 1 again: %+v", res)
		}
		// New content: the next version, whichever YAML content type.
		r := put(t, env, "door", v2)
		res = apiWant[putResult](t, r, http.StatusCreated)
		if !res.Created || res.Definition.Version != 2 || res.Definition.Name != "door" || res.Definition.Source != string(v2) {
			t.Errorf("putting version 2: %+v", res)
		}
		if loc := r.header.Get("Location"); loc != "/v1/definitions/door/versions/2" {
			t.Errorf("Location %q", loc)
		}
		for _, ct := range []string{"application/yaml", "application/x-yaml", "text/yaml", "text/yaml; charset=utf-8"} {
			res = apiWant[putResult](t, put(t, env, "door", v2, "Content-Type", ct), http.StatusOK)
			if res.Created || res.Definition.Version != 2 {
				t.Errorf("putting version 2 again as %s: %+v", ct, res)
			}
		}
		res = apiWant[putResult](t, put(t, env, "door", v1), http.StatusOK)
		if res.Created || res.Definition.Version != 1 {
			t.Errorf("putting version 1 after 2: %+v", res)
		}

		// Invalid definitions: every problem, with its place.
		for _, c := range []struct {
			name, path string
			body       []byte
			want       []string // in the messages, in order
			columns    bool     // every problem has a column, not only a line
		}{
			{"invalid YAML", "door", apiReadFile(t, apiPutDir+"/syntax.yaml"), []string{"invalid YAML"}, false},
			{"an invalid definition", "door", apiReadFile(t, apiPutDir+"/invalid.yaml"),
				[]string{`initial state "shut"`, `"nowhere"`, "unknown field cdoe", "expected bool"}, true},
			{"a name that is not the path's", "gate", v1, []string{`named "door"`}, true},
			{"not a mapping", "door", []byte("- just\n- a list\n"), []string{""}, false},
		} {
			p := apiProblemOf(t, put(t, env, c.path, c.body), http.StatusUnprocessableEntity, "invalid_definition")
			var errs []apiDiagnostic // warnings may come along
			for _, e := range p.Errors {
				if e.Severity == "error" {
					errs = append(errs, e)
				}
			}
			if len(errs) != len(c.want) {
				t.Errorf("%s: problems %+v, want %d errors", c.name, p.Errors, len(c.want))
				continue
			}
			for i, e := range errs {
				if e.Line < 1 || (c.columns && e.Column < 1) || !strings.Contains(e.Message, c.want[i]) {
					t.Errorf("%s: problem %d: %+v, want a place and %q", c.name, i, e, c.want[i])
				}
				if !strings.Contains(p.Detail, e.Message) {
					t.Errorf("%s: the detail %q leaves out %q", c.name, p.Detail, e.Message)
				}
			}
		}
		apiProblemOf(t, put(t, env, "door", v2, "Content-Type", "application/json"), http.StatusUnsupportedMediaType, "unsupported_media_type")
		apiProblemOf(t, put(t, env, "door", nil), http.StatusBadRequest, "invalid_request")
		apiProblemOf(t, env.do(t, "GET", "/v1/definitions/gate", nil), http.StatusNotFound, "not_found")

		// Versions 1 and 2 only; the latest is 2.
		type ver struct {
			Version int `json:"version"`
		}
		vs := apiWant[apiPage[ver]](t, env.do(t, "GET", "/v1/definitions/door/versions", nil), http.StatusOK)
		if !reflect.DeepEqual(vs.Items, []ver{{1}, {2}}) {
			t.Errorf("versions %+v", vs.Items)
		}
		if latest := apiWant[ver](t, env.do(t, "GET", "/v1/definitions/door", nil), http.StatusOK); latest.Version != 2 {
			t.Errorf("latest version %d", latest.Version)
		}
		for v, want := range map[int]bool{1: false, 2: true} {
			r := env.do(t, "GET", fmt.Sprintf("/v1/definitions/door/diagram?version=%d", v), nil)
			if r.status != 200 || strings.Contains(string(r.body), "ajar") != want {
				t.Errorf("version %d: %s", v, r)
			}
		}

		// The instance of version 1 keeps its version and its rules: open goes to opened.
		if inst := env.instance(t, "old"); inst.Version != 1 || inst.Revision != 1 || !inst.CreatedAt.Equal(old.CreatedAt) {
			t.Errorf("the old instance after the put: %+v", inst)
		}
		env.mustFire(t, "old", "unlock", map[string]any{"code": "1234"})
		if res := env.mustFire(t, "old", "open", nil); res.Instance.State != "opened" || res.Instance.Version != 1 {
			t.Errorf("version 1's open: %+v", res.Instance)
		}
		apiProblemOf(t, env.fire(t, "old", "fly", nil), http.StatusUnprocessableEntity, "unknown_event")
		// A new instance runs on version 2: open goes to ajar.
		inst := env.door(t, "new")
		if inst.Version != 2 {
			t.Errorf("a new instance on version %d", inst.Version)
		}
		if res := env.mustFire(t, "new", "open", nil); res.Instance.State != "ajar" || !slices.Equal(res.Instance.Events, []string{"close"}) {
			t.Errorf("version 2's open: %+v", res.Instance)
		}
		for id, v := range map[string]int{"old": 1, "new": 2} {
			for _, e := range env.history(t, id, 0) {
				if e.DefinitionVersion != v {
					t.Errorf("%s: history row %+v, want definition_version %d", id, e, v)
				}
			}
		}
	})
}

// apiTestOperations: /healthz, /readyz, Swagger UI and its document, and the problems of routing.
func apiTestOperations(t *testing.T, env *apiEnv) {
	for _, path := range []string{"/healthz", "/readyz"} {
		if st := apiWant[struct{ Status string }](t, env.do(t, "GET", path, nil), http.StatusOK); st.Status != "ok" {
			t.Errorf("%s: %+v", path, st)
		}
	}
	r := env.do(t, "GET", "/swagger/index.html", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("%s", r)
	}
	type openapi struct {
		Swagger string
		Paths   map[string]map[string]json.RawMessage
	}
	doc := apiWant[openapi](t, env.do(t, "GET", "/swagger/doc.json", nil), http.StatusOK)
	if doc.Swagger == "" {
		t.Errorf("doc.json has no swagger version")
	}
	for path, methods := range map[string][]string{
		"/v1/instances":                             {"get", "post"},
		"/v1/instances/{id}":                        {"get"},
		"/v1/instances/{id}/events":                 {"post"},
		"/v1/instances/{id}/explain":                {"post"},
		"/v1/instances/{id}/history":                {"get"},
		"/v1/definitions":                           {"get"},
		"/v1/definitions/{name}":                    {"get", "put"},
		"/v1/definitions/{name}/versions":           {"get"},
		"/v1/definitions/{name}/versions/{version}": {"get"},
		"/v1/definitions/{name}/diagram":            {"get"},
		"/healthz":                                  {"get"},
		"/readyz":                                   {"get"},
	} {
		for _, m := range methods {
			if doc.Paths[path][m] == nil {
				t.Errorf("doc.json lacks %s %s", m, path)
			}
		}
	}
	// An unknown route and a method a route lacks are problems too.
	apiProblemOf(t, env.do(t, "GET", "/v1/nothing", nil), http.StatusNotFound, "not_found")
	apiProblemOf(t, env.do(t, "DELETE", "/v1/instances/x", nil), http.StatusMethodNotAllowed, "method_not_allowed")
}

// apiTestNumberText: an answer and its replay (or a later GET) are the same bytes, also for numbers
// written in exponent form.
func apiTestNumberText(t *testing.T, env *apiEnv) {
	const body = `{"definition":"door","id":"numbers","context":{"code":"1","meta":[1e-7,1E3,2.50,-0]}}`
	first := env.do(t, "POST", "/v1/instances", body)
	apiWant[apiInstance](t, first, http.StatusCreated)
	again := env.do(t, "POST", "/v1/instances", body)
	apiWant[apiInstance](t, again, http.StatusOK)
	if !bytes.Equal(again.body, first.body) {
		t.Errorf("a repeated creation:\n got %s\nwant %s", again.body, first.body)
	}
	fire := func() apiResponse {
		return env.fire(t, "numbers", "label", map[string]any{"meta": json.Number("2.5e-8")}, "Idempotency-Key", "k")
	}
	first = fire()
	apiWant[apiEventResult](t, first, http.StatusOK)
	if replay := fire(); !bytes.Equal(replay.body, first.body) {
		t.Errorf("a replay:\n got %s\nwant %s", replay.body, first.body)
	}
}

// apiTestIntOverflow: an int that a set expression takes past the range of int is an expression
// that failed, not a number that wraps around.
func apiTestIntOverflow(t *testing.T, env *apiEnv) {
	env.create(t, "door", "overflow", map[string]any{"code": "1", "opened": json.Number("9223372036854775807")})
	apiProblemOf(t, env.fire(t, "overflow", "open", nil), http.StatusUnprocessableEntity, "expression_failed")
}

// TestAPIMetrics: /metrics counts events by definition, event and outcome, on a server of its own.
func TestAPIMetrics(t *testing.T) {
	t.Parallel()
	env := apiNewEnv(t, "sqlite")
	env.door(t, "metrics-1")
	apiWant[apiEventResult](t, env.fire(t, "metrics-1", "open", nil), http.StatusOK)
	env.fire(t, "metrics-1", "unlock", map[string]any{"code": "x"}) // opened does not handle unlock
	res := env.do(t, "GET", "/metrics", nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", res.status)
	}
	for _, want := range []string{
		`fsmd_events_total{definition="door",event="open",outcome="accepted"} 1`,
		`fsmd_events_total{definition="door",event="unlock",outcome="invalid_transition"} 1`,
		`fsmd_event_duration_seconds_count{definition="door"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
