package server

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/fsmd-io/fsmd/internal/auth"
)

// openapi3Doc fetches /openapi.json from the server and loads it, checked as OpenAPI 3.
func openapi3Doc(t *testing.T, b *bundle) *openapi3.T {
	t.Helper()
	rec := b.do(t, req{method: "GET", path: "/openapi.json"})
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("loading /openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.json is not valid OpenAPI 3: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("/openapi.json is OpenAPI %q", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPI3Routes: /openapi.json is served (without a key) and valid OpenAPI 3, it documents
// every route of the server and no other, and it declares the key exactly where the server asks
// for one (Swagger UI and generated clients send it only there).
func TestOpenAPI3Routes(t *testing.T) {
	t.Parallel()
	_, line, err := auth.New(auth.Read, "reader")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.Parse("keys", strings.NewReader(line+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, Options{Keys: keys})
	doc := openapi3Doc(t, b)
	s := &server{keys: keys}

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
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			continue // reported below
		}
		op := item.GetOperation(r.Method)
		secured := op.Security != nil && len(*op.Security) > 0
		if r.Path == "/metrics" {
			continue // a key or none, as the server is configured: the document cannot say both
		}
		if needsKey := !s.open(r.Path); secured != needsKey {
			t.Errorf("%s %s: the document declares a key: %v; the server asks for one: %v", r.Method, path, secured, needsKey)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if !slices.Equal(routes, documented) {
		t.Errorf("routes\n%s\ndocumented\n%s", strings.Join(routes, "\n"), strings.Join(documented, "\n"))
	}
}

// TestOpenAPI3Answers: every operation of /openapi.json lists the answers that the middleware
// gives on any route (a Host refused, a body too large, a key refused, a write without a JSON type)
// with their headers, errors as application/problem+json only and successes never so.
func TestOpenAPI3Answers(t *testing.T) {
	t.Parallel()
	doc := openapi3Doc(t, setup(t, Options{}))
	for path, item := range doc.Paths.Map() {
		if path == "/metrics" {
			continue // not the API: Prometheus's own format
		}
		for method, op := range item.Operations() {
			name := method + " " + path
			want := []int{400, 413, 500}
			if op.Security != nil && len(*op.Security) > 0 {
				want = append(want, 401, 403, 429)
			}
			if method == http.MethodPost || method == http.MethodPut {
				want = append(want, 415)
			}
			for _, status := range want {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s: %d is not documented", name, status)
				}
			}
			header := func(status int, h string) {
				if r := op.Responses.Status(status); r != nil && r.Value.Headers[h] == nil {
					t.Errorf("%s: %d has no header %s", name, status, h)
				}
			}
			header(401, "WWW-Authenticate")
			header(429, "Retry-After")
			for code, r := range op.Responses.Map() {
				status, _ := strconv.Atoi(code)
				header(status, HeaderRequestID)
				types := slices.Sorted(func(yield func(string) bool) {
					for ct := range r.Value.Content {
						if !yield(ct) {
							return
						}
					}
				})
				switch {
				case status >= 400 && !slices.Equal(types, []string{"application/problem+json"}):
					t.Errorf("%s: %d is %v, want application/problem+json", name, status, types)
				case status < 400 && (len(types) == 0 || slices.Contains(types, "application/problem+json")):
					t.Errorf("%s: %d is %v", name, status, types)
				}
			}
		}
	}
}

// TestOpenAPI3Schemas: the schemas say what the server sends: required fields, times as
// date-time, a running migration's finished_at as null, the bounds of ids and pages, a YAML body
// as the file it is.
func TestOpenAPI3Schemas(t *testing.T) {
	t.Parallel()
	doc := openapi3Doc(t, setup(t, Options{}))
	schema := func(name string) *openapi3.Schema {
		s := doc.Components.Schemas[name]
		if s == nil || s.Value == nil {
			t.Fatalf("no schema %s", name)
		}
		return s.Value
	}
	for name, fields := range map[string][]string{
		"service.Instance":        {"id", "definition", "version", "state", "context", "final", "revision", "created_at", "updated_at", "entered_at", "events"},
		"service.HistoryEntry":    {"seq", "event", "from", "to", "payload", "context_before", "context_after", "source", "request_id", "idempotency_key", "definition_version", "actor_kind", "at"},
		"service.CreateInstance":  {"definition"},
		"service.SendEvent":       {"event"},
		"service.MigrationStatus": {"id", "definition", "to_version", "status", "migrated", "stranded", "total", "started_at", "finished_at"},
		"server.Problem":          {"type", "title", "status", "detail", "code"},
	} {
		if got := slices.Sorted(slices.Values(schema(name).Required)); !slices.Equal(got, slices.Sorted(slices.Values(fields))) {
			t.Errorf("%s: required %v, want %v", name, got, fields)
		}
	}
	for name, fields := range map[string][]string{
		"service.Instance":        {"created_at", "updated_at", "entered_at"},
		"service.PendingTimer":    {"due_at", "next_try_at"},
		"service.HistoryEntry":    {"at"},
		"service.MigrationStatus": {"started_at", "finished_at"},
		"service.Stats":           {"since", "until"},
	} {
		for _, f := range fields {
			if p := schema(name).Properties[f]; p == nil || p.Value.Format != "date-time" {
				t.Errorf("%s.%s is not a date-time", name, f)
			}
		}
	}
	if f := schema("service.MigrationStatus").Properties["finished_at"]; f == nil || !f.Value.Nullable {
		t.Error("service.MigrationStatus.finished_at is not nullable")
	}
	for name, field := range map[string]string{"service.CreateInstance": "definition", "service.SendEvent": "event"} {
		if p := schema(name).Properties[field]; p == nil || p.Value.MaxLength == nil || *p.Value.MaxLength != maxIDLen {
			t.Errorf("%s.%s has no maxLength %d", name, field, maxIDLen)
		}
	}
	for _, c := range []struct{ path, method, param string }{
		{"/v1/instances/{id}", "GET", "id"},
		{"/v1/definitions/{name}", "PUT", "name"},
		{"/v1/instances/{id}/events", "POST", "Idempotency-Key"},
	} {
		p := doc.Paths.Find(c.path).GetOperation(c.method).Parameters.GetByInAndName(map[string]string{"id": "path", "name": "path"}[c.param]+
			map[bool]string{true: "header"}[c.param == "Idempotency-Key"], c.param)
		if p == nil || p.Schema.Value.MaxLength == nil || *p.Schema.Value.MaxLength != maxIDLen {
			t.Errorf("%s %s: %s has no maxLength %d", c.method, c.path, c.param, maxIDLen)
		}
	}
	limit := doc.Paths.Find("/v1/definitions/{name}/migrations").Get.Parameters.GetByInAndName("query", "limit")
	if limit == nil || limit.Schema.Value.Min == nil || *limit.Schema.Value.Min != 1 || limit.Schema.Value.Max == nil || *limit.Schema.Value.Max != maxLimit {
		t.Errorf("GET /v1/definitions/{name}/migrations: limit is not bounded 1 to %d", maxLimit)
	}
	body := doc.Paths.Find("/v1/definitions/{name}").Put.RequestBody.Value.Content
	for _, ct := range yamlTypes {
		mt := body.Get(ct)
		if mt == nil {
			t.Errorf("PUT /v1/definitions/{name}: %s is not accepted", ct)
			continue
		}
		if want := map[bool]string{true: "binary", false: ""}[ct != "text/plain"]; !mt.Schema.Value.Type.Is("string") || mt.Schema.Value.Format != want {
			t.Errorf("PUT /v1/definitions/{name}: %s is %v %q, want a string %q", ct, mt.Schema.Value.Type, mt.Schema.Value.Format, want)
		}
	}
}

// TestSwaggerUIReadsOpenAPI3: Swagger UI's page loads /openapi.json.
func TestSwaggerUIReadsOpenAPI3(t *testing.T) {
	t.Parallel()
	rec := setup(t, Options{}).do(t, req{method: "GET", path: "/swagger/index.html"})
	// html/template writes the URL as a JavaScript string, its slash escaped.
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `url: "\/openapi.json"`) {
		t.Errorf("index.html: %d, does not load /openapi.json", rec.Code)
	}
}
