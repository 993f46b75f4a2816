package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPathIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path string
		want       string // the id the service gets; "" for a 400
	}{
		{"plain", "/v1/instances/i-1", "i-1"},
		{"200 characters", "/v1/instances/" + strings.Repeat("é", 200), strings.Repeat("é", 200)},
		{"201 characters", "/v1/instances/" + strings.Repeat("a", 201), ""},
		{"control character", "/v1/instances/a%01b", ""},
		{"escaped tab", "/v1/instances/a%09b", ""},
		{"DEL", "/v1/instances/a%7Fb", ""},
		{"not UTF-8", "/v1/instances/a%FFb", ""},
		{"escaped slash", "/v1/instances/a%2Fb", "a/b"},
		{"escaped percent", "/v1/instances/a%25b", "a%b"},
		{"escaped percent and slash", "/v1/instances/a%25%2Fb", "a%/b"},
		{"space", "/v1/instances/a%20b", "a b"},
		{"SQL", "/v1/instances/1';%20DROP%20TABLE%20x;--", "1'; DROP TABLE x;--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			rec := b.do(t, req{method: "GET", path: tt.path})
			if tt.want == "" {
				p := problem(t, rec, 400, "invalid_request")
				if !strings.Contains(p.Detail, "path parameter id") {
					t.Errorf("detail %q does not name the parameter", p.Detail)
				}
				return
			}
			if rec.Code != 200 || b.svc.id != tt.want {
				t.Errorf("%d, id %q, want %q", rec.Code, b.svc.id, tt.want)
			}
		})
	}
	t.Run("definition name", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		p := problem(t, b.do(t, req{method: "GET", path: "/v1/definitions/" + strings.Repeat("n", 201)}), 400, "invalid_request")
		if !strings.Contains(p.Detail, "path parameter name") {
			t.Errorf("detail %q", p.Detail)
		}
	})
	t.Run("version", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		for _, v := range []string{"0", "-1", "x", "1.5", "99999999999999999999"} {
			p := problem(t, b.do(t, req{method: "GET", path: "/v1/definitions/order/versions/" + v}), 400, "invalid_request")
			if !strings.Contains(p.Detail, "version") {
				t.Errorf("%s: detail %q", v, p.Detail)
			}
		}
		if rec := b.do(t, req{method: "GET", path: "/v1/definitions/order/versions/2"}); rec.Code != 200 || b.svc.version != 2 {
			t.Errorf("%d, version %d", rec.Code, b.svc.version)
		}
	})
}

func TestQuery(t *testing.T) {
	t.Parallel()
	bad := []struct{ path, param string }{
		{"/v1/instances?limit=0", "limit"},
		{"/v1/instances?limit=1001", "limit"},
		{"/v1/instances?limit=ten", "limit"},
		{"/v1/instances?limit=1&limit=2", "limit"},
		{"/v1/instances?version=0", "version"},
		{"/v1/instances?version=v1", "version"},
		{"/v1/instances?definiton=order", "definiton"},
		{"/v1/instances?state=%01", "state"},
		{"/v1/instances?after=" + strings.Repeat("a", 201), "after"},
		{"/v1/instances?limit=%zz", "query string"},
		{"/v1/instances/i-1/history?after=-1", "after"},
		{"/v1/instances/i-1/history?after=x", "after"},
		{"/v1/instances/i-1/history?state=x", "state"},
		{"/v1/definitions/order/diagram?version=latest", "version"},
		{"/v1/instances/i-1?x=1", "x"},
	}
	for _, tt := range bad {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			p := problem(t, b.do(t, req{method: "GET", path: tt.path}), 400, "invalid_request")
			if !strings.Contains(p.Detail, tt.param) {
				t.Errorf("detail %q does not name %s", p.Detail, tt.param)
			}
		})
	}
	t.Run("values reach the service", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		rec := b.do(t, req{method: "GET", path: "/v1/instances?definition=order&state=paid&version=2&limit=1000&after=i-9"})
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"items":[]}` {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		f := b.svc.filter
		if f.Definition != "order" || f.State != "paid" || f.Version != 2 || f.Limit != 1000 || f.After != "i-9" {
			t.Errorf("filter %+v", f)
		}
		b.do(t, req{method: "GET", path: "/v1/instances?limit="})
		if f := b.svc.filter; f.Limit != 100 || f.Version != 0 || f.After != "" {
			t.Errorf("defaults %+v", f)
		}
		rec = b.do(t, req{method: "GET", path: "/v1/instances/i-1/history?after=7&limit=5"})
		if rec.Code != 200 || b.svc.after != 7 || b.svc.limit != 5 || b.svc.id != "i-1" {
			t.Errorf("history: %d after %d limit %d", rec.Code, b.svc.after, b.svc.limit)
		}
		b.do(t, req{method: "GET", path: "/v1/instances/i-1/history"})
		if b.svc.after != 0 || b.svc.limit != 100 {
			t.Errorf("history defaults: after %d limit %d", b.svc.after, b.svc.limit)
		}
	})
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	ifMatch := []struct {
		header string
		want   int64 // -1: none; -2: refused
	}{
		{"3", 3}, {`"3"`, 3}, {`W/"3"`, 3}, {` "0" `, 0}, {"*", -1},
		{"", -2}, {"three", -2}, {`"3", "4"`, -2}, {"W/3", -2}, {`"-1"`, -2}, {"+3", -2}, {`""`, -2}, {`W/""`, -2},
	}
	for _, tt := range ifMatch {
		t.Run("If-Match "+tt.header, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			r := httptest.NewRequest("POST", "/v1/instances/i-1/events", strings.NewReader(`{"event":"pay"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header["If-Match"] = []string{tt.header}
			rec := httptest.NewRecorder()
			b.e.ServeHTTP(rec, r)
			switch tt.want {
			case -2:
				p := problem(t, rec, 400, "invalid_request")
				if !strings.Contains(p.Detail, "If-Match") {
					t.Errorf("detail %q", p.Detail)
				}
			case -1:
				if rec.Code != 200 || b.svc.event.IfMatch != nil {
					t.Errorf("%d %v", rec.Code, b.svc.event.IfMatch)
				}
			default:
				if rec.Code != 200 || b.svc.event.IfMatch == nil || *b.svc.event.IfMatch != tt.want {
					t.Errorf("%d %v", rec.Code, b.svc.event.IfMatch)
				}
			}
		})
	}
	t.Run("If-Match twice", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		r := httptest.NewRequest("POST", "/v1/instances/i-1/events", strings.NewReader(`{"event":"pay"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Add("If-Match", "3")
		r.Header.Add("If-Match", "4")
		rec := httptest.NewRecorder()
		b.e.ServeHTTP(rec, r)
		problem(t, rec, 400, "invalid_request")
	})
	keys := []struct {
		key string
		ok  bool
	}{
		{"k-1", true}, {strings.Repeat("k", 200), true}, {"a key with spaces", true},
		{strings.Repeat("k", 201), false}, {"k\x01", false}, {"clé", false}, {" k", false},
	}
	for _, tt := range keys {
		t.Run("Idempotency-Key "+tt.key[:min(len(tt.key), 20)], func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			r := httptest.NewRequest("POST", "/v1/instances/i-1/events", strings.NewReader(`{"event":"pay"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header["Idempotency-Key"] = []string{tt.key}
			rec := httptest.NewRecorder()
			b.e.ServeHTTP(rec, r)
			if !tt.ok {
				p := problem(t, rec, 400, "invalid_request")
				if !strings.Contains(p.Detail, "Idempotency-Key") {
					t.Errorf("detail %q", p.Detail)
				}
				return
			}
			if rec.Code != 200 || b.svc.event.IdempotencyKey != tt.key {
				t.Errorf("%d key %q", rec.Code, b.svc.event.IdempotencyKey)
			}
			if rec.Header().Get("Idempotent-Replayed") != "" {
				t.Errorf("a first answer says it is replayed")
			}
		})
	}
	t.Run("replayed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.svc.replayed = true
		rec := b.do(t, req{method: "POST", path: "/v1/instances/i-1/events", body: `{"event":"pay"}`, header: map[string]string{"Idempotency-Key": "k"}})
		if rec.Code != http.StatusOK || rec.Header().Get("Idempotent-Replayed") != "true" {
			t.Errorf("%d %q", rec.Code, rec.Header().Get("Idempotent-Replayed"))
		}
	})
}
