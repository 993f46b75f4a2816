package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// fakeService answers every method with err when set, else with fixed values, and records what it
// was asked. The real service is tested end to end elsewhere; here it only has to be reachable.
type fakeService struct {
	mu       sync.Mutex
	err      error
	created  bool
	replayed bool
	inst     service.Instance
	defs     []service.DefinitionSummary
	put      service.PutResult

	event    service.SendEvent
	create   service.CreateInstance
	filter   service.InstanceFilter
	worklist service.WorklistRequest
	assign   service.AssignRequest
	admin    service.AdminRequest
	repair   service.RepairRequest
	bulk     service.BulkRequest
	id       string
	after    int64
	limit    int
	version  int
	yaml     []byte

	migration service.MigrationRequest
	reload    service.ReloadResult

	dead       service.DeadLetterFilter // outbox_test.go
	deadLetter service.DeadLetter
}

func (f *fakeService) record(fn func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
	return f.err
}

func (f *fakeService) CreateInstance(_ context.Context, req service.CreateInstance) (service.Instance, bool, error) {
	err := f.record(func() { f.create = req })
	return f.inst, f.created, err
}

func (f *fakeService) GetInstance(_ context.Context, id string) (service.Instance, error) {
	err := f.record(func() { f.id = id })
	return f.inst, err
}

func (f *fakeService) ListInstances(_ context.Context, fl service.InstanceFilter) (service.Page[service.Instance], error) {
	err := f.record(func() { f.filter = fl })
	return service.Page[service.Instance]{}, err
}

func (f *fakeService) ListChildren(_ context.Context, id string, fl service.InstanceFilter) (service.Page[service.Instance], error) {
	err := f.record(func() { f.id, f.filter = id, fl })
	return service.Page[service.Instance]{}, err
}

func (f *fakeService) Worklist(_ context.Context, req service.WorklistRequest) (service.Page[service.WorkItem], error) {
	err := f.record(func() { f.worklist = req })
	return service.Page[service.WorkItem]{}, err
}

func (f *fakeService) Assign(_ context.Context, req service.AssignRequest) (service.Instance, error) {
	err := f.record(func() { f.assign = req })
	return f.inst, err
}

func (f *fakeService) Suspend(_ context.Context, req service.AdminRequest) (service.Instance, error) {
	err := f.record(func() { f.admin = req })
	return f.inst, err
}

func (f *fakeService) Resume(_ context.Context, req service.AdminRequest) (service.Instance, error) {
	err := f.record(func() { f.admin = req })
	return f.inst, err
}

func (f *fakeService) Terminate(_ context.Context, req service.AdminRequest) (service.Instance, error) {
	err := f.record(func() { f.admin = req })
	return f.inst, err
}

func (f *fakeService) Repair(_ context.Context, req service.RepairRequest) (service.EventResult, error) {
	err := f.record(func() { f.repair = req })
	return service.EventResult{Instance: f.inst}, err
}

func (f *fakeService) PlanBulk(_ context.Context, req service.BulkRequest) (service.BulkPlan, error) {
	err := f.record(func() { f.bulk = req })
	return service.BulkPlan{Outcomes: []service.BulkOutcome{}}, err
}

func (f *fakeService) StartBulk(_ context.Context, req service.BulkRequest) (service.Bulk, error) {
	err := f.record(func() { f.bulk = req })
	return service.Bulk{ID: "b-1", Outcomes: []service.BulkOutcome{}}, err
}

func (f *fakeService) GetBulk(_ context.Context, id string) (service.Bulk, error) {
	err := f.record(func() { f.id = id })
	return service.Bulk{ID: id, Outcomes: []service.BulkOutcome{}}, err
}

func (f *fakeService) ListBulks(_ context.Context, name, after string, limit int) (service.Page[service.Bulk], error) {
	err := f.record(func() { f.id = name })
	return service.Page[service.Bulk]{}, err
}

func (f *fakeService) CancelBulk(_ context.Context, id string) (service.Bulk, error) {
	err := f.record(func() { f.id = id })
	return service.Bulk{ID: id, Outcomes: []service.BulkOutcome{}}, err
}

func (f *fakeService) SendEvent(_ context.Context, req service.SendEvent) (service.EventResult, bool, error) {
	err := f.record(func() { f.event = req })
	return service.EventResult{Instance: f.inst}, f.replayed, err
}

func (f *fakeService) InstanceByKey(_ context.Context, definition string, key map[string]any, _ string) (string, error) {
	err := f.record(func() { f.id = definition })
	return f.inst.ID, err
}

func (f *fakeService) Explain(_ context.Context, id string, req service.SendEvent) (service.Explanation, error) {
	err := f.record(func() { f.id, f.event = id, service.SendEvent{Event: req.Event, Payload: req.Payload} })
	return service.Explanation{Event: req.Event}, err
}

func (f *fakeService) History(_ context.Context, id string, after int64, limit int) (service.Page[service.HistoryEntry], error) {
	err := f.record(func() { f.id, f.after, f.limit = id, after, limit })
	return service.Page[service.HistoryEntry]{}, err
}

func (f *fakeService) StreamHistory(_ context.Context, id string, after int64, _ func(service.HistoryEntry) error) error {
	return f.record(func() { f.id, f.after = id, after })
}

func (f *fakeService) ListDefinitions(_ context.Context, after string, limit int) (service.Page[service.DefinitionSummary], error) {
	err := f.record(func() { f.id, f.limit = after, limit })
	return service.Page[service.DefinitionSummary]{Items: f.defs}, err
}

func (f *fakeService) GetDefinition(_ context.Context, name string) (service.DefinitionVersion, error) {
	err := f.record(func() { f.id = name })
	return service.DefinitionVersion{Name: name, Version: 1}, err
}

func (f *fakeService) DefinitionVersions(_ context.Context, name string, after, limit int) (service.Page[service.DefinitionVersion], error) {
	err := f.record(func() { f.id, f.after, f.limit = name, int64(after), limit })
	return service.Page[service.DefinitionVersion]{}, err
}

func (f *fakeService) DefinitionVersion(_ context.Context, name string, version int) (service.DefinitionVersion, error) {
	err := f.record(func() { f.id, f.version = name, version })
	return service.DefinitionVersion{Name: name, Version: version}, err
}

func (f *fakeService) Diagram(_ context.Context, name string, version int) (string, error) {
	err := f.record(func() { f.id, f.version = name, version })
	return "stateDiagram-v2\n  [*] --> created\n", err
}

func (f *fakeService) PutDefinition(_ context.Context, name string, yaml []byte) (service.PutResult, error) {
	err := f.record(func() { f.id, f.yaml = name, yaml })
	return f.put, err
}

func (f *fakeService) Ready(context.Context) error { return f.record(func() {}) }

func (f *fakeService) PlanMigration(_ context.Context, name string, req service.MigrationRequest) (service.MigrationPlan, error) {
	err := f.record(func() { f.id, f.migration = name, req })
	return service.MigrationPlan{Definition: name, ToVersion: req.ToVersion}, err
}

func (f *fakeService) StartMigration(_ context.Context, name string, req service.MigrationRequest) (service.MigrationStatus, error) {
	err := f.record(func() { f.id, f.migration = name, req })
	return service.MigrationStatus{ID: "m-1", Definition: name, ToVersion: req.ToVersion, Status: "running"}, err
}

func (f *fakeService) GetMigration(_ context.Context, id string) (service.MigrationStatus, error) {
	err := f.record(func() { f.id = id })
	return service.MigrationStatus{ID: id, Status: "done"}, err
}

func (f *fakeService) ListMigrations(_ context.Context, name, _ string, limit int) (service.Page[service.MigrationStatus], error) {
	err := f.record(func() { f.id, f.limit = name, limit })
	return service.Page[service.MigrationStatus]{}, err
}

func (f *fakeService) Reload(_ context.Context, dir string) (service.ReloadResult, error) {
	err := f.record(func() { f.id = dir })
	return f.reload, err
}

// bundle is a server under test, its fake service and its log.
type bundle struct {
	e   *echo.Echo
	svc *fakeService
	log *syncBuffer
}

// syncBuffer is a log sink the race detector accepts.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the JSON log lines.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(s.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func setup(t *testing.T, o Options) *bundle {
	t.Helper()
	b := &bundle{svc: &fakeService{inst: service.Instance{ID: "i-1", Definition: "order", Version: 1, State: "created", Revision: 3}}, log: &syncBuffer{}}
	o.Logger = slog.New(slog.NewJSONHandler(b.log, nil))
	b.e = New(b.svc, o)
	return b
}

// req is a request to send.
type req struct {
	method, path, body string
	header             map[string]string
}

func (b *bundle) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
			continue
		}
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, hr)
	return rec
}

// problem decodes a problem answer and checks what every problem has.
func problem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) Problem {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p Problem
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding the problem: %v", err)
	}
	if p.Code != code || p.Status != status || p.Type != ProblemTypeBase+code || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v, want code %s status %d", p, code, status)
	}
	if p.RequestID == "" || p.RequestID != rec.Header().Get(HeaderRequestID) {
		t.Fatalf("problem request_id %q, header %q", p.RequestID, rec.Header().Get(HeaderRequestID))
	}
	return p
}
