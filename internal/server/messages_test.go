package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/fsmd-io/fsmd/internal/service"
)

func (f *fakeService) ListDeadMessages(_ context.Context, fl service.DeadMessageFilter) (service.Page[service.DeadMessage], error) {
	err := f.record(func() { f.id, f.limit = fl.After, fl.Limit })
	return service.Page[service.DeadMessage]{}, err
}

func (f *fakeService) RedriveDeadMessage(_ context.Context, id string) (service.RedriveResult, error) {
	err := f.record(func() { f.id = id })
	return service.RedriveResult{Redriven: 1}, err
}

// TestDeadMessages: the dead messages' routes reach the service with their query, and refuse what
// the API does not take.
func TestDeadMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	w := b.do(t, req{method: "GET", path: "/v1/messages/dead?limit=5&after=m-0"})
	if w.Code != http.StatusOK || w.Body.String() != "{\"items\":[]}\n" || b.svc.id != "m-0" || b.svc.limit != 5 {
		t.Errorf("GET /v1/messages/dead = %d %s (after %q, limit %d)", w.Code, w.Body, b.svc.id, b.svc.limit)
	}
	w = b.do(t, req{method: "POST", path: "/v1/messages/dead/m-1/redrive"})
	if w.Code != http.StatusOK || w.Body.String() != "{\"redriven\":1}\n" || b.svc.id != "m-1" {
		t.Errorf("POST redrive = %d %s (id %q)", w.Code, w.Body, b.svc.id)
	}
	for _, tt := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/messages/dead?limit=0", 400, "invalid_request"},
		{"GET", "/v1/messages/dead?state=x", 400, "invalid_request"},
		{"GET", "/v1/messages/dead?after=%01", 400, "invalid_request"},
		{"POST", "/v1/messages/dead/m-1/redrive?x=1", 400, "invalid_request"},
		{"GET", "/v1/messages/dead/m-1/redrive", 405, "method_not_allowed"},
	} {
		w := b.do(t, req{method: tt.method, path: tt.path})
		var p Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != tt.status || p.Code != tt.code {
			t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, w.Code, w.Body, tt.status, tt.code)
		}
	}
	b.svc.err = &service.NotFoundError{What: "dead message", Key: "m-9"}
	w = b.do(t, req{method: "POST", path: "/v1/messages/dead/m-9/redrive"})
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != 404 || p.Code != "not_found" || p.Detail != `no dead message "m-9"` {
		t.Errorf("redrive a missing dead message = %d %s", w.Code, w.Body)
	}
}
