package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestHistoryNDJSON: GET /v1/instances/{id}/history?format=ndjson is the whole history, one entry
// a line exactly as the pages give them, from after `after`; an empty history is an empty body;
// bad parameters are 400 naming them, an unknown instance 404, before anything is streamed.
func TestHistoryNDJSON(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, e *apiEnv) {
		e.door(t, "d-1")
		for i := range 7 {
			e.mustFire(t, "d-1", "knock", map[string]any{"note": fmt.Sprintf("<knock %d>", i)})
		}
		lines := func(query string) []map[string]any {
			t.Helper()
			r := e.do(t, "GET", apiPath("/v1/instances/%s/history", "d-1")+"?"+query, nil)
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("%s", r)
			}
			var out []map[string]any
			for i, line := range bytes.SplitAfter(r.body, []byte("\n")) {
				if len(line) == 0 {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal(line, &m); err != nil || !bytes.HasSuffix(line, []byte("\n")) {
					t.Fatalf("%s: line %d %q: %v", r.path, i+1, line, err)
				}
				out = append(out, m)
			}
			return out
		}
		var page struct{ Items []map[string]any }
		if err := json.Unmarshal(e.do(t, "GET", apiPath("/v1/instances/%s/history", "d-1"), nil).body, &page); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			query string
			want  []map[string]any
		}{
			{"format=ndjson", page.Items},
			{"format=ndjson&after=2", page.Items[2:]},
			{"format=ndjson&after=7", nil},
		} {
			if got := lines(tc.query); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: %d lines %v\nwant %d as the page gives them %v", tc.query, len(got), got, len(tc.want), tc.want)
			}
		}
		if r := e.do(t, "GET", apiPath("/v1/instances/%s/history", "d-1")+"?format=json&limit=3", nil); r.status != http.StatusOK ||
			r.header.Get("Content-Type") != "application/json" || len(apiWant[apiPage[apiHistoryEntry]](t, r, http.StatusOK).Items) != 3 {
			t.Errorf("format=json: %s", r) // the page, as without format
		}
		e.door(t, "d-empty")
		if r := e.do(t, "GET", apiPath("/v1/instances/%s/history", "d-empty")+"?format=ndjson", nil); r.status != http.StatusOK || len(r.body) != 0 {
			t.Errorf("an empty history: %s", r)
		}

		for _, tc := range []struct {
			query, id string
			status    int
			code      string
			detail    string
		}{
			{"format=xml", "d-1", 400, "invalid_request", `format must be json or ndjson, not "xml"`},
			{"format=ndjson&limit=5", "d-1", 400, "invalid_request", "limit does not go with format=ndjson"},
			{"format=ndjson&after=-1", "d-1", 400, "invalid_request", "after"},
			{"format=ndjson&format=json", "d-1", 400, "invalid_request", "format is given 2 times"},
			{"format=ndjson", "nobody", 404, "not_found", "nobody"},
		} {
			r := e.do(t, "GET", apiPath("/v1/instances/%s/history", tc.id)+"?"+tc.query, nil)
			p := apiProblemOf(t, r, tc.status, tc.code)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("%s: detail %q, want it to name %q", tc.query, p.Detail, tc.detail)
			}
		}
	})
}
