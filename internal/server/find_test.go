package server

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/service"
)

// TestFindQuery: the ctx. parameters of GET /v1/instances reach the service as the query gave
// them, in the order of their names, beside the other filters; a malformed one is 400 naming it.
func TestFindQuery(t *testing.T) {
	t.Parallel()
	cases := []struct {
		query string
		want  []service.CtxCondition
	}{
		{"definition=order&ctx.customer.tier=gold", []service.CtxCondition{{Param: "ctx.customer.tier", Path: "customer.tier", Value: "gold"}}},
		{"definition=order&ctx.amount%5Blt%5D=10&ctx.amount[gte]=1&state=paid", []service.CtxCondition{
			{Param: "ctx.amount[gte]", Path: "amount", Op: "gte", Value: "1"},
			{Param: "ctx.amount[lt]", Path: "amount", Op: "lt", Value: "10"}}},
		{"definition=order&ctx.paid_at=2026-01-01T10:00:00%2B02:00", []service.CtxCondition{
			{Param: "ctx.paid_at", Path: "paid_at", Value: "2026-01-01T10:00:00+02:00"}}},
		{"definition=order&ctx.amount=", nil}, // an empty value is none
	}
	for _, c := range cases {
		b := setup(t, Options{})
		rec := b.do(t, req{method: "GET", path: "/v1/instances?" + c.query})
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.query, rec.Code, rec.Body)
		}
		if got := b.svc.filter.Ctx; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.query, got, c.want)
		}
		if b.svc.filter.Definition != "order" {
			t.Errorf("%s: definition %q", c.query, b.svc.filter.Definition)
		}
	}
	for _, c := range []struct{ query, names string }{
		{"ctx.amount=1&ctx.amount=2", "ctx.amount is given 2 times"},
		{"ctx.amount[gt=1", "ctx.amount[gt"},
		{"ctx.=1", "ctx."},
		{"ctx.a[lt]x=1", "ctx.a[lt]x"},
		{"sort=amount", "ctx.<path>[op]"}, // an unknown parameter: the list names the ctx. ones
	} {
		b := setup(t, Options{})
		rec := b.do(t, req{method: "GET", path: "/v1/instances?" + c.query})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.names) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.query, rec.Code, rec.Body, c.names)
		}
	}
}

// TestSendEventByKey: an event by key reads the headers and body of an event by id, finds the
// instance by the key through the service, and answers as an event by id (Idempotent-Replayed).
func TestSendEventByKey(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.svc.replayed = true
	rec := b.do(t, req{method: "POST", path: "/v1/definitions/order/events", body: `{"key": {"order_number": "A-17"}, "event": "pay", "payload": {"amount": 1}}`,
		header: map[string]string{"Idempotency-Key": "k1", "If-Match": `"3"`}})
	if rec.Code != http.StatusOK || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, rec.Header())
	}
	ev := b.svc.event
	if ev.InstanceID != "i-1" || ev.Event != "pay" || ev.IdempotencyKey != "k1" || ev.IfMatch == nil || *ev.IfMatch != 3 || ev.Payload["amount"] == nil {
		t.Errorf("the event sent: %+v", ev)
	}
	for _, c := range []struct{ body, names string }{
		{`{"event": "pay"}`, "field key is required"},
		{`{"key": {"order_number": "A"}}`, "event"},
		{`{"key": {"order_number": "A"}, "event": "pay", "id": "x"}`, "id"},
		{`{"key": "A-17", "event": "pay"}`, "key"},
	} {
		rec := b.do(t, req{method: "POST", path: "/v1/definitions/order/events", body: c.body})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.names) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, rec.Code, rec.Body, c.names)
		}
	}
}
