package tests

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAPIStats: GET /v1/definitions/{name}/stats counts the transitions and refusals of the last
// 24 h by default, and refuses a bad window with 400 invalid_request naming the problem.
func TestAPIStats(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.create(t, "ticket", "stats-1", nil)
		env.mustFire(t, "stats-1", "resolve", nil)
		if r := env.fire(t, "stats-1", "resolve", nil); r.status != 409 && r.status != 422 {
			t.Fatalf("a second resolve: %v", r)
		}
		r := env.do(t, "GET", "/v1/definitions/ticket/stats", nil)
		if r.status != 200 {
			t.Fatalf("stats: %v", r)
		}
		var got struct {
			Transitions []struct {
				From, To, Event string
				Count           int64
			}
			Rejections []struct {
				Event  string
				Count  int64
				ByCode map[string]int64 `json:"by_code"`
			}
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Transitions) != 1 || got.Transitions[0].Event != "resolve" || got.Transitions[0].Count != 1 {
			t.Errorf("transitions: %s", r.body)
		}
		if len(got.Rejections) != 1 || got.Rejections[0].Count != 1 || got.Rejections[0].ByCode["instance_final"] != 1 {
			t.Errorf("rejections: %s", r.body)
		}

		now := time.Now().UTC()
		bad := []struct{ name, query, want string }{
			{"not RFC 3339", "since=yesterday", "RFC 3339"},
			{"a date only", "since=2026-01-02", "RFC 3339"},
			{"since after until", "since=" + now.Format(time.RFC3339) + "&until=" + now.Add(-time.Hour).Format(time.RFC3339), "before until"},
			{"years", "since=2000-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "366 days"},
			{"years before now", "since=2001-01-01T00:00:00Z", "366 days"},
			{"an unknown parameter", "from=2026-01-01T00:00:00Z", "unknown query parameter"},
			{"given twice", "since=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z", "2 times"},
			// The zero time is a time given, not none; a time out of bounds names its parameter.
			{"since the zero time", "since=0001-01-01T00:00:00Z", "query parameter since must be from 1970-01-01T00:00:00Z to 9999-12-31T00:00:00Z"},
			{"until the zero time", "until=0001-01-01T00:00:00Z", "query parameter until must be from"},
			{"until the zero time after since", "since=" + now.Add(-48*time.Hour).Format(time.RFC3339) + "&until=0001-01-01T00:00:00Z", "query parameter until"},
			{"the zero time in another zone", "since=" + url.QueryEscape("0001-01-01T01:00:00+01:00"), "query parameter since"},
			{"the year 0", "since=0000-06-01T00:00:00Z&until=0000-06-02T00:00:00Z", "query parameter since"},
			{"before 1970", "since=1969-12-31T23:00:00Z&until=1970-01-01T01:00:00Z", "query parameter since"},
			{"past the last day", "since=9999-12-31T00:00:00Z&until=9999-12-31T23:59:59Z", "query parameter until"},
			{"an offset past a day", "since=" + url.QueryEscape("2026-01-01T00:00:00+25:00"), "query parameter since must be a time in RFC 3339"},
			{"an empty window", "since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "before until"},
		}
		for _, tt := range bad {
			r := env.do(t, "GET", "/v1/definitions/ticket/stats?"+tt.query, nil)
			if r.status != 400 || !strings.Contains(string(r.body), "invalid_request") || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("%s: %v, want 400 invalid_request about %q", tt.name, r, tt.want)
			}
		}
		// The bounds themselves are times.
		for _, q := range []string{"since=1970-01-01T00:00:00Z&until=1970-01-02T00:00:00Z",
			"since=9999-12-30T00:00:00Z&until=9999-12-31T00:00:00Z", "until=1970-01-01T05:00:00Z"} {
			r := env.do(t, "GET", "/v1/definitions/ticket/stats?"+q, nil)
			var st struct{ Since, Until time.Time }
			if err := json.Unmarshal(r.body, &st); r.status != 200 || err != nil || st.Until.After(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("%s: %v", q, r)
			}
		}
		if r := env.do(t, "GET", "/v1/definitions/nope/stats?until="+url.QueryEscape(now.Format(time.RFC3339Nano)), nil); r.status != 404 {
			t.Errorf("an unknown definition: %v", r)
		}
	})
}
