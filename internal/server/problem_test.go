package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/service"
	"github.com/fsmd-io/fsmd/internal/source"
)

// codedError stands for an error of another package (persistence's "unavailable", say).
type codedError struct{ code, msg string }

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Code() string  { return e.code }

func TestProblemMapping(t *testing.T) {
	t.Parallel()
	inst := service.Instance{ID: "i-1", Definition: "order", State: "created", Revision: 4}
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		detail string // a part of the detail; "" for any
	}{
		{"not found", &service.NotFoundError{What: "instance", Key: "i-1"}, 404, "not_found", `no instance "i-1"`},
		{"invalid transition", &machine.InvalidTransitionError{State: "paid", Event: "pay"}, 409, "invalid_transition", "does not handle"},
		{"guard rejected", &machine.GuardRejectedError{State: "created", Event: "pay"}, 409, "guard_rejected", "no guard holds"},
		{"instance final", &machine.InstanceFinalError{State: "shipped", Event: "pay"}, 409, "instance_final", "final state"},
		{"instance exists", &service.InstanceExistsError{Instance: inst}, 409, "instance_exists", "exists already"},
		{"version conflict", &service.VersionConflictError{IfMatch: 3, Instance: inst}, 412, "version_conflict", "revision 3"},
		{"unknown event", &machine.UnknownEventError{Event: "nope"}, 422, "unknown_event", "nope"},
		{"invalid payload", &machine.InvalidPayloadError{Event: "pay", Err: errors.New("amount: expected float")}, 422, "invalid_payload", "amount"},
		{"invalid context", &machine.InvalidContextError{Err: errors.New("x: unknown field")}, 422, "invalid_context", "unknown field"},
		{"invalid definition", &machine.InvalidDefinitionError{}, 422, "invalid_definition", ""},
		{"idempotency mismatch", &service.IdempotencyMismatchError{Key: "k"}, 422, "idempotency_mismatch", "k"},
		{"expression failed", &machine.ExpressionError{Where: "set x", Err: errors.New("index out of range")}, 422, "expression_failed", "index out of range"},
		{"wrapped", fmt.Errorf("firing: %w", &machine.UnknownEventError{Event: "x"}), 422, "unknown_event", ""},
		{"database down", fmt.Errorf("get: %w", &codedError{"unavailable", "dial tcp 10.0.0.1:5432: refused"}), 503, "unavailable", "retry"},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), 503, "unavailable", "timed out"},
		{"network timeout", &net.OpError{Op: "read", Err: timeoutError{}}, 503, "unavailable", "timed out"},
		{"outcome unknown", &service.OutcomeUnknownError{InstanceID: "i-1", Err: errors.New("dial tcp 10.0.0.1:5432: refused")}, 503,
			"outcome_unknown", "may or may not have"},
		{"unknown error", errors.New("pq: secret detail"), 500, "internal_error", "internal error"},
		{"unknown code", &codedError{"brand_new", "secret detail"}, 500, "internal_error", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			b.svc.err = tt.err
			rec := b.do(t, req{method: "GET", path: "/v1/instances/i-1"})
			p := problem(t, rec, tt.status, tt.code)
			if got := rec.Header().Get("Retry-After"); (tt.status == 503) != (got == "1") {
				t.Errorf("Retry-After %q with %d", got, tt.status)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, tt.detail)
			}
			if strings.Contains(p.Detail, "secret") || strings.Contains(p.Detail, "10.0.0.1") {
				t.Errorf("detail %q shows the cause of a server error", p.Detail)
			}
			if tt.status >= 500 && !strings.Contains(b.log.String(), tt.err.Error()) {
				t.Errorf("the log lacks the cause %q: %s", tt.err, b.log)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }

func TestProblemData(t *testing.T) {
	t.Parallel()
	inst := service.Instance{ID: "i-1", Definition: "order", State: "created", Revision: 4}
	blockers := []machine.Blocker{
		{To: "paid", Guard: "event.amount >= ctx.amount", Message: "payment must cover the order amount"},
		{To: "partial", Guard: "event.amount > 0"},
	}
	diags := source.Diagnostics{{File: "order.yaml", Line: 3, Col: 5, Severity: source.SevError, Message: "unknown state"}}

	t.Run("guard rejected carries blockers and the instance", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.svc.err = &service.EventError{Err: &machine.GuardRejectedError{State: "created", Event: "pay", Blockers: blockers}, Instance: inst}
		p := problem(t, b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: `{"event":"pay"}`}), 409, "guard_rejected")
		if fmt.Sprint(p.Blockers) != fmt.Sprint(blockers) {
			t.Errorf("blockers %+v", p.Blockers)
		}
		if p.Instance == nil || p.Instance.ID != "i-1" || p.Instance.Revision != 4 {
			t.Errorf("instance %+v", p.Instance)
		}
	})
	t.Run("version conflict carries the instance", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.svc.err = &service.VersionConflictError{IfMatch: 3, Instance: inst}
		p := problem(t, b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: `{"event":"pay"}`, header: map[string]string{"If-Match": `"3"`}}), 412, "version_conflict")
		if p.Instance == nil || p.Instance.Revision != 4 {
			t.Errorf("instance %+v", p.Instance)
		}
	})
	t.Run("an existing id carries the existing instance", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.svc.err = &service.InstanceExistsError{Instance: inst}
		p := problem(t, b.do(t, req{method: "POST", path: "/v1/instances", body: `{"definition":"order","id":"i-1"}`}), 409, "instance_exists")
		if p.Instance == nil || p.Instance.ID != "i-1" {
			t.Errorf("instance %+v", p.Instance)
		}
	})
	t.Run("an event error before the instance is read carries none", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.svc.err = &service.EventError{Err: &machine.UnknownEventError{Event: "x"}}
		p := problem(t, b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: `{"event":"x"}`}), 422, "unknown_event")
		if p.Instance != nil || p.Blockers != nil {
			t.Errorf("problem %+v", p)
		}
	})
	t.Run("invalid definition carries every diagnostic", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.svc.err = &machine.InvalidDefinitionError{Diagnostics: diags}
		rec := b.do(t, req{method: "PUT", path: "/v1/definitions/order", body: "name: order", header: map[string]string{"Content-Type": "application/yaml"}})
		if !strings.Contains(rec.Body.String(), `"errors":[{"file":"order.yaml","line":3,"column":5,"severity":"error","message":"unknown state"}]`) {
			t.Errorf("body %s", rec.Body)
		}
		problem(t, rec, 422, "invalid_definition")
	})
}

func TestProblemTable(t *testing.T) {
	t.Parallel()
	// api.md's table, and fsmd's own codes.
	want := map[string]int{
		"not_found": 404, "invalid_transition": 409, "guard_rejected": 409, "instance_final": 409,
		"instance_exists": 409, "version_conflict": 412, "unknown_event": 422, "invalid_payload": 422,
		"invalid_context": 422, "invalid_definition": 422, "idempotency_mismatch": 422,
		"expression_failed": 422, "migration_running": 409, "invalid_request": 400, "body_too_large": 413,
		"unsupported_media_type": 415, "method_not_allowed": 405, "unavailable": 503, "outcome_unknown": 503, "internal_error": 500,
		"unauthorized": 401, "forbidden": 403, "too_many_requests": 429, "transition_forbidden": 403,
		"key_exists": 409, "instance_suspended": 409, "bulk_running": 409, "unknown_state": 422,
	}
	if len(problemKinds) != len(want) {
		t.Errorf("the table has %d codes, want %d", len(problemKinds), len(want))
	}
	for code, status := range want {
		if k := problemKinds[code]; k.status != status || k.title == "" {
			t.Errorf("%s: %+v, want status %d", code, k, status)
		}
	}
}

func TestPanic(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.e.GET("/panic", func(c echo.Context) error { panic("boom") })
	p := problem(t, b.do(t, req{method: "GET", path: "/panic"}), 500, "internal_error")
	if p.Detail != "internal error" || !strings.Contains(b.log.String(), "boom") {
		t.Errorf("detail %q, log %s", p.Detail, b.log)
	}
}
