package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

func ms(v int64) *int64 { return &v }

// TestDefinitionStats: the stats of a window count the transitions, the entries and exits of each
// state, the median and p95 of the time spent in it, the running instances and the refused events,
// from the hourly and the daily rollups, on a controlled clock.
func TestDefinitionStats(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
		c := &clock{t: t0}
		svc := service.New(db, service.Options{Now: c.now})
		if err := svc.Register(ctx, set(t, doorV1, ticket)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"d1", "d2", "d3", "d4"} {
			create(t, svc, "door", id)
		}
		create(t, svc, "ticket", "t1")
		c.advance(time.Second)
		send(t, svc, "d1", "open") // closed for 1 s
		c.advance(time.Second)
		send(t, svc, "d2", "open") // closed for 2 s
		c.advance(3 * time.Second)
		send(t, svc, "d3", "open") // closed for 5 s
		send(t, svc, "t1", "resolve")
		c.advance(10 * time.Second)
		send(t, svc, "d1", "close") // opened for 14 s
		refuse := func(id, event, want string) {
			t.Helper()
			_, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: id, Event: event, RequestID: "r"})
			var ee *service.EventError
			if !errors.As(err, &ee) || code.Of(err) != want {
				t.Fatalf("SendEvent %s %s: %v, want %s", id, event, err, want)
			}
		}
		refuse("d2", "smash", code.InvalidTransition)
		refuse("d4", "fly", code.UnknownEvent)
		refuse("d4", "fly", code.UnknownEvent)
		c.advance(time.Hour)
		send(t, svc, "d1", "smash") // closed for 1 h, at 11:00:15
		refuse("d1", "open", code.InstanceFinal)

		all := service.Stats{Definition: "door",
			States: []service.StateStats{
				{State: "closed", Running: 1, Entries: 1, Exits: 4, MedianMS: ms(2000), P95MS: ms(3_600_000)},
				{State: "opened", Running: 2, Entries: 3, Exits: 1, MedianMS: ms(14_000), P95MS: ms(14_000)},
				{State: "broken", Entries: 1},
			},
			Transitions: []service.TransitionStats{
				{From: "closed", To: "broken", Event: "smash", Count: 1},
				{From: "closed", To: "opened", Event: "open", Count: 3},
				{From: "opened", To: "closed", Event: "close", Count: 1},
			},
			Rejections: []service.EventRejections{
				{Event: "fly", Count: 2, ByCode: map[string]int64{"unknown_event": 2}},
				{Event: "open", Count: 1, ByCode: map[string]int64{"instance_final": 1}},
				{Event: "smash", Count: 1, ByCode: map[string]int64{"invalid_transition": 1}},
			},
		}
		tenOClock := all
		tenOClock.States = []service.StateStats{
			{State: "closed", Running: 1, Entries: 1, Exits: 3, MedianMS: ms(2000), P95MS: ms(5000)},
			{State: "opened", Running: 2, Entries: 3, Exits: 1, MedianMS: ms(14_000), P95MS: ms(14_000)},
			{State: "broken"},
		}
		tenOClock.Transitions = all.Transitions[1:]
		tenOClock.Rejections = []service.EventRejections{all.Rejections[0], all.Rejections[2]}
		elevenOClock := service.Stats{Definition: "door",
			States: []service.StateStats{
				{State: "closed", Running: 1, Exits: 1, MedianMS: ms(3_600_000), P95MS: ms(3_600_000)},
				{State: "opened", Running: 2},
				{State: "broken", Entries: 1},
			},
			Transitions: all.Transitions[:1],
			Rejections:  all.Rejections[1:2],
		}
		at := func(s string) time.Time {
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		tests := []struct {
			name         string
			since, until string // "" for the default
			want         service.Stats
			wantSince    string
			wantUntil    string
		}{
			{"default: the last 24 h", "", "", all, "2026-03-09T11:00:00Z", "2026-03-10T12:00:00Z"},
			{"whole days (daily rollup)", "2026-03-09T00:00:00Z", "2026-03-12T00:00:00Z", all, "2026-03-09T00:00:00Z", "2026-03-12T00:00:00Z"},
			{"days and hours", "2026-03-08T22:30:00Z", "2026-03-11T01:00:00Z", all, "2026-03-08T22:00:00Z", "2026-03-11T01:00:00Z"},
			{"hours before a day", "2026-03-09T05:00:00Z", "2026-03-10T10:30:00Z", tenOClock, "2026-03-09T05:00:00Z", "2026-03-10T11:00:00Z"},
			{"one hour", "2026-03-10T11:00:00Z", "2026-03-10T12:00:00Z", elevenOClock, "2026-03-10T11:00:00Z", "2026-03-10T12:00:00Z"},
			{"nothing", "2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z", service.Stats{Definition: "door",
				States:      []service.StateStats{{State: "closed", Running: 1}, {State: "opened", Running: 2}, {State: "broken"}},
				Transitions: []service.TransitionStats{}, Rejections: []service.EventRejections{}},
				"2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := service.StatsRequest{Definition: "door"}
				if tt.since != "" {
					req.Since, req.Until = at(tt.since), at(tt.until)
				}
				got, err := svc.DefinitionStats(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				want := tt.want
				want.Since, want.Until = at(tt.wantSince), at(tt.wantUntil)
				w, _ := json.Marshal(want)
				g, _ := json.Marshal(got)
				if string(w) != string(g) {
					t.Errorf("stats:\n got %s\nwant %s", g, w)
				}
			})
		}

		bad := []struct {
			name         string
			since, until time.Time
		}{
			{"since after until", t0, t0.Add(-time.Hour)},
			{"since equals until", t0, t0},
			{"longer than 366 days", t0.AddDate(-2, 0, 0), t0},
			{"since alone, years ago", t0.AddDate(-5, 0, 0), time.Time{}},
			{"since before 1970", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
			{"until past the year 9999's last day", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 12, 0, 0, 0, time.UTC)},
		}
		for _, tt := range bad {
			_, err := svc.DefinitionStats(ctx, service.StatsRequest{Definition: "door", Since: tt.since, Until: tt.until})
			var br *service.BadRequestError
			if !errors.As(err, &br) {
				t.Errorf("%s: %v, want a BadRequestError", tt.name, err)
			}
		}
		// Another process's counts reach the database when it closes (or within a second).
		other := service.New(db, service.Options{Now: c.now})
		if err := other.Register(ctx, set(t, doorV1, ticket)); err != nil {
			t.Fatal(err)
		}
		send(t, other, "d2", "close")
		other.Close()
		got, err := svc.DefinitionStats(ctx, service.StatsRequest{Definition: "door"})
		if err != nil || len(got.Transitions) != 3 || got.Transitions[2].From != "opened" || got.Transitions[2].Count != 2 {
			t.Errorf("after another process's close: %+v, %v", got.Transitions, err)
		}

		_, err = svc.DefinitionStats(ctx, service.StatsRequest{Definition: "nope"})
		var nf *service.NotFoundError
		if !errors.As(err, &nf) {
			t.Errorf("unknown definition: %v, want a NotFoundError", err)
		}
	})
}

// TestParseStatsTime: a stats window's time given as text is RFC 3339 from 1970 to the year 9999's
// last day; "" is none; the zero time is a time given, out of bounds, never taken for none.
func TestParseStatsTime(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  time.Time
		err   string
	}{
		{"", time.Time{}, ""},
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), ""},
		{"1970-01-01T00:00:00Z", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), ""},
		{"9999-12-31T00:00:00Z", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), ""},
		{"0001-01-01T00:00:00Z", time.Time{}, "--since must be from 1970-01-01T00:00:00Z to 9999-12-31T00:00:00Z, got 0001-01-01T00:00:00Z"},
		{"0001-01-01T02:00:00+02:00", time.Time{}, "--since must be from"},
		{"1969-12-31T23:59:59.999Z", time.Time{}, "--since must be from"},
		{"9999-12-31T00:00:00.000000001Z", time.Time{}, "--since must be from"},
		{"yesterday", time.Time{}, `--since must be a time in RFC 3339 (2026-01-02T15:04:05Z), got "yesterday"`},
	} {
		got, err := service.ParseStatsTime("--since", tt.value)
		var br *service.BadRequestError
		switch {
		case tt.err == "" && (err != nil || !got.Equal(tt.want)):
			t.Errorf("%q: %v, %v; want %v", tt.value, got, err, tt.want)
		case tt.err != "" && (!errors.As(err, &br) || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: %v; want a BadRequestError %q", tt.value, err, tt.err)
		}
	}
}
