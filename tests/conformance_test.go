package tests

// The conformance harness: every request the end-to-end tests send to the API and every answer
// they get is checked against the OpenAPI document the server serves (GET /openapi.json) with
// kin-openapi's openapi3filter, and a mismatch fails the test that caused it. The API tests'
// client (apiEnv) goes through it, and so does http.DefaultTransport (TestMain), which the other
// tests' clients use: what no test can be blamed for fails the run at the end.
//
// What is checked, for /healthz, /readyz, /openapi.json and /v1 (the console, /metrics and Swagger
// UI are not the API):
//   - every answer: its status is documented for the operation, its body matches the schema of
//     its content type, with no field the schema does not name; each header it carries (but
//     HTTP's own, such as Content-Length) is documented for that status; a 401 comes from an
//     operation that declares the key;
//   - the request, when the answer is a success: its parameters, headers and body. Requests that a
//     test makes malformed on purpose are refused (4xx), and a refusal says nothing of the request
//     the document describes; its answer is still checked;
//   - a path or method the document has no operation for: the answer must be a 404 or 405 problem.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/fsmd-io/fsmd/internal/server"
)

// apiConformance is the served document, ready to check requests against.
type apiConformance struct {
	router  routers.Router
	problem *openapi3.SchemaRef // the schema of every error answer
}

// apiDocument fetches /openapi.json from a server of this build (every server of the tests,
// in-process or the fsmd binary, serves the same document) and makes it strict: an object schema
// that names its fields takes no other field, so that a field the server sends and the document
// does not name is a mismatch. The served document leaves clients free to meet new fields.
var apiDocument = sync.OnceValues(func() (*apiConformance, error) {
	h := server.New(nil, server.Options{Logger: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /openapi.json: %d %s", rec.Code, rec.Body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		return nil, fmt.Errorf("loading /openapi.json: %w", err)
	}
	// Routes are matched on the path alone: the document's one server is "/", relative to wherever
	// it is served, which the router would compare with the request's absolute URL.
	doc.Servers = nil
	seen := map[*openapi3.Schema]bool{}
	for _, s := range doc.Components.Schemas {
		apiClose(s, seen)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("/openapi.json: %w", err)
	}
	problem := doc.Components.Schemas["server.Problem"]
	if problem == nil {
		return nil, errors.New("/openapi.json has no schema server.Problem")
	}
	return &apiConformance{router: router, problem: problem}, nil
})

// JSON bodies are read by apiJSONBody rather than kin-openapi's own decoder.
func init() {
	openapi3filter.RegisterBodyDecoder("application/json", apiJSONBody)
	openapi3filter.RegisterBodyDecoder("application/problem+json", apiJSONBody)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", apiNDJSONBody)
}

// apiNDJSONBody decodes a stream of JSON lines as the array of its lines, which is how the
// document types a stream (internal/apidoc, "A stream of JSON lines"): each line must be one JSON
// value, and the body must end with a newline when it is not empty.
func apiNDJSONBody(body io.Reader, h http.Header, s *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	lines := []any{}
	if len(data) == 0 {
		return lines, nil
	}
	if data[len(data)-1] != '\n' {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errors.New("the last line has no newline")}
	}
	for i, line := range bytes.Split(data[:len(data)-1], []byte("\n")) {
		if !json.Valid(line) {
			return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat,
				Cause: fmt.Errorf("line %d is not one JSON value: %.100q", i+1, line)}
		}
		v, err := apiJSONBody(bytes.NewReader(line), h, s, enc)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		lines = append(lines, v)
	}
	return lines, nil
}

// apiJSONBody decodes a JSON body as kin-openapi does (numbers as json.Number), except a number
// beyond float64's range: JSON sets no limit (RFC 8259), the server takes such numbers where any
// value is allowed (and refuses to store them), but the validator fails on them whatever the
// schema. They become the largest float64 of their sign, which every schema judges as it would
// judge them (past any bound, an integer, a number).
func apiJSONBody(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	var v any
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	return apiClampNumbers(v), nil
}

func apiClampNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			if strings.HasPrefix(string(x), "-") {
				return -math.MaxFloat64
			}
			return math.MaxFloat64
		}
	case map[string]any:
		for k, e := range x {
			x[k] = apiClampNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = apiClampNumbers(e)
		}
	}
	return v
}

// apiClose forbids fields an object schema does not name, in s and the schemas inside it.
func apiClose(s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if s == nil || s.Value == nil || seen[s.Value] {
		return
	}
	v := s.Value
	seen[v] = true
	if len(v.Properties) > 0 && v.AdditionalProperties.Has == nil && v.AdditionalProperties.Schema == nil {
		v.AdditionalProperties.Has = openapi3.Ptr(false)
	}
	for _, p := range v.Properties {
		apiClose(p, seen)
	}
	apiClose(v.Items, seen)
	apiClose(v.AdditionalProperties.Schema, seen)
	for _, list := range []openapi3.SchemaRefs{v.AllOf, v.AnyOf, v.OneOf} {
		for _, p := range list {
			apiClose(p, seen)
		}
	}
}

// apiInScope reports whether a path is the API's, which the document must describe.
func apiInScope(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/openapi.json" || path == "/v1" ||
		strings.HasPrefix(path, "/v1/")
}

// apiHTTPHeaders are HTTP's own headers, which describe the message rather than the API's answer:
// a document does not list them.
var apiHTTPHeaders = []string{"Content-Type", "Content-Length", "Date", "Transfer-Encoding", "Connection",
	"Content-Encoding", "Vary", "Keep-Alive"}

// check returns what does not match the document in one exchange. body and answer are the
// request's and the response's bodies, read whole.
func (a *apiConformance) check(req *http.Request, body []byte, resp *http.Response, answer []byte) []string {
	var out []string
	// The router decodes the path before it splits it; an id holding an escaped slash must stay one
	// segment, so route on the escaped path and decode the parameters after.
	routed := req.Clone(context.Background())
	routed.URL.Path = req.URL.EscapedPath()
	routed.URL.RawPath = ""
	route, params, err := a.router.FindRoute(routed)
	if err != nil {
		return a.checkUnrouted(req, resp, answer, err)
	}
	for k, v := range params {
		if params[k], err = url.PathUnescape(v); err != nil {
			return []string{fmt.Sprintf("path parameter %s: %v", k, err)}
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = nil // the server reads a body of white space as none, as the document says
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    apiWithBody(req, body),
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:                apiKeyDeclared,
			IncludeResponseStatus:             true,
			RejectWhenRequestBodyNotSpecified: true,
			SkipSettingDefaults:               true,
			MultiError:                        true,
		},
	}
	if resp.StatusCode/100 == 2 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			out = append(out, "request: "+apiShort(err))
		}
	}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(answer)),
		Options:                in.Options,
	}); err != nil {
		out = append(out, "response: "+apiShort(err))
	}
	documented := route.Operation.Responses.Status(resp.StatusCode)
	if documented == nil || documented.Value == nil {
		return out // the status is not documented: ValidateResponse said so
	}
	for name := range resp.Header {
		if slices.Contains(apiHTTPHeaders, name) {
			continue
		}
		if !apiHasHeader(documented.Value.Headers, name) {
			out = append(out, fmt.Sprintf("response: header %s is not documented for status %d", name, resp.StatusCode))
		}
	}
	if len(answer) > 0 && len(documented.Value.Content) == 0 && req.Method != http.MethodHead {
		out = append(out, fmt.Sprintf("response: status %d has a body, and the document gives it no content", resp.StatusCode))
	}
	if resp.StatusCode == http.StatusUnauthorized && (route.Operation.Security == nil || len(*route.Operation.Security) == 0) {
		out = append(out, "response: 401 from an operation that declares no security requirement")
	}
	return out
}

// checkUnrouted checks the answer to a request the document has no operation for: a problem
// saying so.
func (a *apiConformance) checkUnrouted(req *http.Request, resp *http.Response, answer []byte, routeErr error) []string {
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		return []string{fmt.Sprintf("no operation in the document (%v), and the answer is not 404 or 405", routeErr)}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		return []string{fmt.Sprintf("no operation in the document: answer %d is %q, not a problem", resp.StatusCode, ct)}
	}
	if req.Method == http.MethodHead {
		return nil // the problem's headers, without its body
	}
	var v any
	if err := json.Unmarshal(answer, &v); err != nil {
		return []string{fmt.Sprintf("no operation in the document: answer %d: %v", resp.StatusCode, err)}
	}
	if err := a.problem.Value.VisitJSON(v); err != nil {
		return []string{fmt.Sprintf("no operation in the document: answer %d is not a problem: %s", resp.StatusCode, apiShort(err))}
	}
	return nil
}

// apiKeyDeclared is the harness's AuthenticationFunc: the server checks keys; the document need
// only declare the scheme an operation names (Swagger UI and generated clients send the key where
// it is declared, and only there).
func apiKeyDeclared(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme == nil || in.SecurityScheme.Type != "apiKey" || in.SecurityScheme.In != "header" ||
		in.SecurityScheme.Name != "Authorization" {
		return in.NewError(fmt.Errorf("security scheme %q is not an Authorization header", in.SecuritySchemeName))
	}
	return nil
}

// apiHasHeader finds a header in a documented response, in any case.
func apiHasHeader(h openapi3.Headers, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// apiWithBody is a copy of req whose body is body (none when empty).
func apiWithBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, int64(len(body))
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return r
}

// apiShort cuts a validator's message, which can quote a whole schema and value, to a readable
// length.
func apiShort(err error) string {
	s := err.Error()
	if len(s) > 3000 {
		s = s[:3000] + "..."
	}
	return s
}

// apiBlameKey is where a request's context names the test to fail on a mismatch.
type apiBlameKey struct{}

// apiBlame returns ctx naming t as the test that sends the request.
func apiBlame(ctx context.Context, t testing.TB) context.Context {
	if t == nil {
		return ctx
	}
	return context.WithValue(ctx, apiBlameKey{}, t)
}

// apiConformTransport checks every exchange through base against the document. A mismatch fails
// the test the request's context names (apiBlame), else owner, else (owner nil) the run, at the
// end of TestMain.
func apiConformTransport(owner testing.TB, base http.RoundTripper) http.RoundTripper {
	return &apiConformRT{owner: owner, base: base}
}

type apiConformRT struct {
	owner testing.TB
	base  http.RoundTripper
}

// apiConformStats counts what the harness saw, for the run's last word.
var apiConformStats struct {
	sync.Mutex
	checked    int
	mismatches int
	unblamed   []string // mismatches no test could be blamed for
}

func (rt *apiConformRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if !apiInScope(req.URL.Path) {
		return rt.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		// RoundTrip must not modify the request: send a copy carrying the bytes read.
		length := req.ContentLength
		req = req.Clone(req.Context())
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), length
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := rt.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		// A cut answer (a server killed mid-request) is the test's to see, not the document's.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(answer), apiErrReader{err}))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	doc, derr := apiDocument()
	var found []string
	if derr != nil {
		found = []string{derr.Error()}
	} else {
		found = doc.check(req, body, resp, answer)
	}
	rt.report(req, resp.StatusCode, found)
	return resp, nil
}

// report fails the blamed test with each mismatch, or keeps them for the end of the run.
func (rt *apiConformRT) report(req *http.Request, status int, found []string) {
	t, _ := req.Context().Value(apiBlameKey{}).(testing.TB)
	if t == nil {
		t = rt.owner
	}
	apiConformStats.Lock()
	defer apiConformStats.Unlock()
	apiConformStats.checked++
	apiConformStats.mismatches += len(found)
	for _, m := range found {
		line := fmt.Sprintf("openapi mismatch: %s %s: %d: %s", req.Method, req.URL.RequestURI(), status, m)
		if t != nil {
			t.Error(line)
		} else {
			apiConformStats.unblamed = append(apiConformStats.unblamed, line)
		}
	}
}

type apiErrReader struct{ err error }

func (r apiErrReader) Read([]byte) (int, error) { return 0, r.err }

// apiConformMain checks the exchanges of every client that uses http.DefaultTransport while m runs,
// and fails the run for those mismatches (which no test could be blamed for).
func apiConformMain(m *testing.M) int {
	http.DefaultTransport = apiConformTransport(nil, http.DefaultTransport)
	code := m.Run()
	apiConformStats.Lock()
	defer apiConformStats.Unlock()
	for _, line := range apiConformStats.unblamed {
		fmt.Fprintln(os.Stderr, line)
	}
	if testing.Verbose() || apiConformStats.mismatches > 0 {
		fmt.Fprintf(os.Stderr, "conformance: %d exchanges checked against /openapi.json, %d mismatches\n",
			apiConformStats.checked, apiConformStats.mismatches)
	}
	if len(apiConformStats.unblamed) > 0 && code == 0 {
		code = 1
	}
	return code
}

// TestConformanceHarness: the harness finds what it is for, and lets pass what it must. Each case is
// an exchange as a server might make it.
func TestConformanceHarness(t *testing.T) {
	t.Parallel()
	doc, err := apiDocument()
	if err != nil {
		t.Fatal(err)
	}
	const inst = `{"id":"a","definition":"door","version":1,"state":"closed","context":{},"final":false,"revision":0,` +
		`"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","entered_at":"2026-01-02T03:04:05Z","events":["open"]}`
	const problem = `{"type":"https://fsmd.dev/problems/invalid_request","title":"Invalid request","status":400,"detail":"d","code":"invalid_request"}`
	jsonType, problemType := "application/json", "application/problem+json"
	cases := []struct {
		name                 string
		method, target, body string
		status               int
		contentType, answer  string
		header               []string // name, value pairs of the answer
		want                 string   // in the mismatch found; "" for none
	}{
		{"a conforming answer", "GET", "/v1/instances/a", "", 200, jsonType, inst, []string{"ETag", `"0"`}, ""},
		{"a required field missing", "GET", "/v1/instances/a", "", 200, jsonType, strings.Replace(inst, `"state":"closed",`, "", 1), nil, "state"},
		{"a field the document does not name", "GET", "/v1/instances/a", "", 200, jsonType, strings.Replace(inst, `"id":"a"`, `"id":"a","extra":1`, 1), nil, "extra"},
		{"a time that is not a date-time", "GET", "/v1/instances/a", "", 200, jsonType, strings.Replace(inst, `"created_at":"2026-01-02T03:04:05Z"`, `"created_at":"yesterday"`, 1), nil, "created_at"},
		{"an undocumented status", "GET", "/v1/instances/a", "", http.StatusTeapot, problemType, problem, nil, "status is not supported"},
		{"an undocumented header", "GET", "/v1/instances/a", "", 200, jsonType, inst, []string{"X-Secret", "1"}, "X-Secret"},
		{"a problem as JSON", "GET", "/v1/instances/a", "", 400, jsonType, problem, nil, "application/json"},
		{"a success as a problem", "GET", "/v1/instances/a", "", 200, problemType, inst, nil, "application/problem+json"},
		{"a malformed request refused", "GET", "/v1/instances/a?limit=0", "", 400, problemType, problem, nil, ""},
		{"a malformed request accepted", "GET", "/v1/instances?limit=0", "", 200, jsonType, `{"items":[]}`, nil, "limit"},
		{"a request field the document does not name, accepted", "POST", "/v1/instances", `{"definition":"door","nope":1}`, 201, jsonType, inst, []string{"Location", "/v1/instances/a"}, "nope"},
		{"an unknown path answered 404", "GET", "/v1/nothing", "", 404, problemType, strings.Replace(problem, "400", "404", 1), nil, ""},
		{"an unknown path answered", "GET", "/v1/nothing", "", 200, jsonType, `{}`, nil, "not 404 or 405"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", jsonType)
			}
			resp := &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.contentType}, "X-Request-Id": {"r"}}}
			for i := 0; i < len(c.header); i += 2 {
				resp.Header.Set(c.header[i], c.header[i+1])
			}
			found := strings.Join(doc.check(req, []byte(c.body), resp, []byte(c.answer)), "\n")
			switch {
			case c.want == "" && found != "":
				t.Errorf("mismatches found in a conforming exchange:\n%s", found)
			case c.want != "" && !strings.Contains(found, c.want):
				t.Errorf("mismatches %q, want one about %q", found, c.want)
			}
		})
	}
}
