package server

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, contentType string
		status                  int
		code, detail            string // detail: a part of it
	}{
		{"malformed", `{"event":`, "application/json", 400, "invalid_request", "malformed JSON"},
		{"syntax error", `{"event" "pay"}`, "application/json", 400, "invalid_request", "malformed JSON at byte"},
		{"unknown field", `{"event":"pay","amount":3}`, "application/json", 400, "invalid_request", `unknown field "amount"`},
		{"field in another case", `{"Event":"pay"}`, "application/json", 400, "invalid_request", `unknown field "Event"`},
		{"field twice", `{"event":"pay","event":"ship"}`, "application/json", 400, "invalid_request", `field "event" is given twice`},
		{"a payload's key twice", `{"event":"pay","payload":{"a":1,"b":2,"a":3}}`, "application/json", 400, "invalid_request", `key "a" is given twice in payload`},
		{"a key twice deep in a value", `{"event":"pay","payload":{"meta":[{"k":1},{"x":{"k":1,"k":1}}]}}`, "application/json", 400, "invalid_request", `key "k" is given twice in payload.meta[1].x`},
		{"a key twice, once escaped", `{"event":"pay","payload":{"a":1,"\u0061":2}}`, "application/json", 400, "invalid_request", `key "a" is given twice in payload`},
		{"a key twice after the payload", `{"payload":{"a":{}},"event":"pay","x":1}`, "application/json", 400, "invalid_request", `unknown field "x"`},
		// A lone surrogate escape: encoding/json would make it U+FFFD silently.
		{"a lone high surrogate", `{"event":"pay","payload":{"note":"\ud800"}}`, "application/json", 400, "invalid_request", `the string at payload.note holds \ud800, half of a UTF-16 surrogate pair`},
		{"a lone low surrogate", `{"event":"pay","payload":{"l":["ok","a\uDFFFb"]}}`, "application/json", 400, "invalid_request", `the string at payload.l[1] holds \uDFFF`},
		{"a high surrogate before another escape", `{"event":"pay","payload":{"note":"\ud83d\u0041"}}`, "application/json", 400, "invalid_request", `holds \ud83d`},
		{"a high surrogate at the end", `{"event":"pay","payload":{"note":"\ud83d\ude00\ud83d"}}`, "application/json", 400, "invalid_request", `holds \ud83d`},
		{"two high surrogates", `{"event":"pay","payload":{"note":"\ud83d\ud83d\ude00"}}`, "application/json", 400, "invalid_request", `holds \ud83d`},
		{"a lone surrogate in a key", `{"event":"pay","payload":{"m":{"\ud800":1}}}`, "application/json", 400, "invalid_request", `a key of payload.m holds \ud800`},
		{"a lone surrogate in a field name", `{"\udc00":1}`, "application/json", 400, "invalid_request", `a field name of the body holds \udc00`},
		{"a lone surrogate in the event", `{"event":"p\ud800"}`, "application/json", 400, "invalid_request", `the string at event holds`},
		{"nested too deep", `{"event":"pay","payload":{"a":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}}`, "application/json", 400, "invalid_request", "deeper than 100 levels, at payload.a[0]"},
		{"nested very deep", `{"event":"pay","payload":{"a":` + strings.Repeat(`{"b":`, 1<<17), "application/json", 400, "invalid_request", "deeper than 100 levels"},
		{"trailing data", `{"event":"pay"} {}`, "application/json", 400, "invalid_request", "after the JSON object"},
		{"trailing garbage", `{"event":"pay"}x`, "application/json", 400, "invalid_request", "after the JSON object"},
		{"not an object", `["pay"]`, "application/json", 400, "invalid_request", "must be a JSON object"},
		{"null", `null`, "application/json", 400, "invalid_request", "must be a JSON object"},
		{"empty", ` `, "application/json", 400, "invalid_request", "empty"},
		{"wrong type", `{"event":5}`, "application/json", 400, "invalid_request", `field "event": expected a string, got number`},
		{"payload not an object", `{"event":"pay","payload":[1]}`, "application/json", 400, "invalid_request", `field "payload": expected an object, got array`},
		{"missing event", `{"payload":{}}`, "application/json", 400, "invalid_request", "event is empty"},
		{"not UTF-8", "{\"event\":\"p\xffy\"}", "application/json", 400, "invalid_request", "UTF-8"},
		{"no content type", `{"event":"pay"}`, "", 415, "unsupported_media_type", "Content-Type is missing"},
		{"form", `event=pay`, "application/x-www-form-urlencoded", 415, "unsupported_media_type", "application/json"},
		{"yaml", `event: pay`, "application/yaml", 415, "unsupported_media_type", "application/json"},
		{"bad charset", `{"event":"pay"}`, "application/json; charset=latin1", 415, "unsupported_media_type", "charset"},
		{"unparsable content type", `{"event":"pay"}`, "application/json; =", 415, "unsupported_media_type", "cannot be parsed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			p := problem(t, b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: tt.body, header: map[string]string{"Content-Type": tt.contentType}}), tt.status, tt.code)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, tt.detail)
			}
			if b.svc.event.Event != "" {
				t.Errorf("the service was asked: %+v", b.svc.event)
			}
		})
	}
}

func TestDecodeJSONAccepts(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	// The same key in two objects, and nesting of exactly the most levels, are fine.
	deep := strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) // levels 3 to 100
	body := `{"payload":{"amount":12345678901234567890,"note":"'; DROP TABLE instances; --","nested":{"a":[1,2.5],"amount":{"a":1}},"deep":` +
		deep + `,"pair":"\ud83d\uDE00","replacement":"\ufffd�","backslash":"\\ud800\\\ud83d\ude00"},"event":"pay"}` + "\n"
	rec := b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: body, header: map[string]string{"Content-Type": "application/json; charset=UTF-8"}})
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	ev := b.svc.event
	// Numbers keep every digit (json.Number), strings are kept verbatim.
	if ev.Event != "pay" || ev.Payload["amount"] != json.Number("12345678901234567890") || ev.Payload["note"] != "'; DROP TABLE instances; --" {
		t.Errorf("event %+v", ev)
	}
	// Surrogate pairs, U+FFFD itself and a backslash before "ud800" are characters.
	if ev.Payload["pair"] != "😀" || ev.Payload["replacement"] != "\ufffd\ufffd" || ev.Payload["backslash"] != `\ud800\😀` {
		t.Errorf("strings %q %q %q", ev.Payload["pair"], ev.Payload["replacement"], ev.Payload["backslash"])
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	big := `{"event":"pay","payload":{"x":"` + strings.Repeat("a", DefaultBodyLimit) + `"}}`

	// Known length: refused before reading.
	p := problem(t, b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: big}), 413, "body_too_large")
	if !strings.Contains(p.Detail, "1048576") {
		t.Errorf("detail %q", p.Detail)
	}
	// Unknown length (chunked): refused when read past the limit.
	r := httptest.NewRequest("POST", "/v1/instances/i-1/events", strings.NewReader(big))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, r)
	problem(t, rec, 413, "body_too_large")

	// The YAML of PUT is bounded alike.
	r = httptest.NewRequest("PUT", "/v1/definitions/order", strings.NewReader(strings.Repeat("#", DefaultBodyLimit+1)))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/yaml")
	rec = httptest.NewRecorder()
	b.e.ServeHTTP(rec, r)
	problem(t, rec, 413, "body_too_large")

	// A body of exactly the limit passes.
	small := setup(t, Options{BodyLimit: 64})
	exact := `{"event":"pay","payload":{"x":"` + strings.Repeat("a", 64-len(`{"event":"pay","payload":{"x":""}}`)) + `"}}`
	if rec := small.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: exact}); rec.Code != 200 {
		t.Errorf("a body of the limit: %d %s", rec.Code, rec.Body)
	}
	problem(t, small.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: exact + " "}), 413, "body_too_large")
}
