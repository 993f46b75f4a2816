package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Values at the edge, on PostgreSQL and on SQLite alike (docs/api.md, "Requests" and "Bounds"): an
// int is taken exactly or refused, and text is characters. Each refusal writes nothing.

// apiEdge is a definition with a field of each kind of number, an `any` field, and events whose
// `set` moves those values to the edge.
const apiEdge = `name: edge
initial: open
context:
  n: int
  f: float
  m: any
  note: string
  motto: {type: string, default: "a default counts in the size of every context"}
events:
  count: {n: int}
  scale: {f: float}
  keep: {m: any}
states:
  open:
    on:
      count: {to: open, set: {n: event.n}}
      scale: {to: open, set: {f: ctx.f * event.f}}
      keep: {to: open, set: {m: event.m}}
      square: {to: open, set: {m: ctx.f * ctx.f}}
      cancel: {to: open, set: {m: ctx.f * ctx.f - ctx.f * ctx.f}}
      wrap: {to: open, set: {m: "[ctx.m]"}}
      double: {to: open, set: {note: ctx.note + ctx.note}}
      close: closed
  closed: {final: true}
`

// putEdge registers apiEdge.
func (e *apiEnv) putEdge(t testing.TB) {
	t.Helper()
	apiWant[map[string]any](t, e.do(t, "PUT", "/v1/definitions/edge", apiEdge, "Content-Type", "application/yaml"), http.StatusCreated)
}

// apiExact decodes a JSON answer with every number as the text it was sent as.
func apiExact(t testing.TB, r apiResponse) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	return m
}

// unchanged checks that a refused request left an instance as it was, its history too.
func (e *apiEnv) unchanged(t testing.TB, id string, before apiInstance, rows int) {
	t.Helper()
	apiSame(t, "the instance after a refused request", e.instance(t, id), before)
	if h := e.history(t, id, 0); len(h) != rows {
		t.Errorf("%s: %d history rows after a refused request, want %d", id, len(h), rows)
	}
}

// TestAPIEdgeInts: an int field takes a JSON number that is exactly a whole number in int64's range,
// whatever its form (int64's ends included), and refuses with the field's name any other, though a
// float64 would round it to an int (1.0000000000000000000001, 5e-400).
func TestAPIEdgeInts(t *testing.T) {
	t.Parallel()
	refused := []string{"1.0000000000000000000001", "5e-400", "0.5", "9223372036854775808", "-9223372036854775809",
		"1e19", "1e999999999", "1" + strings.Repeat("0", 200_000), "-0.000000000000000000001e20"}
	accepted := map[string]string{ // as sent: as answered
		"9223372036854775807": "9223372036854775807", "-9223372036854775808": "-9223372036854775808",
		"9223372036854775807.000": "9223372036854775807", "9.223372036854775807e18": "9223372036854775807",
		"-92233720368547758.08E2": "-9223372036854775808", "300e-2": "3", "-0": "0", "0e-999999999": "0",
	}
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.putEdge(t)
		for i, n := range refused {
			id := "int-refused-" + string(rune('a'+i))
			r := env.do(t, "POST", "/v1/instances", `{"definition":"edge","id":"`+id+`","context":{"n":`+n+`}}`)
			if p := apiProblemOf(t, r, http.StatusUnprocessableEntity, "invalid_context"); !strings.Contains(p.Detail, "n: expected int") {
				t.Errorf("%.40s: detail %q does not name the field", n, p.Detail)
			}
			apiProblemOf(t, env.do(t, "GET", "/v1/instances/"+id, nil), http.StatusNotFound, "not_found")
		}
		ints := env.create(t, "edge", "ints", nil)
		for _, n := range refused {
			r := env.do(t, "POST", "/v1/instances/ints/events", `{"event":"count","payload":{"n":`+n+`}}`)
			if p := apiProblemOf(t, r, http.StatusUnprocessableEntity, "invalid_payload"); !strings.Contains(p.Detail, "n: expected int") {
				t.Errorf("%.40s: detail %q does not name the field", n, p.Detail)
			}
		}
		env.unchanged(t, "ints", ints, 0)

		rows := 0
		for sent, want := range accepted {
			r := env.do(t, "POST", "/v1/instances", `{"definition":"edge","context":{"n":`+sent+`}}`)
			apiWant[apiInstance](t, r, http.StatusCreated)
			if got := apiExact(t, r)["context"].(map[string]any)["n"]; got != json.Number(want) {
				t.Errorf("created with n %s: n is %v, want %s", sent, got, want)
			}
			r = env.do(t, "POST", "/v1/instances/ints/events", `{"event":"count","payload":{"n":`+sent+`}}`)
			rows++
			apiWant[apiEventResult](t, r, http.StatusOK)
			res := apiExact(t, r)
			if got := res["instance"].(map[string]any)["context"].(map[string]any)["n"]; got != json.Number(want) {
				t.Errorf("count %s: n is %v, want %s", sent, got, want)
			}
			if got := apiExact(t, env.do(t, "GET", "/v1/instances/ints", nil))["context"].(map[string]any)["n"]; got != json.Number(want) {
				t.Errorf("count %s: n is read back as %v, want %s", sent, got, want)
			}
		}
		if h := env.history(t, "ints", 0); len(h) != rows {
			t.Errorf("%d history rows, want %d", len(h), rows)
		}
	})
}

// TestAPIEdgeSurrogates: a \u escape of half a UTF-16 surrogate pair, alone, is no character:
// anywhere in a body (a context, a payload, an `any` value, a key) it is 400, where encoding/json
// would have stored U+FFFD in its place. A pair is a character, and so is U+FFFD itself.
func TestAPIEdgeSurrogates(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.putEdge(t)
		for _, body := range []string{
			`{"definition":"edge","id":"lone-1","context":{"note":"\ud800"}}`,
			`{"definition":"edge","id":"lone-2","context":{"m":{"list":["ok","a\uDC00b"]}}}`,
			`{"definition":"edge","id":"lone-3","context":{"m":{"\udbff":1}}}`,
			`{"definition":"edge","id":"lone-4","context":{"note":"\ud83d\u0041"}}`,
		} {
			if p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", body), http.StatusBadRequest, "invalid_request"); !strings.Contains(p.Detail, "surrogate") {
				t.Errorf("%s: detail %q", body, p.Detail)
			}
		}
		for _, id := range []string{"lone-1", "lone-2", "lone-3", "lone-4"} {
			apiProblemOf(t, env.do(t, "GET", "/v1/instances/"+id, nil), http.StatusNotFound, "not_found")
		}
		inst := env.create(t, "edge", "text", nil)
		for _, body := range []string{
			`{"event":"keep","payload":{"m":"\ud800"}}`,
			`{"event":"keep","payload":{"m":["\udfff"]}}`,
			`{"event":"keep","payload":{"m":{"k\ud800":true}}}`,
		} {
			apiProblemOf(t, env.do(t, "POST", "/v1/instances/text/events", body), http.StatusBadRequest, "invalid_request")
			apiProblemOf(t, env.do(t, "POST", "/v1/instances/text/explain", body), http.StatusBadRequest, "invalid_request")
		}
		env.unchanged(t, "text", inst, 0)

		res := apiWant[apiEventResult](t, env.do(t, "POST", "/v1/instances/text/events",
			`{"event":"keep","payload":{"m":["\ud83d\ude00","\ufffd","\\ud800"]}}`), http.StatusOK)
		apiSame(t, "characters", res.Instance.Context["m"], []any{"😀", "\ufffd", `\ud800`})
	})
}

// TestAPIEdgeNumbers: a number that either database could not store (PostgreSQL's numeric refuses
// 1e999999999 and a number of 200,000 digits, which SQLite would keep as text) is 422 on both,
// never 500: invalid_context at creation, invalid_payload in a payload (an explanation says so too),
// expression_failed when a `set` makes one (an infinity, NaN). A number either could store but not
// alike (1e-20000, 20,000 digits of fraction) is stored as the float the API reads back.
func TestAPIEdgeNumbers(t *testing.T) {
	t.Parallel()
	huge := []string{"1e999999999", "-1e400", strings.Repeat("9", 200_000), `{"a":[1,{"b":1e309}]}`}
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.putEdge(t)
		for i, m := range huge {
			id := "huge-" + string(rune('a'+i))
			body := `{"definition":"edge","id":"` + id + `","context":{"m":` + m + `}}`
			for range 2 { // a creation sent again is refused again
				p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", body), http.StatusUnprocessableEntity, "invalid_context")
				if !strings.Contains(p.Detail, "beyond the range of a float") {
					t.Errorf("%.40s: detail %q", m, p.Detail)
				}
			}
			apiProblemOf(t, env.do(t, "GET", "/v1/instances/"+id, nil), http.StatusNotFound, "not_found")
		}
		p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", `{"definition":"edge","id":"huge-f","context":{"f":1e999}}`),
			http.StatusUnprocessableEntity, "invalid_context")
		if !strings.Contains(p.Detail, "f: expected float, got 1e999 (beyond the range of a float") {
			t.Errorf("a float field: detail %q", p.Detail)
		}

		inst := env.create(t, "edge", "numbers", nil)
		for _, m := range huge {
			body := `{"event":"keep","payload":{"m":` + m + `}}`
			apiProblemOf(t, env.do(t, "POST", "/v1/instances/numbers/events", body), http.StatusUnprocessableEntity, "invalid_payload")
			x := apiExact(t, env.do(t, "POST", "/v1/instances/numbers/explain", body))
			if e, _ := x["error"].(map[string]any); e == nil || e["code"] != "invalid_payload" {
				t.Errorf("%.40s: explained as %v", m, x["error"])
			}
		}
		env.unchanged(t, "numbers", inst, 0)

		// A set that makes an infinity or NaN of an any value, or of a float field.
		sq := env.create(t, "edge", "square", map[string]any{"f": 1e200})
		for _, ev := range []struct {
			event   string
			payload map[string]any
		}{{"square", nil}, {"cancel", nil}, {"scale", map[string]any{"f": 1e200}}} {
			p := apiProblemOf(t, env.fire(t, "square", ev.event, ev.payload), http.StatusUnprocessableEntity, "expression_failed")
			if !strings.Contains(p.Detail, "finite") || p.Instance == nil || p.Instance.Revision != 0 {
				t.Errorf("%s: %q, instance %+v", ev.event, p.Detail, p.Instance)
			}
			x := apiExact(t, env.do(t, "POST", "/v1/instances/square/explain", map[string]any{"event": ev.event, "payload": ev.payload}))
			if e, _ := x["error"].(map[string]any); e == nil || e["code"] != "expression_failed" {
				t.Errorf("%s: explained as %v", ev.event, x["error"])
			}
		}
		env.unchanged(t, "square", sq, 0)

		// Stored as they will be read, alike; a creation sent again is answered the same.
		for _, c := range []struct{ id, m, want string }{
			{"tiny", "1e-20000", "0"},
			{"long", "1." + strings.Repeat("0", 20_000) + "1", "1"},
			{"exact", "9223372036854775807", "9223372036854775807"},
		} {
			body := `{"definition":"edge","id":"` + c.id + `","context":{"m":` + c.m + `}}`
			first := env.do(t, "POST", "/v1/instances", body)
			apiWant[apiInstance](t, first, http.StatusCreated)
			if got := apiExact(t, first)["context"].(map[string]any)["m"]; got != json.Number(c.want) {
				t.Errorf("%s: m is %v, want %s", c.id, got, c.want)
			}
			again := env.do(t, "POST", "/v1/instances", body)
			if apiWant[apiInstance](t, again, http.StatusOK); !bytes.Equal(again.body, first.body) {
				t.Errorf("%s created again:\n got %s\nwant %s", c.id, again.body, first.body)
			}
			res := env.do(t, "POST", apiPath("/v1/instances/%s/events", c.id), `{"event":"keep","payload":{"m":[`+c.m+`]}}`)
			apiWant[apiEventResult](t, res, http.StatusOK)
			if h := env.history(t, c.id, 0); len(h) != 1 {
				t.Fatalf("%s: %d history rows", c.id, len(h))
			}
			got := apiExact(t, env.do(t, "GET", apiPath("/v1/instances/%s/history", c.id), nil))["items"].([]any)[0].(map[string]any)
			apiSame(t, c.id+": the payload in the history", got["payload"], map[string]any{"m": []any{json.Number(c.want)}})
		}
	})
}

// apiMaxContext is the bound of an instance's context as JSON: 256 KiB.
const apiMaxContext = 256 << 10

// apiContextSize is the size of a context as the API shows it (JSON, no HTML escaping).
func apiContextSize(t testing.TB, ctx any) int {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ctx); err != nil {
		t.Fatal(err)
	}
	return b.Len() - 1 // the newline
}

// TestAPIEdgeContextBound: an instance's context is at most 256 KiB as JSON. A creation whose
// context, its defaults filled in, would be larger is invalid_context; an event whose `set` would
// make it larger (or nest it deeper than 100 levels) is expression_failed, and explains so. Nothing
// is written.
func TestAPIEdgeContextBound(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.putEdge(t)
		// The context of an instance whose note is empty: what the fields and defaults take.
		probe := apiExact(t, env.do(t, "POST", "/v1/instances", `{"definition":"edge","id":"probe"}`))
		overhead := apiContextSize(t, probe["context"])
		note := func(n int, c string) string {
			return `{"definition":"edge","id":"note-` + c + `","context":{"note":"` + strings.Repeat(c, n) + `"}}`
		}
		// A byte over: the context given is well under the bound, the defaults filled in take it over.
		over := note(apiMaxContext-overhead+1, "x")
		p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", over), http.StatusUnprocessableEntity, "invalid_context")
		if !strings.Contains(p.Detail, "the context would take 262145 bytes as JSON; the most is 262144 (256 KiB)") {
			t.Errorf("detail %q", p.Detail)
		}
		apiProblemOf(t, env.do(t, "GET", "/v1/instances/note-x", nil), http.StatusNotFound, "not_found")
		// At the bound: accepted, `<` counting one byte as the API shows it.
		for _, c := range []string{"x", "<"} {
			r := env.do(t, "POST", "/v1/instances", note(apiMaxContext-overhead, c))
			apiWant[apiInstance](t, r, http.StatusCreated)
			if size := apiContextSize(t, apiExact(t, r)["context"]); size != apiMaxContext {
				t.Errorf("%s: a context of %d bytes", c, size)
			}
		}

		// A set that doubles a note of 100 KiB passes; doubling it again would take it past.
		env.create(t, "edge", "grow", map[string]any{"note": strings.Repeat("n", 100<<10)})
		grow := env.mustFire(t, "grow", "double", nil).Instance
		refused := []struct {
			event   string
			payload map[string]any
			detail  string
		}{
			{"double", nil, "set: the context would take"},
			{"keep", map[string]any{"m": strings.Repeat("m", 60<<10)}, "the most is 262144 (256 KiB)"},
		}
		for _, c := range refused {
			p := apiProblemOf(t, env.fire(t, "grow", c.event, c.payload), http.StatusUnprocessableEntity, "expression_failed")
			if !strings.Contains(p.Detail, c.detail) || p.Instance == nil || p.Instance.Revision != 1 {
				t.Errorf("%s: detail %q, instance %+v", c.event, p.Detail, p.Instance)
			}
			x := apiExact(t, env.do(t, "POST", "/v1/instances/grow/explain", map[string]any{"event": c.event, "payload": c.payload}))
			if e, _ := x["error"].(map[string]any); e == nil || e["code"] != "expression_failed" || x["context"] != nil {
				t.Errorf("%s: explained as %v", c.event, x["error"])
			}
		}
		env.unchanged(t, "grow", grow, 1)
		if got := len(env.instance(t, "grow").Context["note"].(string)); got != 200<<10 {
			t.Errorf("the note is %d bytes", got)
		}

		// A set that nests the context deeper than 100 levels (SQLite's JSON functions stop at 1,000).
		deep := env.do(t, "POST", "/v1/instances", apiNested(`{"definition":"edge","id":"deep","context":{"m":`, 97, `}}`))
		apiWant[apiInstance](t, deep, http.StatusCreated)
		env.mustFire(t, "deep", "wrap", nil)
		inst := env.mustFire(t, "deep", "wrap", nil).Instance // the context nests 100 levels
		p = apiProblemOf(t, env.fire(t, "deep", "wrap", nil), http.StatusUnprocessableEntity, "expression_failed")
		if !strings.Contains(p.Detail, "nest deeper than 100 levels") {
			t.Errorf("detail %q", p.Detail)
		}
		env.unchanged(t, "deep", inst, 2)
	})
}

// TestAPIEdgeContextBoundMigration: a migration whose context rules would grow a context past
// 256 KiB strands that instance (context_invalid) and moves the others.
func TestAPIEdgeContextBoundMigration(t *testing.T) {
	t.Parallel()
	v2 := apiEdge + "migrate:\n  policy: manual\n  context:\n    note: ctx.note + ctx.note\n"
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.putEdge(t)
		small := env.create(t, "edge", "mig-small", map[string]any{"note": "ab"})
		big := env.create(t, "edge", "mig-big", map[string]any{"note": strings.Repeat("b", 150<<10)})
		r := env.do(t, "PUT", "/v1/definitions/edge", v2, "Content-Type", "application/yaml")
		apiWant[map[string]any](t, r, http.StatusCreated)

		want := apiPlan{Definition: "edge", ToVersion: 2, Total: 2,
			Moves:    []apiMove{{1, "open", "open", 1}},
			Stranded: []apiStranded{{FromVersion: 1, FromState: "open", Reason: "context_invalid", Count: 1, Sample: []string{"mig-big"}}}}
		plan := env.plan(t, "edge", nil)
		apiSamePlan(t, "the plan", plan, want)
		if len(plan.Stranded) == 1 && !strings.Contains(plan.Stranded[0].Detail, "256 KiB") {
			t.Errorf("stranded: %q", plan.Stranded[0].Detail)
		}
		done := env.awaitMigration(t, env.startMigration(t, "edge", nil).ID)
		if done.Status != "done" || done.Migrated != 1 || done.Stranded != 1 {
			t.Fatalf("the migration: %+v", done)
		}
		env.unchanged(t, "mig-big", big, 0)
		moved := env.instance(t, "mig-small")
		if moved.Version != 2 || moved.Revision != small.Revision+1 || moved.Context["note"] != "abab" {
			t.Errorf("mig-small after the migration: %+v", moved)
		}
	})
}

// TestAPIEdgeContextBoundMigrationDefaults: a new version whose new field has a large default, and
// no context rule (on PostgreSQL such a migration moves contexts in SQL): an instance the default
// would take past 256 KiB is stranded context_invalid, the others move.
func TestAPIEdgeContextBoundMigrationDefaults(t *testing.T) {
	t.Parallel()
	v2 := strings.Replace(apiEdge, "  note: string\n",
		"  note: string\n  story: {type: string, default: \""+strings.Repeat("s", 120<<10)+"\"}\n", 1)
	v2 += "migrate:\n  policy: manual\n"
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.putEdge(t)
		small := env.create(t, "edge", "def-small", map[string]any{"note": "ab"})
		big := env.create(t, "edge", "def-big", map[string]any{"note": strings.Repeat("b", 150<<10)})
		r := env.do(t, "PUT", "/v1/definitions/edge", v2, "Content-Type", "application/yaml")
		apiWant[map[string]any](t, r, http.StatusCreated)

		want := apiPlan{Definition: "edge", ToVersion: 2, Total: 2,
			Moves:    []apiMove{{1, "open", "open", 1}},
			Stranded: []apiStranded{{FromVersion: 1, FromState: "open", Reason: "context_invalid", Count: 1, Sample: []string{"def-big"}}}}
		apiSamePlan(t, "the plan", env.plan(t, "edge", nil), want)
		done := env.awaitMigration(t, env.startMigration(t, "edge", nil).ID)
		if done.Status != "done" || done.Migrated != 1 || done.Stranded != 1 {
			t.Fatalf("the migration: %+v", done)
		}
		env.unchanged(t, "def-big", big, 0)
		moved := env.instance(t, "def-small")
		if moved.Version != 2 || moved.Revision != small.Revision+1 || len(moved.Context["story"].(string)) != 120<<10 {
			t.Errorf("def-small after the migration: version %d, revision %d", moved.Version, moved.Revision)
		}
	})
}
