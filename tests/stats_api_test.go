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
		}
		for _, tt := range bad {
			r := env.do(t, "GET", "/v1/definitions/ticket/stats?"+tt.query, nil)
			if r.status != 400 || !strings.Contains(string(r.body), "invalid_request") || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("%s: %v, want 400 invalid_request about %q", tt.name, r, tt.want)
			}
		}
		if r := env.do(t, "GET", "/v1/definitions/nope/stats?until="+url.QueryEscape(now.Format(time.RFC3339Nano)), nil); r.status != 404 {
			t.Errorf("an unknown definition: %v", r)
		}
	})
}
