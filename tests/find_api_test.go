package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Find and correlate (docs/operators.md): ctx. filters on GET /v1/instances, `keys` unique among
// running instances (409 key_exists at a creation, a transition's set and a child's start), and
// events sent by key, on both databases through the conformance harness.

// findParcel has a key, indexed paths and a field of every scalar kind.
const findParcel = `name: parcel
initial: open
context:
  number: string
  weight: int
  price: float
  rush: bool
  shipped_at: time
  wait: duration
  customer: {tier: string}
  tags: [string]
keys: [number]
index: [customer.tier, weight, shipped_at]
events:
  relabel: {number: string}
  ship: {at: time}
states:
  open:
    on:
      relabel: {set: {number: event.number}}
      ship: {to: shipped, set: {shipped_at: event.at}}
      close: closed
  shipped:
    on:
      relabel: {set: {number: event.number}}
      close: closed
  closed: {final: true}
`

// findBatch starts a parcel per number.
const findBatch = `name: batch
initial: idle
context:
  numbers: [string]
states:
  idle: {on: {start: running}}
  running:
    children:
      parcels: {definition: parcel, for_each: ctx.numbers, context: {number: item}}
    on: {stop: done}
  done: {final: true}
`

func (e *apiEnv) putDefinition(t *testing.T, name, yaml string) apiResponse {
	t.Helper()
	return e.do(t, "PUT", apiPath("/v1/definitions/%s", name), yaml, "Content-Type", "application/yaml")
}

// list lists the ids GET /v1/instances answers for the query (unescaped name, value pairs).
func (e *apiEnv) listIDs(t *testing.T, query ...string) []string {
	t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	var out []string
	page := apiWant[apiPage[apiInstance]](t, e.do(t, "GET", "/v1/instances?"+q.Encode(), nil), http.StatusOK)
	for _, it := range page.Items {
		out = append(out, it.ID)
	}
	return out
}

func TestFindAPI(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		if r := env.putDefinition(t, "parcel", findParcel); r.status != http.StatusCreated {
			t.Fatalf("PUT parcel: %s", r)
		}
		env.create(t, "parcel", "p1", map[string]any{"number": "A-1", "weight": 3, "price": 9.5, "rush": true,
			"shipped_at": "2026-01-01T10:00:00Z", "wait": "2h", "customer": map[string]any{"tier": "gold"}})
		env.create(t, "parcel", "p2", map[string]any{"number": "A-2", "weight": 12, "price": 100,
			"shipped_at": "2026-01-01T10:00:00.25Z", "customer": map[string]any{"tier": "silver"}})
		env.create(t, "parcel", "p3", map[string]any{"number": "A-3", "weight": -1, "price": 0.5, "rush": true,
			"shipped_at": "2026-01-01T11:30:00+02:00", "customer": map[string]any{"tier": "gold"}})
		env.door(t, "d1")
		cases := []struct {
			name  string
			query []string
			want  []string
		}{
			{"a string, nested", []string{"definition", "parcel", "ctx.customer.tier", "gold"}, []string{"p1", "p3"}},
			{"an int range", []string{"definition", "parcel", "ctx.weight[gt]", "0", "ctx.weight[lte]", "12"}, []string{"p1", "p2"}},
			{"an int below", []string{"definition", "parcel", "ctx.weight[lt]", "0"}, []string{"p3"}},
			{"a float", []string{"definition", "parcel", "ctx.price[gte]", "9.5"}, []string{"p1", "p2"}},
			{"a bool", []string{"definition", "parcel", "ctx.rush", "false"}, []string{"p2"}},
			{"a time, as an instant", []string{"definition", "parcel", "ctx.shipped_at", "2026-01-01T09:30:00Z"}, []string{"p3"}},
			{"a time range", []string{"definition", "parcel", "ctx.shipped_at[gt]", "2026-01-01T10:00:00Z"}, []string{"p2"}},
			{"a duration", []string{"definition", "parcel", "ctx.wait", "120m"}, []string{"p1"}},
			{"with state", []string{"definition", "parcel", "state", "open", "ctx.customer.tier", "silver"}, []string{"p2"}},
			{"a page after", []string{"definition", "parcel", "ctx.customer.tier", "gold", "after", "p1"}, []string{"p3"}},
			{"an empty value is none", []string{"definition", "parcel", "ctx.customer.tier", ""}, []string{"p1", "p2", "p3"}},
		}
		for _, c := range cases {
			if got := env.listIDs(t, c.query...); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		page := apiWant[apiPage[apiInstance]](t, env.do(t, "GET", "/v1/instances?definition=parcel&ctx.customer.tier=gold&limit=1", nil), http.StatusOK)
		if len(page.Items) != 1 || page.Next != "p1" {
			t.Errorf("a page of 1: %+v, want p1 and next p1", page)
		}
	})
}

func TestFindAPIBadInput(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		if r := env.putDefinition(t, "parcel", findParcel); r.status != http.StatusCreated {
			t.Fatalf("PUT parcel: %s", r)
		}
		cases := []struct {
			query string
			names string // in the detail
		}{
			{"ctx.weight=3", "definition"},
			{"definition=nothing&ctx.weight=3", "definition"},
			{"definition=parcel&ctx.nope=3", "ctx.nope"},
			{"definition=parcel&ctx.customer=x", "ctx.customer"},
			{"definition=parcel&ctx.tags=x", "ctx.tags"},
			{"definition=parcel&ctx.weight=heavy", "ctx.weight"},
			{"definition=parcel&ctx.weight=3.5", "ctx.weight"},
			{"definition=parcel&ctx.price=NaN", "ctx.price"},
			{"definition=parcel&ctx.rush=yes", "ctx.rush"},
			{"definition=parcel&ctx.shipped_at=2026-01-01", "ctx.shipped_at"},
			{"definition=parcel&ctx.wait=soon", "ctx.wait"},
			{"definition=parcel&ctx.number[gt]=A", "ctx.number[gt]"},
			{"definition=parcel&ctx.weight[between]=3", "ctx.weight[between]"},
			{"definition=parcel&ctx.weight[gt=3", "ctx.weight[gt"},
			{"definition=parcel&ctx.=3", "ctx."},
			{"definition=parcel&ctx.weight=1&ctx.weight=2", "ctx.weight"},
			{"definition=parcel&ctx.number=" + strings.Repeat("x", 1001), "ctx.number"},
		}
		for _, c := range cases {
			p := apiProblemOf(t, env.do(t, "GET", "/v1/instances?"+c.query, nil), http.StatusBadRequest, "invalid_request")
			if !strings.Contains(p.Detail, c.names) {
				t.Errorf("%.80s: detail %q does not name %s", c.query, p.Detail, c.names)
			}
		}
		// keys: and index: on what is not a scalar field are load errors at their line:col.
		for _, bad := range []struct{ yaml, want string }{
			{strings.Replace(findParcel, "keys: [number]", "keys: [tags]", 1), "parcel.yaml:12:8"},
			{strings.Replace(findParcel, "keys: [number]", "keys: [customer]", 1), "parcel.yaml:12:8"},
			{strings.Replace(findParcel, "keys: [number]", "keys: [nothing]", 1), "parcel.yaml:12:8"},
			{strings.Replace(findParcel, "index: [customer.tier,", "index: [customer.tier, customer.tier,", 1), "parcel.yaml:13:24"},
		} {
			p := apiProblemOf(t, env.putDefinition(t, "parcel", bad.yaml), http.StatusUnprocessableEntity, "invalid_definition")
			if len(p.Errors) == 0 || fmt.Sprintf("%s:%d:%d", p.Errors[0].File, p.Errors[0].Line, p.Errors[0].Column) != bad.want {
				t.Errorf("%s: %+v, want an error at %s", p.Detail, p.Errors, bad.want)
			}
		}
	})
}

func TestCorrelateAPI(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		for _, d := range []struct{ name, yaml string }{{"parcel", findParcel}, {"batch", findBatch}} {
			if r := env.putDefinition(t, d.name, d.yaml); r.status != http.StatusCreated {
				t.Fatalf("PUT %s: %s", d.name, r)
			}
		}
		env.create(t, "parcel", "p1", map[string]any{"number": "A-17"})
		env.create(t, "parcel", "p2", map[string]any{"number": "B-2"})
		env.create(t, "parcel", "e1", nil) // no key: never unique
		env.create(t, "parcel", "e2", nil)

		// A second running instance with the key: 409 key_exists naming the key and the value.
		p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", map[string]any{"definition": "parcel", "id": "p3",
			"context": map[string]any{"number": "A-17"}}), http.StatusConflict, "key_exists")
		if !strings.Contains(p.Detail, "number") || !strings.Contains(p.Detail, `"A-17"`) {
			t.Errorf("detail %q names neither the key nor the value", p.Detail)
		}
		apiProblemOf(t, env.do(t, "GET", "/v1/instances/p3", nil), http.StatusNotFound, "not_found")

		// A transition whose set takes the key.
		p = apiProblemOf(t, env.fire(t, "p2", "relabel", map[string]any{"number": "A-17"}), http.StatusConflict, "key_exists")
		if !strings.Contains(p.Detail, `"A-17"`) {
			t.Errorf("detail %q", p.Detail)
		}
		if got := apiWant[apiInstance](t, env.do(t, "GET", "/v1/instances/p2", nil), http.StatusOK); got.Context["number"] != "B-2" || got.Revision != 0 {
			t.Errorf("p2 after the refused relabel: %v at %d", got.Context["number"], got.Revision)
		}

		// An event by key: the answer and the headers of an event by id.
		byKey := func(key map[string]any, event string, payload map[string]any, header ...string) apiResponse {
			body := map[string]any{"key": key, "event": event}
			if payload != nil {
				body["payload"] = payload
			}
			return env.do(t, "POST", "/v1/definitions/parcel/events", body, header...)
		}
		r := byKey(map[string]any{"number": "A-17"}, "ship", map[string]any{"at": "2026-01-01T10:00:00Z"}, "Idempotency-Key", "k1")
		res := apiWant[struct {
			Instance apiInstance `json:"instance"`
		}](t, r, http.StatusOK)
		if res.Instance.ID != "p1" || res.Instance.State != "shipped" || r.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("ship A-17: %s", r)
		}
		r = byKey(map[string]any{"number": "A-17"}, "ship", map[string]any{"at": "2026-01-01T10:00:00Z"}, "Idempotency-Key", "k1")
		if r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("the replay: %s", r)
		}
		apiProblemOf(t, byKey(map[string]any{"number": "A-17"}, "close", nil, "If-Match", `"0"`), http.StatusPreconditionFailed, "version_conflict")
		apiProblemOf(t, byKey(map[string]any{"number": "A-17"}, "ship", nil), http.StatusConflict, "invalid_transition")
		r = byKey(map[string]any{"number": "A-17"}, "close", nil, "If-Match", `"1"`, "Idempotency-Key", "k2")
		if r.status != http.StatusOK {
			t.Fatalf("close A-17: %s", r)
		}
		// Finished, it has no key: a replay still finds it, a new event does not, and the value is free.
		if r := byKey(map[string]any{"number": "A-17"}, "close", nil, "If-Match", `"1"`, "Idempotency-Key", "k2"); r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("a replay after the instance finished: %s", r)
		}
		apiProblemOf(t, byKey(map[string]any{"number": "A-17"}, "close", nil), http.StatusNotFound, "not_found")
		env.create(t, "parcel", "p4", map[string]any{"number": "A-17"})

		// A child's start that takes a key: the parent's event is refused, nothing started.
		env.create(t, "batch", "b1", map[string]any{"numbers": []string{"C-1", "B-2"}})
		p = apiProblemOf(t, env.fire(t, "b1", "start", nil), http.StatusConflict, "key_exists")
		if !strings.Contains(p.Detail, `"B-2"`) {
			t.Errorf("a child's key: detail %q", p.Detail)
		}
		if got := env.listIDs(t, "parent", "b1"); len(got) != 0 {
			t.Errorf("children started: %v", got)
		}
		env.create(t, "batch", "b2", map[string]any{"numbers": []string{"C-1", "C-1"}})
		apiProblemOf(t, env.fire(t, "b2", "start", nil), http.StatusConflict, "key_exists")

		// Bad keys: 400 naming what is wrong; an unknown definition 404.
		for _, c := range []struct {
			body   string
			status int
			names  string
		}{
			{`{"event": "close"}`, 400, "key"},
			{`{"key": {}, "event": "close"}`, 400, "key"},
			{`{"key": {"weight": 3}, "event": "close"}`, 400, "weight"},
			{`{"key": {"number": 17}, "event": "close"}`, 400, "key.number"},
			{`{"key": {"number": ""}, "event": "close"}`, 400, "key.number"},
			{`{"key": {"number": "A", "x": 1}, "event": "close"}`, 400, "key"},
			{`{"key": {"number": "Z-9"}, "event": "close"}`, 404, "Z-9"},
		} {
			r := env.do(t, "POST", "/v1/definitions/parcel/events", c.body)
			code := map[int]string{400: "invalid_request", 404: "not_found"}[c.status]
			if p := apiProblemOf(t, r, c.status, code); !strings.Contains(p.Detail, c.names) {
				t.Errorf("%s: detail %q does not name %s", c.body, p.Detail, c.names)
			}
		}
		apiProblemOf(t, env.do(t, "POST", "/v1/definitions/nothing/events", `{"key": {"number": "A"}, "event": "close"}`), http.StatusNotFound, "not_found")
		p = apiProblemOf(t, env.do(t, "POST", "/v1/definitions/door/events", `{"key": {"number": "A"}, "event": "close"}`), http.StatusBadRequest, "invalid_request")
		if !strings.Contains(p.Detail, "no keys") {
			t.Errorf("a definition without keys: %q", p.Detail)
		}

		// A new key on a definition whose running instances share a value refuses the version.
		env.create(t, "parcel", "w1", map[string]any{"weight": 5})
		env.create(t, "parcel", "w2", map[string]any{"weight": 5})
		keyed := strings.Replace(findParcel, "keys: [number]", "keys: [number, weight]", 1)
		p = apiProblemOf(t, env.putDefinition(t, "parcel", keyed), http.StatusUnprocessableEntity, "invalid_definition")
		if len(p.Errors) != 1 || p.Errors[0].Line != 12 || !strings.Contains(p.Errors[0].Message, "weight") {
			t.Errorf("a key running instances share: %+v", p.Errors)
		}
		if v := apiRaw(t, env.do(t, "GET", "/v1/definitions/parcel", nil))["version"]; v != 1.0 {
			t.Errorf("the refused version was registered: parcel is at version %v", v)
		}
	})
}
