package tests

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Bad input through the HTTP API, on PostgreSQL and on SQLite: each a clear problem, nothing
// half-written; hostile text stored verbatim and never interpreted; a database that goes away and
// comes back.

// apiBodyLimit is the server's default body limit, 1 MiB.
const apiBodyLimit = 1 << 20

// apiBigCreate is a creation request of exactly n bytes.
func apiBigCreate(id string, n int) string {
	head := `{"definition":"door","id":"` + id + `","context":{"code":"1","note":"`
	tail := `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// apiPaddedCreate is a creation request of exactly n bytes, most of them white space: a context is
// bounded too (256 KiB), well below the body's limit.
func apiPaddedCreate(id string, n int) string {
	head := `{"definition":"door","id":"` + id + `","context":{"code":"1","note":"small"}`
	return head + strings.Repeat(" ", n-len(head)-1) + "}"
}

// apiNested is head, then a value of n nested lists, then tail.
func apiNested(head string, n int, tail string) string {
	return head + strings.Repeat("[", n) + strings.Repeat("]", n) + tail
}

// apiBadCase is a bad request and the problem it gets.
type apiBadCase struct {
	name   string
	method string
	path   string
	body   any // as apiEnv.do takes it
	header []string
	status int
	code   string
}

func TestAPIBadRequests(t *testing.T) {
	t.Parallel()
	const create, event, explain = "/v1/instances", "/v1/instances/bad-door/events", "/v1/instances/bad-door/explain"
	long := strings.Repeat("i", 201)
	cases := []apiBadCase{
		// Malformed JSON.
		{"a body cut short", "POST", create, `{"definition": "door",`, nil, 400, "invalid_request"},
		{"unquoted names", "POST", create, `{definition: door}`, nil, 400, "invalid_request"},
		{"not JSON", "POST", event, `open the door`, nil, 400, "invalid_request"},
		{"data after the object", "POST", create, `{"definition":"door"}{"definition":"door"}`, nil, 400, "invalid_request"},
		{"an array", "POST", create, `[{"definition":"door"}]`, nil, 400, "invalid_request"},
		{"a string", "POST", event, `"open"`, nil, 400, "invalid_request"},
		{"null", "POST", event, `null`, nil, 400, "invalid_request"},
		{"an empty body", "POST", create, ``, nil, 400, "invalid_request"},
		{"white space only", "POST", explain, " \n\t ", nil, 400, "invalid_request"},
		{"invalid UTF-8", "POST", create, "{\"definition\":\"door\",\"id\":\"\xff\xfe\"}", nil, 400, "invalid_request"},
		{"a field of the wrong JSON type", "POST", create, `{"definition": 5}`, nil, 400, "invalid_request"},
		{"a context that is not an object", "POST", create, `{"definition":"door","context":"code=1"}`, nil, 400, "invalid_request"},
		{"a payload that is not an object", "POST", event, `{"event":"knock","payload":["x"]}`, nil, 400, "invalid_request"},
		// Unknown, duplicate and missing fields.
		{"an unknown field", "POST", create, `{"definition":"door","context":{"code":"1"},"colour":"red"}`, nil, 400, "invalid_request"},
		{"an unknown field of an event", "POST", event, `{"event":"open","when":"now"}`, nil, 400, "invalid_request"},
		{"an unknown field of an explanation", "POST", explain, `{"event":"open","dry":true}`, nil, 400, "invalid_request"},
		{"a field in another case", "POST", create, `{"Definition":"door","context":{"code":"1"}}`, nil, 400, "invalid_request"},
		{"a field twice", "POST", create, `{"definition":"door","definition":"ticket"}`, nil, 400, "invalid_request"},
		// A key twice at any depth: encoding/json would keep the last one silently.
		{"a context's field twice", "POST", create, `{"definition":"door","context":{"code":"1","code":"2"}}`, nil, 400, "invalid_request"},
		{"a key twice in a context's any value", "POST", create, `{"definition":"door","context":{"code":"1","meta":{"a":[{"b":1,"b":1}]}}}`, nil, 400, "invalid_request"},
		{"a payload's field twice", "POST", event, `{"event":"knock","payload":{"note":"a","note":"b"}}`, nil, 400, "invalid_request"},
		{"a key twice in a payload's any value", "POST", event, `{"event":"label","payload":{"meta":{"x":{"k":1,"\u006b":2}}}}`, nil, 400, "invalid_request"},
		{"a key twice in an explanation's payload", "POST", explain, `{"event":"knock","payload":{"note":"a","note":"a"}}`, nil, 400, "invalid_request"},
		{"a key twice in a migration's filter", "POST", "/v1/definitions/door/migrations/plan", `{"filter":{"state":"closed","state":"opened"}}`, nil, 400, "invalid_request"},
		// Nesting: SQLite's JSON functions stop at 1,000 levels; fsmd at 100, alike on both.
		{"a body nested 101 levels", "POST", create, apiNested(`{"definition":"door","id":"deep-101","context":{"code":"1","meta":`, 101-2, `}}`), nil, 400, "invalid_request"},
		{"a body nested 1,000 levels", "POST", create, apiNested(`{"definition":"door","id":"deep-1000","context":{"code":"1","meta":`, 1000-2, `}}`), nil, 400, "invalid_request"},
		{"a payload nested 100,000 levels", "POST", event, apiNested(`{"event":"label","payload":{"meta":`, 100000-2, `}}`), nil, 400, "invalid_request"},
		{"no definition", "POST", create, `{"context":{"code":"1"}}`, nil, 400, "invalid_request"},
		{"no event", "POST", event, `{"payload":{}}`, nil, 400, "invalid_request"},
		{"an empty event", "POST", event, `{"event":""}`, nil, 400, "invalid_request"},
		// Content types.
		{"no content type", "POST", create, `{"definition":"ticket"}`, []string{"Content-Type", ""}, 415, "unsupported_media_type"},
		{"text/plain", "POST", create, `{"definition":"ticket"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"XML", "POST", event, `<event>open</event>`, []string{"Content-Type", "application/xml"}, 415, "unsupported_media_type"},
		{"a form", "POST", explain, `event=open`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"another charset", "POST", create, `{"definition":"ticket"}`, []string{"Content-Type", "application/json; charset=latin1"}, 415, "unsupported_media_type"},
		{"an unparsable content type", "POST", create, `{"definition":"ticket"}`, []string{"Content-Type", "application/json; charset"}, 415, "unsupported_media_type"},
		{"JSON for a definition", "PUT", "/v1/definitions/door", `{"name":"door"}`, nil, 415, "unsupported_media_type"},
		// Sizes.
		{"a body over 1 MiB", "POST", create, apiBigCreate("big-1", apiBodyLimit+1), nil, 413, "body_too_large"},
		{"a body over 1 MiB, chunked", "POST", create, apiChunked(apiBigCreate("big-2", apiBodyLimit+1)), nil, 413, "body_too_large"},
		{"an event over 1 MiB", "POST", event, `{"event":"knock","payload":{"note":"` + strings.Repeat("n", apiBodyLimit) + `"}}`, nil, 413, "body_too_large"},
		{"a definition over 1 MiB", "PUT", "/v1/definitions/door", "name: door\n#" + strings.Repeat("#", apiBodyLimit),
			[]string{"Content-Type", "application/yaml"}, 413, "body_too_large"},
		// Ids and names.
		{"an id of 201 characters", "POST", create, map[string]any{"definition": "door", "id": long, "context": map[string]any{"code": "1"}}, nil, 400, "invalid_request"},
		{"an id of 201 two-byte characters", "POST", create, map[string]any{"definition": "door", "id": strings.Repeat("é", 201), "context": map[string]any{"code": "1"}}, nil, 400, "invalid_request"},
		{"an id in the path of 201 characters", "GET", "/v1/instances/" + long, nil, nil, 400, "invalid_request"},
		{"an id in the path of 201 characters, an event", "POST", "/v1/instances/" + long + "/events", `{"event":"open"}`, nil, 400, "invalid_request"},
		{"an event name of 201 characters", "POST", event, map[string]any{"event": long}, nil, 400, "invalid_request"},
		{"a definition name of 201 characters", "POST", create, map[string]any{"definition": long}, nil, 400, "invalid_request"},
		{"an after of 201 characters", "GET", "/v1/instances?after=" + long, nil, nil, 400, "invalid_request"},
		{"an Idempotency-Key of 201 characters", "POST", event, `{"event":"open"}`, []string{"Idempotency-Key", long}, 400, "invalid_request"},
		{"an Idempotency-Key not ASCII", "POST", event, `{"event":"open"}`, []string{"Idempotency-Key", "clé"}, 400, "invalid_request"},
		{"an If-Match that is no revision", "POST", event, `{"event":"open"}`, []string{"If-Match", `"abc"`}, 400, "invalid_request"},
		{"an If-Match list", "POST", event, `{"event":"open"}`, []string{"If-Match", `"0", "1"`}, 400, "invalid_request"},
		{"an If-Match below zero", "POST", event, `{"event":"open"}`, []string{"If-Match", `"-1"`}, 400, "invalid_request"},
	}
	for _, c := range []struct{ name, s string }{
		{"a newline", "a\nb"}, {"a tab", "a\tb"}, {"a carriage return", "a\rb"}, {"NUL", "a\x00b"},
		{"DEL", "a\x7fb"}, {"a C1 control", "a\u0085b"}, {"escape", "\x1b[31m"},
	} {
		cases = append(cases,
			apiBadCase{"an id with " + c.name, "POST", create, map[string]any{"definition": "door", "id": c.s, "context": map[string]any{"code": "1"}}, nil, 400, "invalid_request"},
			apiBadCase{"a path id with " + c.name, "GET", apiPath("/v1/instances/%s", c.s), nil, nil, 400, "invalid_request"},
			apiBadCase{"an event name with " + c.name, "POST", event, map[string]any{"event": c.s}, nil, 400, "invalid_request"},
			apiBadCase{"a definition name with " + c.name, "GET", apiPath("/v1/definitions/%s", c.s), nil, nil, 400, "invalid_request"},
			apiBadCase{"a query with " + c.name, "GET", "/v1/instances?state=" + url.QueryEscape(c.s), nil, nil, 400, "invalid_request"},
		)
	}
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.door(t, "bad-door")
		t.Run("refused", func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					p := apiProblemOf(t, env.do(t, c.method, c.path, c.body, c.header...), c.status, c.code)
					if p.Instance != nil {
						t.Errorf("a bad request carries an instance")
					}
				})
			}
		})
		// At the limits: accepted.
		atLimit := []string{strings.Repeat("i", 200), strings.Repeat("é", 200)}
		for _, id := range atLimit {
			env.create(t, "door", id, map[string]any{"code": "1"})
		}
		big := apiPaddedCreate("big-ok", apiBodyLimit)
		if len(big) != apiBodyLimit {
			t.Fatalf("a body of %d bytes", len(big))
		}
		r := env.do(t, "POST", "/v1/instances", big)
		if inst := apiWant[apiInstance](t, r, http.StatusCreated); inst.Context["note"] != "small" {
			t.Errorf("the note of a body at the limit is %q", inst.Context["note"])
		}
		r = env.do(t, "POST", "/v1/instances", `{"definition":"ticket","id":"charset-ok"}`, "Content-Type", "application/json; charset=UTF-8")
		apiWant[apiInstance](t, r, http.StatusCreated)
		// A body of 100 levels, the same key in two objects.
		r = env.do(t, "POST", "/v1/instances", apiNested(`{"definition":"door","id":"deep-100","context":{"code":"1","meta":`, 100-2, `}}`))
		apiWant[apiInstance](t, r, http.StatusCreated)
		r = env.do(t, "POST", "/v1/instances", `{"definition":"door","id":"keys-ok","context":{"code":"1","meta":{"a":{"a":1},"b":[{"a":1},{"a":2}]}}}`)
		apiWant[apiInstance](t, r, http.StatusCreated)

		// Nothing but what was accepted exists, and bad-door is untouched.
		want := append([]string{"bad-door", "big-ok", "charset-ok", "deep-100", "keys-ok"}, atLimit...)
		slices.Sort(want)
		if ids := apiIDs(env.list(t, nil, 0)); !slices.Equal(ids, want) {
			t.Errorf("instances after the bad requests: %q", ids)
		}
		if inst := env.instance(t, "bad-door"); inst.Revision != 0 || len(env.history(t, "bad-door", 0)) != 0 {
			t.Errorf("bad-door after the bad requests: %+v", inst)
		}
	})
}

// apiHostile are strings that break programs that build SQL, LIKE patterns, JSON or paths by hand,
// or that mishandle Unicode.
var apiHostile = []string{
	`'; DROP TABLE instances; --`,
	`"; DROP TABLE transitions; --`,
	`Robert'); DELETE FROM definitions WHERE ('1'='1`,
	`' OR '1'='1`,
	`%`, `_`, `%_%`, `\`, `\\`, `\'`, `\"`, `'`, `"`, "`", `''`, `\x00`, `\u0000`,
	`$1`, `?`, `:id`, `@p1`, `{}`, `[]`, `null`, `true`, `0`, `-1`, `1e999`,
	`{"$gt": ""}`, `<script>alert(1)</script>`, `../../etc/passwd`, `a/b`, `%2F`, `?x=1#y`, `.`, `..`,
	"👩‍👩‍👧‍👦🚪🔑",                  // a ZWJ sequence and astral characters
	"\u202eevil\u202c",           // right-to-left override
	"שלום עולם", "مرحبا بالعالم", // right-to-left scripts
	"e\u0301 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", // combining marks
	"\ufeffBOM\u200b\u2028\u2029",        // a byte order mark, zero width, separators
	"\ufffd\U0010fffd",                   // the replacement character, the last code point
	" leading and trailing ",
	strings.Repeat("ж😀", 5000), // 10,000 characters
}

// apiPrintable reports whether s is a header value the server keeps (X-Request-ID, Idempotency-Key):
// 1 to 200 printable ASCII characters, no space at either end.
func apiPrintable(s string) bool {
	if s == "" || len(s) > 200 || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// apiTruncate keeps the first n characters of s.
func apiTruncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// apiTestHostile runs apiHostileRoundTrip for each of apiHostile, then checks that the tables are
// all there with the rows written.
func apiTestHostile(t *testing.T, env *apiEnv) {
	const prefix = "hostile"
	t.Run("each", func(t *testing.T) { // returns once its parallel subtests have ended
		for i, s := range apiHostile {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				apiHostileRoundTrip(t, env, fmt.Sprintf("%s%d-", prefix, i), s)
			})
		}
	})

	ctx := context.Background()
	for _, c := range []struct {
		query string
		want  int
	}{
		{"SELECT COUNT(*) FROM definitions WHERE name IN ('door', 'ticket')", 2},
		{"SELECT COUNT(*) FROM instances WHERE id LIKE '" + prefix + "%'", len(apiHostile)},
		{"SELECT COUNT(*) FROM transitions WHERE instance_id LIKE '" + prefix + "%'", 4 * len(apiHostile)},
	} {
		var n int
		if err := env.db.X.QueryRowContext(ctx, c.query).Scan(&n); err != nil || n != c.want {
			t.Errorf("%s: %d, %v; want %d", c.query, n, err, c.want)
		}
	}
	n := 0
	for _, inst := range env.list(t, url.Values{"definition": {"door"}}, 7) {
		if strings.HasPrefix(inst.ID, prefix) {
			n++
		}
	}
	if n != len(apiHostile) {
		t.Errorf("%d of the doors listed, want %d", n, len(apiHostile))
	}
}

// apiHostileRoundTrip puts s into every string of a door's context, an event's payload, its id, its
// idempotency key and request id (where the header rules allow), and reads it all back.
func apiHostileRoundTrip(t *testing.T, env *apiEnv, prefix, s string) {
	id := prefix + apiTruncate(s, 200-len(prefix))
	meta := map[string]any{s: []any{1, map[string]any{"k": s}}} // s as a key, and deep inside
	ctx := map[string]any{"code": s, "note": s, "tags": []any{s, "x"}, "owner": map[string]any{"name": s}, "meta": meta}
	inst := env.create(t, "door", id, ctx)
	want := map[string]any{"code": s, "opened": 0, "note": s, "tags": []any{s, "x"}, "owner": map[string]any{"name": s}, "meta": meta}
	apiSame(t, "the created context", inst.Context, want)
	if inst.ID != id {
		t.Errorf("id %q, want %q", inst.ID, id)
	}
	got := env.instance(t, id)
	apiSame(t, "the stored instance", got, inst)

	// The id as stored, read with SQL: verbatim.
	var stored string
	query := "SELECT id FROM instances WHERE id = ?"
	if env.dialect == persistence.Postgres {
		query = "SELECT id FROM instances WHERE id = $1"
	}
	if err := env.db.X.QueryRowContext(context.Background(), query, id).Scan(&stored); err != nil || stored != id {
		t.Errorf("the id as stored: %q, %v", stored, err)
	}

	// An event with s everywhere; the key and request id where the header rules allow s.
	key, reqID := "key", ""
	if apiPrintable(s) {
		key, reqID = s, s
	}
	payload := map[string]any{"note": s, "tags": []any{s}, "owner": s, "meta": map[string]any{s: s}}
	first := env.fire(t, id, "label", payload, "Idempotency-Key", key, "X-Request-ID", reqID)
	res := apiWant[apiEventResult](t, first, http.StatusOK)
	after := map[string]any{"code": s, "opened": 0, "note": s, "tags": []any{s}, "owner": map[string]any{"name": s}, "meta": map[string]any{s: s}}
	apiSame(t, "the context after label", res.Instance.Context, after)
	replay := env.fire(t, id, "label", payload, "Idempotency-Key", key, "X-Request-ID", reqID)
	if apiWant[apiEventResult](t, replay, http.StatusOK); replay.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(replay.body, first.body) {
		t.Errorf("the replay: %s", replay)
	}

	// The guard compares s with s as they are: the code unlocks.
	env.mustFire(t, id, "lock", nil)
	apiProblemOf(t, env.fire(t, id, "unlock", map[string]any{"code": s + "x"}), http.StatusConflict, "guard_rejected")
	env.mustFire(t, id, "unlock", map[string]any{"code": s})
	env.mustFire(t, id, "knock", map[string]any{"note": s})

	h := env.history(t, id, 0)
	if len(h) != 4 {
		t.Fatalf("history: %d rows, want 4", len(h))
	}
	apiSame(t, "the payload in the history", h[0].Payload, payload)
	apiSame(t, "context_before in the history", h[0].ContextBefore, want)
	apiSame(t, "context_after in the history", h[0].ContextAfter, after)
	if h[0].IdempotencyKey != key || (reqID != "" && h[0].RequestID != reqID) || h[3].Payload["note"] != s {
		t.Errorf("history: %+v", h)
	}

	// s as a filter matches nothing (no LIKE, no injection), and never everything.
	q := apiTruncate(s, 200)
	if strings.TrimSpace(q) == "" || strings.ContainsFunc(q, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }) {
		return
	}
	for _, name := range []string{"definition", "state"} {
		if items := env.list(t, url.Values{name: {q}}, 0); len(items) != 0 {
			t.Errorf("?%s=%q lists %d instances", name, q, len(items))
		}
	}
	if items := env.list(t, url.Values{"after": {id}, "state": {"nowhere"}}, 0); len(items) != 0 {
		t.Errorf("after=%q lists instances in no state", id)
	}
}

// apiTestNUL: PostgreSQL cannot store a NUL character in text, SQLite can; fsmd refuses it alike on
// both, as a payload or context that does not fit (422), and writes nothing.
func apiTestNUL(t *testing.T, env *apiEnv) {
	const nul = "a\u0000b"
	events := []struct {
		name    string
		event   string
		payload map[string]any
	}{
		{"a string field", "knock", map[string]any{"note": nul}},
		{"a list element", "label", map[string]any{"tags": []any{"ok", nul}}},
		{"an any field", "label", map[string]any{"meta": nul}},
		{"deep in an any field", "label", map[string]any{"meta": map[string]any{"list": []any{1, map[string]any{"s": nul}}}}},
		{"a key of an any field", "label", map[string]any{"meta": map[string]any{nul: 1}}},
	}
	contexts := []struct {
		name string
		ctx  map[string]any
	}{
		{"a string field", map[string]any{"code": nul}},
		{"a nested field", map[string]any{"code": "1", "owner": map[string]any{"name": nul}}},
		{"an any field", map[string]any{"code": "1", "meta": []any{nul}}},
		{"a key of an any field", map[string]any{"code": "1", "meta": map[string]any{nul: true}}},
	}
	env.door(t, "nul")
	for _, c := range events {
		t.Run("payload: "+c.name, func(t *testing.T) {
			p := apiProblemOf(t, env.fire(t, "nul", c.event, c.payload), http.StatusUnprocessableEntity, "invalid_payload")
			if !strings.Contains(p.Detail, "NUL") {
				t.Errorf("detail %q does not say why", p.Detail)
			}
		})
	}
	for i, c := range contexts {
		t.Run("context: "+c.name, func(t *testing.T) {
			id := fmt.Sprintf("nul-%d", i)
			body := map[string]any{"definition": "door", "id": id, "context": c.ctx}
			p := apiProblemOf(t, env.do(t, "POST", "/v1/instances", body), http.StatusUnprocessableEntity, "invalid_context")
			if !strings.Contains(p.Detail, "NUL") {
				t.Errorf("detail %q does not say why", p.Detail)
			}
			apiProblemOf(t, env.do(t, "GET", apiPath("/v1/instances/%s", id), nil), http.StatusNotFound, "not_found")
		})
	}
	if inst := env.instance(t, "nul"); inst.Revision != 0 || len(env.history(t, "nul", 0)) != 0 {
		t.Errorf("after the refused events: %+v", inst)
	}
	// A definition with a NUL: YAML's "\0" in a text, or the character itself.
	ticket := string(apiReadFile(t, apiDefsDir+"/ticket.yaml"))
	for name, src := range map[string]string{
		"in the description":       strings.Replace(ticket, "description: A support ticket.", `description: "a\0b"`, 1),
		"in a state's description": strings.Replace(ticket, "  open:\n", "  open:\n    description: \"\\0\"\n", 1),
		"in a guard's message": strings.Replace(ticket, "resolve: resolved",
			"resolve: {to: resolved, guard: 'state == \"open\"', guard_message: \"no\\0\"}", 1),
		"as a character": strings.Replace(ticket, "A support ticket.", "A support\x00ticket.", 1),
	} {
		r := env.do(t, "PUT", "/v1/definitions/ticket", src, "Content-Type", "application/yaml")
		if p := apiProblemOf(t, r, http.StatusUnprocessableEntity, "invalid_definition"); len(p.Errors) == 0 || p.Errors[0].Line < 1 {
			t.Errorf("%s: %+v", name, p.Errors)
		}
	}
	if v := apiWant[map[string]any](t, env.do(t, "GET", "/v1/definitions/ticket", nil), http.StatusOK); v["version"] != 1.0 {
		t.Errorf("ticket is at version %v after the refused puts", v["version"])
	}
}

// TestAPIDatabaseAway: PostgreSQL goes away (a proxy between fsmd and the server is cut) and comes
// back. While it is away every request that needs it is 503 unavailable and readyz says so; once it
// is back the same server answers again, and nothing was half-written: each instance's revision,
// state and history agree, and every event the clients saw accepted is in the history once.
func TestAPIDatabaseAway(t *testing.T) {
	t.Parallel()
	env, p := apiProxied(t) // outcome_test.go

	env.door(t, "away-1")
	env.mustFire(t, "away-1", "knock", map[string]any{"note": "before"}, "Idempotency-Key", "before")

	p.Cut()
	for _, c := range []struct {
		method, path string
		body         any
		header       []string
	}{
		{"GET", "/readyz", nil, nil},
		{"GET", "/v1/instances/away-1", nil, nil},
		{"GET", "/v1/instances", nil, nil},
		{"GET", "/v1/instances/away-1/history", nil, nil},
		{"POST", "/v1/instances/away-1/events", map[string]any{"event": "knock", "payload": map[string]any{"note": "away"}}, []string{"Idempotency-Key", "away"}},
		{"POST", "/v1/instances/away-1/explain", map[string]any{"event": "open"}, nil},
		{"POST", "/v1/instances", map[string]any{"definition": "door", "id": "away-2", "context": map[string]any{"code": "1"}}, nil},
		{"GET", "/v1/definitions", nil, nil},
		{"GET", "/v1/definitions/door", nil, nil}, // it counts the running instances
		{"PUT", "/v1/definitions/door", apiReadFile(t, apiPutDir+"/door_v2.yaml"), []string{"Content-Type", "application/yaml"}},
	} {
		p := apiProblemOf(t, env.do(t, c.method, c.path, c.body, c.header...), http.StatusServiceUnavailable, "unavailable")
		if strings.Contains(p.Detail, "127.0.0.1") {
			t.Errorf("the detail shows the database's address: %q", p.Detail)
		}
	}
	// What lives in memory still answers.
	apiWant[map[string]any](t, env.do(t, "GET", "/healthz", nil), http.StatusOK)
	apiWant[map[string]any](t, env.do(t, "GET", "/v1/definitions/door/versions/1", nil), http.StatusOK)

	p.Restore()
	apiAwaitReady(t, env)
	res := env.mustFire(t, "away-1", "knock", map[string]any{"note": "away"}, "Idempotency-Key", "away")
	if res.Instance.Revision != 2 {
		t.Errorf("the event refused while away: revision %d, want 2", res.Instance.Revision)
	}
	env.create(t, "door", "away-2", map[string]any{"code": "1"})
	if v := apiWant[map[string]any](t, env.do(t, "PUT", "/v1/definitions/door", apiReadFile(t, apiPutDir+"/door_v2.yaml"),
		"Content-Type", "application/yaml"), http.StatusCreated); v["definition"].(map[string]any)["version"] != 2.0 {
		t.Errorf("the put after the return: %v", v)
	}
	apiCheckAgree(t, env, "away-1", []string{"before", "away"})

	// Away and back while clients send events: every answer is 200 or 503; the same server recovers
	// under load; a 503 retried with its Idempotency-Key once the database is back is applied
	// exactly once (whether or not its transaction had committed).
	const clients = 4
	env.door(t, "away-3")
	var (
		mu             sync.Mutex
		acked, failed  []string
		ackedAfterBack int
		back           bool
		wg             sync.WaitGroup
	)
	stop := make(chan struct{})
	progress := make(chan struct{}, 1)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("c%d-%d", c, i)
				r, err := env.try("POST", "/v1/instances/away-3/events",
					map[string]any{"event": "knock", "payload": map[string]any{"note": key}}, "Idempotency-Key", key)
				mu.Lock()
				switch {
				case err != nil:
					t.Error(err)
				case r.status == http.StatusOK:
					acked = append(acked, key)
					if back {
						ackedAfterBack++
					}
				case r.status == http.StatusServiceUnavailable && (strings.Contains(string(r.body), `"code":"unavailable"`) ||
					strings.Contains(string(r.body), `"code":"outcome_unknown"`)):
					failed = append(failed, key)
				default:
					t.Errorf("while the database comes and goes: %s", r)
				}
				mu.Unlock()
				if err != nil {
					return
				}
				select {
				case progress <- struct{}{}:
				default:
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	acks := func(afterBack bool) int {
		mu.Lock()
		defer mu.Unlock()
		if afterBack {
			return ackedAfterBack
		}
		return len(acked)
	}
	await := func(what string, afterBack bool, want int) {
		deadline := time.After(15 * time.Second)
		for acks(afterBack) < want {
			select {
			case <-progress:
			case <-deadline:
				close(stop)
				wg.Wait()
				t.Fatalf("%s: %d events acknowledged, want %d", what, acks(afterBack), want)
			}
		}
	}
	await("before the cut", false, 40)
	p.Cut()
	time.Sleep(150 * time.Millisecond)
	p.Restore()
	mu.Lock()
	back = true
	mu.Unlock()
	await("after the return", true, 40)
	close(stop)
	wg.Wait()
	// An event whose write was cut off after it was sent is resolved when the database is back
	// (docs/api.md, "The three outcomes"): a short cut may fail no request at all.
	for _, key := range failed {
		env.mustFire(t, "away-3", "knock", map[string]any{"note": key}, "Idempotency-Key", key)
	}
	apiCheckAgree(t, env, "away-3", slices.Concat(acked, failed))
	t.Logf("%d events acknowledged at once, %d after a retry", len(acked), len(failed))
}

// apiAwaitReady waits until readyz answers 200.
func apiAwaitReady(t *testing.T, env *apiEnv) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := env.do(t, "GET", "/readyz", nil)
		if r.status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready again: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiCheckAgree checks that an instance and its history agree (revision, state, seq 1..N) and that
// the history holds each key once, and no other.
func apiCheckAgree(t *testing.T, env *apiEnv, id string, keys []string) {
	t.Helper()
	inst := env.instance(t, id)
	h := env.history(t, id, 0)
	if inst.Revision != int64(len(h)) || (len(h) > 0 && inst.State != h[len(h)-1].To) {
		t.Errorf("%s: revision %d in state %s, but %d history rows", id, inst.Revision, inst.State, len(h))
	}
	seen := map[string]int{}
	for i, e := range h {
		if e.Seq != int64(i+1) {
			t.Errorf("%s: row %d has seq %d", id, i, e.Seq)
		}
		seen[e.IdempotencyKey]++
	}
	for _, k := range keys {
		if seen[k] != 1 {
			t.Errorf("%s: key %q is in the history %d times", id, k, seen[k])
		}
	}
	if len(h) != len(keys) {
		t.Errorf("%s: %d history rows, want %d", id, len(h), len(keys))
	}
}
