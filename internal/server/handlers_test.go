package server

import (
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/service"
)

func TestCreateInstance(t *testing.T) {
	t.Parallel()
	t.Run("created", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.svc.created = true
		b.svc.inst.ID = "order/7 é"
		rec := b.do(t, req{method: "POST", path: "/v1/instances", body: `{"definition":"order","id":"order/7 é","context":{"amount":10}}`})
		if rec.Code != 201 || rec.Header().Get("Location") != "/v1/instances/order%2F7%20%C3%A9" {
			t.Errorf("%d Location %q", rec.Code, rec.Header().Get("Location"))
		}
		if c := b.svc.create; c.Definition != "order" || c.ID != "order/7 é" || c.Context["amount"] == nil {
			t.Errorf("request %+v", c)
		}
	})
	t.Run("identical request for an existing id", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		rec := b.do(t, req{method: "POST", path: "/v1/instances", body: `{"definition":"order","id":"i-1"}`})
		if rec.Code != 200 || rec.Header().Get("Location") != "" || !strings.Contains(rec.Body.String(), `"id":"i-1"`) {
			t.Errorf("%d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	})
	for _, body := range []string{`{}`, `{"definition":""}`, `{"definition":"order","id":"a` + "\\u0001" + `"}`, `{"definition":"order","id":"` + strings.Repeat("x", 201) + `"}`} {
		t.Run("refused "+body[:min(len(body), 30)], func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			problem(t, b.do(t, req{method: "POST", path: "/v1/instances", body: body}), 400, "invalid_request")
		})
	}
}

func TestGetInstanceETag(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	rec := b.do(t, req{method: "GET", path: "/v1/instances/i-1"})
	if rec.Code != 200 || rec.Header().Get("ETag") != `"3"` || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("%d ETag %q Content-Type %q", rec.Code, rec.Header().Get("ETag"), rec.Header().Get("Content-Type"))
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	rec := b.do(t, req{method: "POST", path: "/v1/instances/i-1/explain", body: `{"event":"pay","payload":{"amount":5}}`})
	if rec.Code != 200 || b.svc.id != "i-1" || b.svc.event.Event != "pay" || b.svc.event.Payload["amount"] == nil {
		t.Errorf("%d %+v", rec.Code, b.svc.event)
	}
	problem(t, b.do(t, req{method: "POST", path: "/v1/instances/i-1/explain", body: `{"event":"pay","x":1}`}), 400, "invalid_request")
}

func TestDefinitions(t *testing.T) {
	t.Parallel()
	t.Run("lists are items, never null", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		for _, path := range []string{"/v1/definitions", "/v1/definitions/order/versions", "/v1/instances/i-1/history"} {
			rec := b.do(t, req{method: "GET", path: path})
			if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"items":[]}` {
				t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
			}
		}
		b.svc.defs = []service.DefinitionSummary{{Name: "order", Version: 2, Running: 3}}
		rec := b.do(t, req{method: "GET", path: "/v1/definitions"})
		if !strings.Contains(rec.Body.String(), `{"items":[{"name":"order","version":2,"description":"","running":3}]}`) {
			t.Errorf("%s", rec.Body)
		}
	})
	t.Run("diagram", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		rec := b.do(t, req{method: "GET", path: "/v1/definitions/order/diagram?version=2"})
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") ||
			!strings.HasPrefix(rec.Body.String(), "stateDiagram-v2") || b.svc.version != 2 {
			t.Errorf("%d %q %q version %d", rec.Code, rec.Header().Get("Content-Type"), rec.Body, b.svc.version)
		}
		b.do(t, req{method: "GET", path: "/v1/definitions/order/diagram"})
		if b.svc.version != 0 {
			t.Errorf("no version: the service got %d, want 0 (the latest)", b.svc.version)
		}
	})
	t.Run("put", func(t *testing.T) {
		t.Parallel()
		for _, ct := range []string{"application/yaml", "application/x-yaml", "text/yaml", "text/yaml; charset=utf-8"} {
			b := setup(t, Options{})
			b.svc.put = service.PutResult{Definition: service.DefinitionVersion{Name: "order", Version: 2}, Created: true}
			rec := b.do(t, req{method: "PUT", path: "/v1/definitions/order", body: "name: order\n", header: map[string]string{"Content-Type": ct}})
			if rec.Code != 201 || rec.Header().Get("Location") != "/v1/definitions/order/versions/2" || string(b.svc.yaml) != "name: order\n" {
				t.Errorf("%s: %d %q %q", ct, rec.Code, rec.Header().Get("Location"), b.svc.yaml)
			}
		}
		b := setup(t, Options{})
		rec := b.do(t, req{method: "PUT", path: "/v1/definitions/order", body: "name: order\n", header: map[string]string{"Content-Type": "text/yaml"}})
		if rec.Code != 200 || rec.Header().Get("Location") != "" {
			t.Errorf("known content: %d %q", rec.Code, rec.Header().Get("Location"))
		}
		problem(t, b.do(t, req{method: "PUT", path: "/v1/definitions/order", body: `{"name":"order"}`}), 415, "unsupported_media_type")
		for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"} { // a web page may send these anywhere
			problem(t, b.do(t, req{method: "PUT", path: "/v1/definitions/order", body: "name: order\n", header: map[string]string{"Content-Type": ct}}), 415, "unsupported_media_type")
		}
		problem(t, b.do(t, req{method: "PUT", path: "/v1/definitions/order", body: " \n", header: map[string]string{"Content-Type": "text/yaml"}}), 400, "invalid_request")
	})
}
