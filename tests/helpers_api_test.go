package tests

// The API tests (api_test.go, badinput_api_test.go, migrations_api_test.go) start the real server
// in-process: server.New over service.New over a real database, PostgreSQL and SQLite alike, serving
// the definitions of testdata/api/defs through httptest. They speak HTTP to it and check what
// docs/api.md promises. Every identifier here begins with api, so that the package's other
// tests keep their names.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// Fixtures of the API tests.
const (
	apiDefsDir = "testdata/api/defs" // loaded at start: door and ticket, version 1 each
	apiPutDir  = "testdata/api/put"  // put through the API
)

// apiPostgresSlots bounds the connections the API tests' PostgreSQL and Citus databases keep: a
// database's pool opens up to 16 and keeps them idle, and PostgreSQL allows 100 to every test
// process together. A database that takes a slot keeps its pool; one that finds none free keeps one
// idle connection and opens at most 4 (apiPostgresPool). No test waits for a slot: one waiting
// while the tests holding the slots waited for their parallel subtests, which needed its place
// among the tests running, deadlocked the suite once.
var apiPostgresSlots = make(chan struct{}, 4)

// apiDefinitions is the definitions folder, loaded once: a loaded definition is immutable and
// shared safely between services.
var apiDefinitions = sync.OnceValues(func() (*machine.Set, error) {
	set, diags, err := machine.Load(apiDefsDir)
	if err != nil {
		return nil, err
	}
	if diags.Errors() > 0 {
		var b strings.Builder
		diags.WriteText(&b)
		return nil, fmt.Errorf("%s: %s", apiDefsDir, b.String())
	}
	return set, nil
})

// apiEnv is one running server over one database of its own.
type apiEnv struct {
	dialect persistence.Dialect
	db      *persistence.DB
	srv     *httptest.Server
	client  *http.Client // srv's, through the conformance harness (conformance_test.go); nil: made by send
}

// apiEach runs fn in three parallel subtests, postgres, sqlite and citus (skipped without a Citus
// coordinator, failing under CI), each with an environment of its own. fn must not call t.Parallel.
func apiEach(t *testing.T, fn func(t *testing.T, env *apiEnv)) {
	t.Helper()
	for _, d := range []string{"postgres", "sqlite", "citus"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, apiNewEnv(t, d))
		})
	}
}

// apiNewEnv makes a fresh database ("postgres", "sqlite" or "citus": dbtest's) and serves it.
func apiNewEnv(t *testing.T, d string) *apiEnv {
	t.Helper()
	switch d {
	case "postgres":
		return apiServe(t, apiPostgresPool(t, dbtest.Postgres(t)))
	case "sqlite":
		return apiServe(t, dbtest.SQLite(t))
	case "citus":
		return apiServe(t, apiPostgresPool(t, dbtest.Citus(t)))
	}
	t.Fatalf("unknown database %q", d)
	return nil
}

// apiPostgresPool takes one of apiPostgresSlots for db until the test ends, or, when none is free,
// narrows db's pool. It returns db.
func apiPostgresPool(t *testing.T, db *persistence.DB) *persistence.DB {
	select {
	case apiPostgresSlots <- struct{}{}:
		t.Cleanup(func() { <-apiPostgresSlots })
	default:
		db.X.SetMaxIdleConns(1)
		db.X.SetMaxOpenConns(4)
	}
	return db
}

// apiServe registers the definitions folder on db and serves it over HTTP until the test ends. The
// log is shown when the test fails, from warnings up (the access log is left out).
func apiServe(t *testing.T, db *persistence.DB) *apiEnv {
	t.Helper()
	set, err := apiDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := service.New(db, service.Options{Logger: log})
	if err := svc.Register(context.Background(), set); err != nil {
		t.Fatalf("registering %s: %v", apiDefsDir, err)
	}
	srv := httptest.NewServer(server.New(svc, server.Options{Logger: log, Version: "test"}))
	t.Cleanup(func() {
		srv.Close()
		svc.Close() // stops the background migrations before the database closes
		if t.Failed() && logs.Len() > 0 {
			t.Logf("server log:\n%s", logs)
		}
	})
	client := &http.Client{Transport: apiConformTransport(t, srv.Client().Transport)}
	return &apiEnv{dialect: db.Dialect, db: db, srv: srv, client: client}
}

// apiResponse is an answer, read whole.
type apiResponse struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

func (r apiResponse) String() string {
	body := string(r.body)
	if len(body) > 2000 {
		body = body[:2000] + "..."
	}
	return fmt.Sprintf("%s %s: %d %s %s", r.method, r.path, r.status, r.header.Get("Content-Type"), body)
}

// apiChunked is a body sent chunked, without Content-Length.
type apiChunked string

// do sends a request. path is escaped already (see apiPath). body is nil for none, a string, []byte
// or apiChunked sent as it is, or anything else sent as JSON; Content-Type is application/json when
// there is a body, unless header (name, value pairs) sets it ("" removes it).
func (e *apiEnv) do(t testing.TB, method, path string, body any, header ...string) apiResponse {
	t.Helper()
	r, err := e.send(t, method, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines other than the test's: it returns its error.
func (e *apiEnv) try(method, path string, body any, header ...string) (apiResponse, error) {
	return e.send(nil, method, path, body, header...)
}

// send sends a request for do and try. An answer or a request that does not match the API
// document fails t, or the test that made e when t is nil.
func (e *apiEnv) send(t testing.TB, method, path string, body any, header ...string) (apiResponse, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case apiChunked: // no Content-Length
		rd = io.MultiReader(strings.NewReader(string(b)))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return apiResponse{}, fmt.Errorf("encoding the body of %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(apiBlame(context.Background(), t), method, e.srv.URL+path, rd)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(header)%2 != 0 {
		return apiResponse{}, fmt.Errorf("header pairs: %q", header)
	}
	for i := 0; i < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	client := e.client
	if client == nil { // an apiEnv made by hand: the harness blames the test that sent the request
		client = &http.Client{Transport: apiConformTransport(nil, e.srv.Client().Transport)}
	}
	resp, err := client.Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return apiResponse{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// apiPath formats a path, escaping each argument as one path segment.
func apiPath(format string, args ...any) string {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = url.PathEscape(fmt.Sprint(a))
	}
	return fmt.Sprintf(format, esc...)
}

// apiWant fails the test unless r has the status, and decodes its JSON body into a T.
func apiWant[T any](t testing.TB, r apiResponse, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("%s, want status %d", r, status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q, want application/json", r, ct)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%s: decoding into %T: %v", r, v, err)
	}
	return v
}

// apiInstance is an instance as api.md lists its fields.
type apiInstance struct {
	ID         string         `json:"id"`
	Definition string         `json:"definition"`
	Version    int            `json:"version"`
	State      string         `json:"state"`
	Context    map[string]any `json:"context"`
	Final      bool           `json:"final"`
	Revision   int64          `json:"revision"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	EnteredAt  time.Time      `json:"entered_at"`
	Events     []string       `json:"events"`
}

// apiInstanceFields are the fields of an instance in api.md.
var apiInstanceFields = []string{"id", "definition", "version", "state", "context", "final", "revision",
	"created_at", "updated_at", "entered_at", "events"}

// apiHistoryFields are the fields of a history entry in api.md.
var apiHistoryFields = []string{"seq", "event", "from", "to", "payload", "context_before", "context_after",
	"source", "request_id", "idempotency_key", "definition_version", "actor_kind", "at"}

// apiTransition is the transition of an accepted event.
type apiTransition struct {
	Seq           int64          `json:"seq"`
	Event         string         `json:"event"`
	From          string         `json:"from"`
	To            string         `json:"to"`
	Payload       map[string]any `json:"payload"`
	ContextBefore map[string]any `json:"context_before"`
	ContextAfter  map[string]any `json:"context_after"`
	At            time.Time      `json:"at"`
}

// apiEventResult is the answer to an accepted event.
type apiEventResult struct {
	Instance   apiInstance   `json:"instance"`
	Transition apiTransition `json:"transition"`
}

// apiHistoryEntry is one row of an instance's history.
type apiHistoryEntry struct {
	Seq               int64          `json:"seq"`
	Event             string         `json:"event"`
	From              string         `json:"from"`
	To                string         `json:"to"`
	Payload           map[string]any `json:"payload"`
	ContextBefore     map[string]any `json:"context_before"`
	ContextAfter      map[string]any `json:"context_after"`
	Source            string         `json:"source"`
	RequestID         string         `json:"request_id"`
	IdempotencyKey    string         `json:"idempotency_key"`
	DefinitionVersion int            `json:"definition_version"`
	Dropped           string         `json:"dropped"`
	At                time.Time      `json:"at"`
}

// apiPage is a page of a list.
type apiPage[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// apiBlocker is one branch of a guard_rejected problem.
type apiBlocker struct {
	To      string `json:"to"`
	Guard   string `json:"guard"`
	Message string `json:"message"`
}

// apiDiagnostic is one problem of an invalid definition.
type apiDiagnostic struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// apiProblem is an error as problem+json.
type apiProblem struct {
	Type     string          `json:"type"`
	Title    string          `json:"title"`
	Status   int             `json:"status"`
	Detail   string          `json:"detail"`
	Code     string          `json:"code"`
	Instance *apiInstance    `json:"instance"`
	Blockers []apiBlocker    `json:"blockers"`
	Errors   []apiDiagnostic `json:"errors"`
}

// apiProblemOf checks that r is the problem code with the status, as api.md says every error is:
// Content-Type application/problem+json, with type, title, status, detail and code.
func apiProblemOf(t testing.TB, r apiResponse, status int, code string) apiProblem {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s, want %d %s", r, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json", r, ct)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("%s: not JSON: %v", r, err)
	}
	for _, f := range []string{"type", "title", "detail", "code"} {
		if s, _ := raw[f].(string); s == "" {
			t.Errorf("%s: field %s is missing or empty", r, f)
		}
	}
	if n, _ := raw["status"].(float64); int(n) != status {
		t.Errorf("%s: field status %v, want %d", r, raw["status"], status)
	}
	var p apiProblem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	if p.Code != code {
		t.Fatalf("%s: code %q, want %q", r, p.Code, code)
	}
	if p.Instance != nil {
		apiCheckFields(t, r.String(), raw["instance"], apiInstanceFields)
	}
	return p
}

// apiCheckFields checks that v is a JSON object with exactly the fields named.
func apiCheckFields(t testing.TB, what string, v any, fields []string) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: %T, want a JSON object", what, v)
		return
	}
	got := slices.Sorted(maps.Keys(m))
	want := slices.Sorted(slices.Values(fields))
	if !slices.Equal(got, want) {
		t.Errorf("%s: fields %v, want %v", what, got, want)
	}
}

// apiRaw decodes a JSON body loosely.
func apiRaw(t testing.TB, r apiResponse) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	return m
}

// create creates an instance and expects 201.
func (e *apiEnv) create(t testing.TB, definition, id string, ctx map[string]any) apiInstance {
	t.Helper()
	body := map[string]any{"definition": definition}
	if id != "" {
		body["id"] = id
	}
	if ctx != nil {
		body["context"] = ctx
	}
	r := e.do(t, "POST", "/v1/instances", body)
	inst := apiWant[apiInstance](t, r, http.StatusCreated)
	if loc := r.header.Get("Location"); loc != apiPath("/v1/instances/%s", inst.ID) {
		t.Errorf("%s: Location %q", r, loc)
	}
	return inst
}

// door creates a door with the code 1234.
func (e *apiEnv) door(t testing.TB, id string) apiInstance {
	t.Helper()
	return e.create(t, "door", id, map[string]any{"code": "1234"})
}

// fire sends an event; header holds name, value pairs.
func (e *apiEnv) fire(t testing.TB, id, event string, payload map[string]any, header ...string) apiResponse {
	t.Helper()
	body := map[string]any{"event": event}
	if payload != nil {
		body["payload"] = payload
	}
	return e.do(t, "POST", apiPath("/v1/instances/%s/events", id), body, header...)
}

// mustFire sends an event and expects it accepted.
func (e *apiEnv) mustFire(t testing.TB, id, event string, payload map[string]any, header ...string) apiEventResult {
	t.Helper()
	return apiWant[apiEventResult](t, e.fire(t, id, event, payload, header...), http.StatusOK)
}

// instance reads an instance.
func (e *apiEnv) instance(t testing.TB, id string) apiInstance {
	t.Helper()
	return apiWant[apiInstance](t, e.do(t, "GET", apiPath("/v1/instances/%s", id), nil), http.StatusOK)
}

// history reads the whole history of an instance, page by page (limit per page, 0 for the
// server's default), checking that the pages chain.
func (e *apiEnv) history(t testing.TB, id string, limit int) []apiHistoryEntry {
	t.Helper()
	var all []apiHistoryEntry
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("history of %s: the pages do not end", id)
		}
		q := url.Values{}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		if after != "" {
			q.Set("after", after)
		}
		path := apiPath("/v1/instances/%s/history", id)
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		r := e.do(t, "GET", path, nil)
		page := apiWant[apiPage[apiHistoryEntry]](t, r, http.StatusOK)
		if len(r.body) > 4<<20 {
			t.Fatalf("%s %s: a page of %d bytes, over 4 MiB", r.method, r.path, len(r.body))
		}
		for _, item := range apiRaw(t, r)["items"].([]any) {
			apiCheckFields(t, r.String(), item, apiHistoryFields)
		}
		all = append(all, page.Items...)
		if limit > 0 && len(page.Items) > limit {
			t.Fatalf("%s: %d items, limit %d", r, len(page.Items), limit)
		}
		if page.Next == "" {
			return all
		}
		if len(page.Items) == 0 || page.Next != fmt.Sprint(page.Items[len(page.Items)-1].Seq) {
			t.Fatalf("%s: next %q is not the last seq of the page", r, page.Next)
		}
		after = page.Next
	}
}

// list walks every page of GET /v1/instances with the query (and limit), checking that each page
// is in id order, follows the one before, and that next is the last id of a page.
func (e *apiEnv) list(t testing.TB, query url.Values, limit int) []apiInstance {
	t.Helper()
	var all []apiInstance
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("list %v: the pages do not end", query)
		}
		q := url.Values{}
		maps.Copy(q, query)
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		if after != "" {
			q.Set("after", after)
		}
		path := "/v1/instances"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		r := e.do(t, "GET", path, nil)
		page := apiWant[apiPage[apiInstance]](t, r, http.StatusOK)
		if len(r.body) > 4<<20 {
			t.Fatalf("%s %s: a page of %d bytes, over 4 MiB", r.method, r.path, len(r.body))
		}
		if limit > 0 && len(page.Items) > limit {
			t.Fatalf("%s: %d items, limit %d", r, len(page.Items), limit)
		}
		for i, inst := range page.Items {
			if (i > 0 && inst.ID <= page.Items[i-1].ID) || (after != "" && inst.ID <= after) {
				t.Fatalf("%s: not in id order after %q", r, after)
			}
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		if len(page.Items) == 0 || page.Next != page.Items[len(page.Items)-1].ID {
			t.Fatalf("%s: next %q is not the last id of the page", r, page.Next)
		}
		after = page.Next
	}
}

// apiIDs lists the ids of instances.
func apiIDs(insts []apiInstance) []string {
	ids := make([]string, len(insts))
	for i, inst := range insts {
		ids[i] = inst.ID
	}
	return ids
}

// apiReadFile reads a fixture.
func apiReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
