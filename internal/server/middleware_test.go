package server

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/service"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"sane", "req-42 from upstream", true},
		{"200 characters", strings.Repeat("r", 200), true},
		{"absent", "", false},
		{"201 characters", strings.Repeat("r", 201), false},
		{"control character", "req\x01", false},
		{"not ASCII", "requête", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			rec := b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: `{"event":"pay"}`, header: map[string]string{HeaderRequestID: tt.sent}})
			got := rec.Header().Get(HeaderRequestID)
			if tt.kept && got != tt.sent || !tt.kept && !generated.MatchString(got) {
				t.Fatalf("X-Request-ID %q (sent %q)", got, tt.sent)
			}
			if b.svc.event.RequestID != got {
				t.Errorf("the service got request id %q, the answer says %q", b.svc.event.RequestID, got)
			}
			lines := b.log.lines(t)
			if len(lines) != 1 {
				t.Fatalf("log: %s", b.log)
			}
			l := lines[0]
			if l["msg"] != "request" || l["request_id"] != got || l["method"] != "POST" || l["path"] != "/v1/instances/i-1/events" ||
				l["status"] != 200.0 || l["route"] != "/v1/instances/:id/events" || l["instance"] != "i-1" {
				t.Errorf("log line %v", l)
			}
			if _, ok := l["duration"]; !ok {
				t.Errorf("log line %v has no duration", l)
			}
		})
	}
	t.Run("two requests, two ids", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		a := b.do(t, req{method: "GET", path: "/healthz"}).Header().Get(HeaderRequestID)
		c := b.do(t, req{method: "GET", path: "/healthz"}).Header().Get(HeaderRequestID)
		if a == c {
			t.Errorf("both %q", a)
		}
	})
	t.Run("errors are logged with their status", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		rec := b.do(t, req{method: "GET", path: "/nope", header: map[string]string{HeaderRequestID: "r-1"}})
		problem(t, rec, 404, "not_found")
		lines := b.log.lines(t)
		if len(lines) != 1 || lines[0]["status"] != 404.0 || lines[0]["request_id"] != "r-1" {
			t.Errorf("log: %s", b.log)
		}
	})
	t.Run("a definition's name in the path", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.do(t, req{method: "GET", path: "/v1/definitions/door/versions"})
		if lines := b.log.lines(t); len(lines) != 1 || lines[0]["definition"] != "door" || lines[0]["instance"] != nil {
			t.Errorf("log: %s", b.log)
		}
	})
	t.Run("an escaped id in the path is logged as the handler reads it", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.do(t, req{method: "GET", path: "/v1/instances/a%2Fb%3C/history"})
		if lines := b.log.lines(t); len(lines) != 1 || lines[0]["instance"] != "a/b<" {
			t.Errorf("log: %s", b.log)
		}
	})
}

// TestAccessLogLevel: at info every request has its line; at warn none has (and failures still
// log theirs).
func TestAccessLogLevel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		level slog.Level
		lines int
	}{{slog.LevelInfo, 1}, {slog.LevelWarn, 0}} {
		b := &bundle{svc: &fakeService{inst: service.Instance{ID: "i-1", Definition: "order", Version: 1, State: "created"}}, log: &syncBuffer{}}
		b.e = New(b.svc, Options{Logger: slog.New(slog.NewJSONHandler(b.log, &slog.HandlerOptions{Level: tt.level}))})
		if rec := b.do(t, req{method: "GET", path: "/v1/instances/i-1"}); rec.Code != 200 {
			t.Fatalf("GET: %d", rec.Code)
		}
		if got := strings.Count(b.log.String(), `"msg":"request"`); got != tt.lines {
			t.Errorf("level %v: %d access log lines, want %d: %s", tt.level, got, tt.lines, b.log)
		}
	}
}
