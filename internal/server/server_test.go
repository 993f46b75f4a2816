package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})

	p := problem(t, b.do(t, req{method: "GET", path: "/v1/nope"}), 404, "not_found")
	if !strings.Contains(p.Detail, "/v1/nope") {
		t.Errorf("detail %q does not name the path", p.Detail)
	}
	problem(t, b.do(t, req{method: "GET", path: "/v1/instances/"}), 404, "not_found") // an empty id names no instance
	rec := b.do(t, req{method: "DELETE", path: "/v1/instances/i-1"})
	problem(t, rec, 405, "method_not_allowed")
	if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow %q, want GET in it", allow)
	}
	// Not served yet: reload.
	problem(t, b.do(t, req{method: "POST", path: "/v1/reload", body: "{}"}), 404, "not_found")
	problem(t, b.do(t, req{method: "POST", path: "/v1/migrations/m-1", body: "{}"}), 405, "method_not_allowed")
	// HEAD of an error: the status and headers, no body.
	rec = b.do(t, req{method: "HEAD", path: "/v1/nope"})
	if rec.Code != 404 || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("HEAD: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Version: "v1.2.3"})
	rec := b.do(t, req{method: "GET", path: "/healthz"})
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok","version":"v1.2.3"}` {
		t.Errorf("healthz: %d %s", rec.Code, rec.Body)
	}
	rec = b.do(t, req{method: "GET", path: "/readyz"})
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}
	b.svc.err = &codedError{"unavailable", "dial tcp 10.0.0.1:5432: connection refused"}
	p := problem(t, b.do(t, req{method: "GET", path: "/readyz"}), 503, "unavailable")
	if strings.Contains(p.Detail, "10.0.0.1") {
		t.Errorf("detail %q shows the database's address", p.Detail)
	}
	if !strings.Contains(b.log.String(), "connection refused") {
		t.Errorf("the log lacks the cause: %s", b.log)
	}
}

func TestSwagger(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})

	for _, path := range []string{"/swagger/doc.json", "/swagger/doc.json?x=1"} {
		rec := b.do(t, req{method: "GET", path: path})
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		// A "{{" in a comment makes docs.go's template fail, and swag then serves the template raw.
		if strings.Contains(rec.Body.String(), "{{") {
			t.Fatalf("%s holds an unexpanded template", path)
		}
		var doc struct {
			Swagger  string
			Host     *string
			BasePath string
			Schemes  []string
			Info     struct{ Title string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// No host and no schemes: "Try it out" goes to the server that served the page.
		if doc.Info.Title != "fsmd API" || doc.BasePath != "/" || (doc.Host != nil && *doc.Host != "") || len(doc.Schemes) != 0 {
			t.Errorf("%s: %+v", path, doc)
		}
	}
	rec := b.do(t, req{method: "GET", path: "/swagger/index.html"})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "swagger-ui") {
		t.Errorf("index.html: %d", rec.Code)
	}
	for _, path := range []string{"/swagger", "/swagger/"} {
		rec := b.do(t, req{method: "GET", path: path})
		if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/swagger/index.html" {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header().Get("Location"))
		}
	}
	problem(t, b.do(t, req{method: "GET", path: "/swagger/nope.js"}), 404, "not_found")
	problem(t, b.do(t, req{method: "GET", path: "/swagger/."}), 404, "not_found")
	problem(t, b.do(t, req{method: "GET", path: "/swagger/doc.yaml"}), 404, "not_found")
}

// TestDocumentedRoutes keeps the routes and the OpenAPI document in step: every route is documented
// with its failures as problems, and nothing else is.
func TestDocumentedRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	rec := b.do(t, req{method: "GET", path: "/swagger/doc.json"})
	var doc struct {
		Paths map[string]map[string]struct {
			Summary   string
			Tags      []string
			Responses map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				}
			}
		}
		Definitions map[string]struct {
			Properties map[string]struct{ Enum []string }
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var routes, documented []string
	for _, r := range b.e.Routes() {
		if strings.HasPrefix(r.Path, "/swagger") || strings.HasPrefix(r.Path, "/ui") { // pages, not the API
			continue
		}
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		routes = append(routes, r.Method+" "+path)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s %s: no summary or tags", method, path)
			}
			for status, resp := range op.Responses {
				if status >= "400" && resp.Schema.Ref != "#/definitions/server.Problem" {
					t.Errorf("%s %s: %s is not a problem", method, path, status)
				}
			}
			if _, ok := op.Responses["500"]; !ok && path != "/healthz" && path != "/readyz" {
				t.Errorf("%s %s: 500 is not documented", method, path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if !slices.Equal(routes, documented) {
		t.Errorf("routes\n%s\ndocumented\n%s", strings.Join(routes, "\n"), strings.Join(documented, "\n"))
	}
	// The codes the document lists are those of the table.
	enum := doc.Definitions["server.Problem"].Properties["code"].Enum
	var codes []string
	for code := range problemKinds {
		codes = append(codes, code)
	}
	slices.Sort(enum)
	slices.Sort(codes)
	if !slices.Equal(enum, codes) {
		t.Errorf("documented codes %v, table %v", enum, codes)
	}
}

// TestOverHTTP runs the server on a real listener: what Swagger UI loads, and a request as its
// "Try it out" sends it (same origin, JSON body), and an oversized body streamed without a length.
func TestOverHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	srv := httptest.NewServer(b.e)
	t.Cleanup(srv.Close)

	for _, path := range []string{"/swagger/index.html", "/swagger/swagger-ui-bundle.js", "/swagger/doc.json"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
	r, _ := http.NewRequest("POST", srv.URL+"/v1/instances/i-1/events", strings.NewReader(`{"event":"pay","payload":{"amount":10}}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get(HeaderRequestID) == "" {
		t.Errorf("event: %d %v", res.StatusCode, res.Header)
	}

	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		_, _ = pw.Write([]byte(`{"event":"pay"`))
		for range 32 { // 2 MiB of white space, then the end of the object
			if _, err := pw.Write(chunk); err != nil {
				return // the server stopped reading: what the limit is for
			}
		}
		_, _ = pw.Write([]byte(`}`))
		pw.Close()
	}()
	r, _ = http.NewRequest("POST", srv.URL+"/v1/instances/i-1/events", pr)
	r.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(r)
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 413 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("streamed oversized body: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
