package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/service"
)

func (f *fakeService) ListDeadLetters(_ context.Context, fl service.DeadLetterFilter) (service.Page[service.DeadLetter], error) {
	err := f.record(func() { f.dead = fl })
	return service.Page[service.DeadLetter]{Items: []service.DeadLetter{f.deadLetter}, Next: f.deadLetter.ID}, err
}

func (f *fakeService) RedriveDeadLetter(_ context.Context, id string) (service.RedriveResult, error) {
	err := f.record(func() { f.id = id })
	return service.RedriveResult{Redriven: 1}, err
}

func (f *fakeService) RedriveDeadLetters(_ context.Context, fl service.DeadLetterFilter) (service.RedriveResult, error) {
	err := f.record(func() { f.dead = fl })
	return service.RedriveResult{Redriven: 7}, err
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b.svc.deadLetter = service.DeadLetter{ID: "d-1", Instance: "i-1", Seq: 2, Definition: "order", Version: 1, Webhook: "billing",
		URL: "https://billing.example/in", Attempts: 16, LastError: "HTTP 500: (no body)", CreatedAt: at, LastTryAt: &at,
		Body: json.RawMessage(`{"delivery_id":"d-1"}`)}
	w := b.do(t, req{method: "GET", path: "/v1/outbox/dead?definition=order&webhook=billing&limit=5&after=d-0"})
	if w.Code != http.StatusOK {
		t.Fatalf("GET /v1/outbox/dead = %d %s", w.Code, w.Body)
	}
	var page map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	item := page["items"].([]any)[0].(map[string]any)
	if page["next"] != "d-1" || item["id"] != "d-1" || item["instance"] != "i-1" || item["attempts"] != 16.0 ||
		item["body"].(map[string]any)["delivery_id"] != "d-1" || item["last_try_at"] != "2026-05-01T12:00:00Z" {
		t.Errorf("page = %s", w.Body)
	}
	if want := (service.DeadLetterFilter{Definition: "order", Webhook: "billing", After: "d-0", Limit: 5}); b.svc.dead != want {
		t.Errorf("filter = %+v, want %+v", b.svc.dead, want)
	}
	b.do(t, req{method: "GET", path: "/v1/outbox/dead"})
	if want := (service.DeadLetterFilter{Limit: 100}); b.svc.dead != want {
		t.Errorf("default filter = %+v", b.svc.dead)
	}

	w = b.do(t, req{method: "POST", path: "/v1/outbox/dead/d-1/redrive"})
	if w.Code != http.StatusOK || w.Body.String() != "{\"redriven\":1}\n" || b.svc.id != "d-1" {
		t.Errorf("POST redrive = %d %s (id %q)", w.Code, w.Body, b.svc.id)
	}
	w = b.do(t, req{method: "POST", path: "/v1/outbox/dead/redrive?webhook=crm"})
	if w.Code != http.StatusOK || w.Body.String() != "{\"redriven\":7}\n" || b.svc.dead != (service.DeadLetterFilter{Webhook: "crm"}) {
		t.Errorf("POST redrive all = %d %s (filter %+v)", w.Code, w.Body, b.svc.dead)
	}

	for _, tt := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/outbox/dead?limit=0", 400, "invalid_request"},
		{"GET", "/v1/outbox/dead?limit=1001", 400, "invalid_request"},
		{"GET", "/v1/outbox/dead?state=x", 400, "invalid_request"},
		{"GET", "/v1/outbox/dead?after=%01", 400, "invalid_request"},
		{"POST", "/v1/outbox/dead/redrive?after=x", 400, "invalid_request"},
		{"POST", "/v1/outbox/dead/d-1/redrive?x=1", 400, "invalid_request"},
		{"DELETE", "/v1/outbox/dead", 405, "method_not_allowed"},
		{"GET", "/v1/outbox/dead/d-1/redrive", 405, "method_not_allowed"},
	} {
		w := b.do(t, req{method: tt.method, path: tt.path})
		var p Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != tt.status || p.Code != tt.code {
			t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, w.Code, w.Body, tt.status, tt.code)
		}
	}
}

func TestDeadLettersErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.svc.err = &service.NotFoundError{What: "dead letter", Key: "d-9"}
	w := b.do(t, req{method: "POST", path: "/v1/outbox/dead/d-9/redrive"})
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != 404 || p.Code != "not_found" || p.Detail != `no dead letter "d-9"` {
		t.Errorf("redrive a missing dead letter = %d %s", w.Code, w.Body)
	}
	b.svc.err = &service.UnavailableError{Err: context.DeadlineExceeded}
	w = b.do(t, req{method: "GET", path: "/v1/outbox/dead"})
	if w.Code != 503 {
		t.Errorf("GET with the database down = %d %s", w.Code, w.Body)
	}
}
