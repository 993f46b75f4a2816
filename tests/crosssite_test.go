package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// crossSiteServe serves the API definitions folder over SQLite on a loopback port, with keys or
// without (the database plays no part in these checks), and makes an instance door-1.
func crossSiteServe(t *testing.T, keys *auth.Keys) (*httptest.Server, *echo.Echo) {
	t.Helper()
	set, err := apiDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(dbtest.SQLite(t), service.Options{})
	t.Cleanup(svc.Close)
	if err := svc.Register(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateInstance(context.Background(), service.CreateInstance{Definition: "door", ID: "door-1",
		Context: map[string]any{"code": "1"}}); err != nil {
		t.Fatal(err)
	}
	e := server.New(svc, server.Options{Keys: keys, Definitions: apiDefsDir})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, e
}

// crossSiteDo sends a request with the headers given (name, value pairs; Host sets the request's
// Host) and returns its status and problem code.
func crossSiteDo(t *testing.T, srv *httptest.Server, method, path, body string, header ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var p struct{ Code, Detail string }
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		_ = json.Unmarshal(data, &p)
	}
	return resp.StatusCode, p.Code, p.Detail
}

// TestCrossSiteHost: without keys fsmd listens on loopback, and answers only requests that name a
// loopback host: a page that rebinds its own name to 127.0.0.1 (DNS rebinding) is refused, on every
// route. With keys the Host is not checked: a page has no key.
func TestCrossSiteHost(t *testing.T) {
	t.Parallel()
	srv, _ := crossSiteServe(t, nil)
	for _, host := range []string{"evil.example.com", "evil.example.com:80", "127.0.0.1.evil.example.com", "localhost.evil.example.com",
		"192.168.1.10:8080", "[::2]:8080", "fsmd"} {
		for _, path := range []string{"/v1/definitions", "/v1/instances/door-1", "/healthz", "/ui/", "/swagger/index.html"} {
			st, code, detail := crossSiteDo(t, srv, "GET", path, "", "Host", host)
			if st != http.StatusBadRequest || code != "invalid_request" || !strings.Contains(detail, `"`+host+`"`) {
				t.Errorf("GET %s with Host %s: %d %s %q, want 400 invalid_request naming the Host", path, host, st, code, detail)
			}
		}
	}
	if st, _, _ := crossSiteDo(t, srv, "POST", "/v1/reload", "{}", "Host", "evil.example.com", "Content-Type", "application/json"); st != http.StatusBadRequest {
		t.Errorf("POST /v1/reload with Host evil.example.com: %d, want 400", st)
	}
	for _, host := range []string{"localhost", "localhost:8080", "LocalHost.:8080", "127.0.0.1", "127.0.0.1:9", "127.1.2.3:8080",
		"[::1]", "[::1]:8080", "console.localhost:8080"} {
		if st, _, detail := crossSiteDo(t, srv, "GET", "/v1/instances/door-1", "", "Host", host); st != http.StatusOK {
			t.Errorf("GET with Host %s: %d %s, want 200", host, st, detail)
		}
	}

	keys, parsed := authKeys(t)
	keyed, _ := crossSiteServe(t, parsed)
	if st, _, detail := crossSiteDo(t, keyed, "GET", "/v1/instances/door-1", "", "Host", "fsmd.example.com",
		"Authorization", "Bearer "+keys[auth.Read]); st != http.StatusOK {
		t.Errorf("with keys, Host fsmd.example.com: %d %s, want 200", st, detail)
	}
}

// TestCrossSiteContentType: every route that changes something refuses what a page of another site
// can make a browser send without asking fsmd (a form, text/plain, or a bodyless request without
// Content-Type from another origin) with 415, and takes JSON (a definition: YAML).
func TestCrossSiteContentType(t *testing.T) {
	t.Parallel()
	srv, e := crossSiteServe(t, nil)
	door := string(apiReadFile(t, apiDefsDir+"/door.yaml"))
	// Every route of the server that changes something, with a body it takes.
	writes := map[string]struct{ path, body, ctype string }{
		"POST /v1/instances":                         {"/v1/instances", `{"definition":"door","context":{"code":"1"}}`, "application/json"},
		"POST /v1/instances/:id/events":              {"/v1/instances/door-1/events", `{"event":"knock"}`, "application/json"},
		"POST /v1/instances/:id/explain":             {"/v1/instances/door-1/explain", `{"event":"knock"}`, "application/json"},
		"PUT /v1/definitions/:name":                  {"/v1/definitions/door", door, "application/yaml"},
		"POST /v1/definitions/:name/migrations/plan": {"/v1/definitions/door/migrations/plan", `{}`, "application/json"},
		"POST /v1/definitions/:name/migrations":      {"/v1/definitions/door/migrations", `{}`, "application/json"},
		"POST /v1/reload":                            {"/v1/reload", "", "application/json"},
		"POST /v1/outbox/dead/redrive":               {"/v1/outbox/dead/redrive", "", "application/json"},
		"POST /v1/outbox/dead/:id/redrive":           {"/v1/outbox/dead/nope/redrive", "", "application/json"},
		"POST /v1/messages/dead/:id/redrive":         {"/v1/messages/dead/nope/redrive", "", "application/json"},
		"POST /v1/instances/:id/assign":              {"/v1/instances/nope/assign", `{"to":["ann"]}`, "application/json"},
		"POST /v1/instances/:id/suspend":             {"/v1/instances/nope/suspend", `{"reason":"x"}`, "application/json"},
		"POST /v1/instances/:id/resume":              {"/v1/instances/nope/resume", `{}`, "application/json"},
		"POST /v1/instances/:id/terminate":           {"/v1/instances/nope/terminate", `{"reason":"x"}`, "application/json"},
		"POST /v1/instances/:id/repair":              {"/v1/instances/nope/repair", `{"state":"open","reason":"x"}`, "application/json"},
		"POST /v1/definitions/:name/events":          {"/v1/definitions/door/events", `{"key":{"code":"1"},"event":"knock"}`, "application/json"},
		"POST /v1/definitions/:name/bulk/plan":       {"/v1/definitions/door/bulk/plan", `{"filter":{},"event":"knock"}`, "application/json"},
		"POST /v1/definitions/:name/bulk":            {"/v1/definitions/door/bulk", `{"filter":{"state":"nowhere"},"event":"knock"}`, "application/json"},
		"POST /v1/bulk/:id/cancel":                   {"/v1/bulk/nope/cancel", "", "application/json"},
	}
	for _, r := range e.Routes() {
		switch r.Method {
		case "POST", "PUT", "PATCH", "DELETE":
			if _, ok := writes[r.Method+" "+r.Path]; !ok {
				t.Errorf("%s %s changes something: add it to this test", r.Method, r.Path)
			}
		}
	}
	for route, w := range writes {
		method, _, _ := strings.Cut(route, " ")
		for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
			"multipart/form-data; boundary=x", "Text/Plain"} {
			if st, code, _ := crossSiteDo(t, srv, method, w.path, w.body, "Content-Type", ct); st != http.StatusUnsupportedMediaType || code != "unsupported_media_type" {
				t.Errorf("%s with %s: %d %s, want 415 unsupported_media_type", route, ct, st, code)
			}
		}
		// Without a body or a Content-Type: refused when a browser says a page of another site sent it
		// (unless it carries a Bearer key, a header no page can send without asking); taken from a
		// client that is no browser, or from fsmd's own pages.
		for _, tc := range []struct {
			header []string
			ok     bool
		}{
			{[]string{"Origin", "https://evil.example.com"}, false},
			{[]string{"Origin", "null"}, false},
			{[]string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example.com"}, false},
			{[]string{"Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost:8080"}, false},
			{[]string{"Origin", "https://evil.example.com", "Authorization", "Bearer " + auth.Prefix + strings.Repeat("k", 43)}, true},
			{nil, true},
			{[]string{"Sec-Fetch-Site", "same-origin", "Origin", srv.URL}, true},
			{[]string{"Origin", srv.URL}, true},
		} {
			if w.body != "" {
				break // a route that reads a body needs its Content-Type anyway
			}
			st, code, detail := crossSiteDo(t, srv, method, w.path, "", tc.header...)
			if refused := st == http.StatusUnsupportedMediaType; refused == tc.ok || (refused && code != "unsupported_media_type") {
				t.Errorf("%s without Content-Type, %q: %d %s %s", route, tc.header, st, code, detail)
			}
		}
		if st, code, detail := crossSiteDo(t, srv, method, w.path, w.body, "Content-Type", w.ctype); st == http.StatusUnsupportedMediaType || st >= 500 {
			t.Errorf("%s with %s: %d %s %s", route, w.ctype, st, code, detail)
		}
	}
	// The refused requests changed nothing: door-1 has had the knock of the accepted one only.
	resp, err := srv.Client().Get(srv.URL + "/v1/instances/door-1/history")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Items []struct{ Event string } }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Items) != 1 || page.Items[0].Event != "knock" {
		t.Errorf("door-1's history: %+v %v, want the one knock", page.Items, err)
	}
}
