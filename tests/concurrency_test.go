package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// counterDefinitions is the folder of the counter definition (from this package's folder): a state
// `counting` whose `bump` (payload {n: int}) re-enters it with count: ctx.count + 1 and last_n: event.n.
const counterDefinitions = "testdata/counter"

// The load of TestConcurrency: concWorkers goroutines each send concPerWorker events, spread evenly
// and interleaved over concInstances instances, so that each instance gets concPerInstance events
// from concWorkers/concInstances goroutines at once.
const (
	concInstances   = 10
	concWorkers     = 50
	concPerWorker   = 40
	concPerInstance = concWorkers * concPerWorker / concInstances // 200
)

// TestConcurrency sends 2,000 concurrent events over HTTP to 10 counters, on PostgreSQL and on
// SQLite, and requires every event to be counted exactly once: each counter at 200, its revision 200,
// its history seq 1..200 with no gap and no duplicate, each row's context following from the one
// before, and every answer's seq being the row that holds its event. The second variant sends every
// event twice at once under one Idempotency-Key: one of the two is applied, the other is answered
// with the first answer and Idempotent-Replayed: true.
//
// On PostgreSQL the server runs in this process, so that the race detector watches the service and
// the handlers under the load. On SQLite it is the fsmd binary (built without -race) on a database
// file: SQLite is C translated to Go (modernc.org/sqlite), which -race's pointer checks slow about
// five times, and its writes are serialized, so in this process its half took 35 to 45 s instead
// of 8 to 15. On Citus it is the binary too, as a deployment runs it.
//
// The test is not parallel: it loads both cores, and runs alone.
func TestConcurrency(t *testing.T) {
	for _, d := range []struct {
		name  string
		start func(t *testing.T) (base string, db *persistence.DB)
	}{
		{"postgres", func(t *testing.T) (string, *persistence.DB) {
			db := dbtest.Postgres(t)
			return startCounterServer(t, db), db
		}},
		{"sqlite", func(t *testing.T) (string, *persistence.DB) { return startCounterChild(t, dbtest.SQLiteURL(t)) }},
		{"citus", func(t *testing.T) (string, *persistence.DB) { return startCounterChild(t, dbtest.CitusDatabaseURL(t)) }},
	} {
		t.Run(d.name, func(t *testing.T) {
			base, db := d.start(t)
			c := newCounterClient(t, base, 60*time.Second)
			t.Run("without_key", func(t *testing.T) {
				start := time.Now()
				testConcurrentEvents(t, c, db, "plain", false)
				t.Logf("%s: %d events in %v", d.name, concWorkers*concPerWorker, time.Since(start).Round(time.Millisecond))
			})
			t.Run("idempotency_key_twice", func(t *testing.T) {
				start := time.Now()
				testConcurrentEvents(t, c, db, "keyed", true)
				t.Logf("%s: %d events sent twice each in %v", d.name, concWorkers*concPerWorker, time.Since(start).Round(time.Millisecond))
			})
		})
	}
}

// startCounterChild starts the fsmd binary on the counter definitions and the database at u, and
// opens u to read the tables once the load is over.
func startCounterChild(t *testing.T, u string) (string, *persistence.DB) {
	defs, err := filepath.Abs(counterDefinitions)
	if err != nil {
		t.Fatal(err)
	}
	child := startFsmd(t, u, defs)
	db, err := persistence.Open(context.Background(), u) // to read the tables, once the load is over
	if err != nil {
		t.Fatalf("opening %s: %v", u, err)
	}
	t.Cleanup(func() {
		db.Close()
		if t.Failed() {
			t.Logf("fsmd's log:\n%s", child.log.tail())
		}
	})
	return child.base, db
}

// concAnswer is what the client got for one request.
type concAnswer struct {
	status   int
	replayed string // the Idempotent-Replayed header
	body     []byte
	res      apiEventResult
	err      error // a transport error or an undecodable 200
}

// testConcurrentEvents runs the load on fresh instances named prefix-00..prefix-09 and checks the
// outcome. With keyed, event n carries Idempotency-Key prefix-key-n and is sent twice at once.
func testConcurrentEvents(t *testing.T, c *counterClient, db *persistence.DB, prefix string, keyed bool) {
	ctx := context.Background()
	ids := make([]string, concInstances)
	for k := range ids {
		ids[k] = fmt.Sprintf("%s-%02d", prefix, k)
		c.mustCreate(t, ids[k])
	}

	// Event n (1..2000) is worker g's i-th event, to instance (g+i) % 10: at any moment the workers
	// hit every instance, five of them each.
	const total = concWorkers * concPerWorker
	instanceOf := func(n int) int { g, i := (n-1)/concPerWorker, (n-1)%concPerWorker; return (g + i) % concInstances }
	keyOf := func(n int) string {
		if !keyed {
			return ""
		}
		return fmt.Sprintf("%s-key-%d", prefix, n)
	}
	copies := 1
	if keyed {
		copies = 2
	}
	answers := make([][]concAnswer, total+1) // by n; each worker writes its own entries only
	for n := range answers {
		answers[n] = make([]concAnswer, copies)
	}
	send := func(n, which int) {
		a := &answers[n][which]
		var resp *http.Response
		resp, a.body, a.err = c.event(ctx, ids[instanceOf(n)], n, keyOf(n))
		if a.err != nil {
			return
		}
		a.status, a.replayed = resp.StatusCode, resp.Header.Get("Idempotent-Replayed")
		if a.status == http.StatusOK {
			a.err = decodeNumbers(a.body, &a.res)
		}
	}
	startLine := make(chan struct{})
	var wg sync.WaitGroup
	for g := range concWorkers {
		wg.Go(func() {
			<-startLine
			for i := range concPerWorker {
				n := g*concPerWorker + i + 1
				if !keyed {
					send(n, 0)
					continue
				}
				var pair sync.WaitGroup
				pair.Go(func() { send(n, 1) })
				send(n, 0)
				pair.Wait()
			}
		})
	}
	close(startLine)
	wg.Wait()

	// Every answer is 200.
	bad := 0
	for n := 1; n <= total; n++ {
		for which, a := range answers[n] {
			if a.err != nil || a.status != http.StatusOK {
				if bad++; bad <= 10 {
					t.Errorf("event n=%d (copy %d) to %s: status %d, error %v, body %s", n, which, ids[instanceOf(n)], a.status, a.err, a.body)
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d requests were not answered 200", bad, total*copies)
	}

	// Each answer: its instance, the transition of its event, the instance as that transition left
	// it. With a key, the two copies: one applied, one replayed, the same answer.
	seqN := make([]map[int64]int, concInstances) // per instance: seq -> the n the answer gave it
	for k := range seqN {
		seqN[k] = map[int64]int{}
	}
	for n := 1; n <= total; n++ {
		k := instanceOf(n)
		first := answers[n][0]
		if keyed {
			a, b := answers[n][0], answers[n][1]
			switch {
			case a.replayed == "" && b.replayed == "true":
				first = a
			case a.replayed == "true" && b.replayed == "":
				first = b
			default:
				t.Errorf("event n=%d to %s sent twice with key %s: Idempotent-Replayed %q and %q, want one \"true\" and one absent",
					n, ids[k], keyOf(n), a.replayed, b.replayed)
			}
			var ja, jb any
			_ = decodeNumbers(a.body, &ja)
			_ = decodeNumbers(b.body, &jb)
			if !reflect.DeepEqual(ja, jb) {
				t.Errorf("event n=%d to %s: the replay differs from the first answer:\n%s\n%s", n, ids[k], a.body, b.body)
			}
		}
		r := first.res
		tr := r.Transition
		if err := checkCounterAnswer(r, ids[k], n); err != nil {
			t.Errorf("event n=%d: %v\n%s", n, err, first.body)
			continue
		}
		if prev, dup := seqN[k][tr.Seq]; dup {
			t.Errorf("%s: seq %d answered to two events, n=%d and n=%d", ids[k], tr.Seq, prev, n)
		}
		seqN[k][tr.Seq] = n
	}
	for k, id := range ids {
		if len(seqN[k]) != concPerInstance {
			t.Errorf("%s: the answers hold %d distinct seqs, want %d", id, len(seqN[k]), concPerInstance)
		}
	}

	// The instances and their histories, through the API.
	for k, id := range ids {
		sent := map[int]bool{}
		for n := 1; n <= total; n++ {
			if instanceOf(n) == k {
				sent[n] = true
			}
		}
		inst, err := c.instance(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		hist, err := c.history(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if count, _ := ctxInt(inst.Context, "count"); count != concPerInstance || inst.Revision != concPerInstance ||
			inst.State != "counting" || inst.Final {
			t.Errorf("%s: count %d, revision %d, state %q, final %v; want count %d, revision %d, counting, not final",
				id, count, inst.Revision, inst.State, inst.Final, concPerInstance, concPerInstance)
		}
		if len(hist) != concPerInstance {
			t.Errorf("%s: %d history rows, want %d", id, len(hist), concPerInstance)
		}
		for i, h := range hist {
			if err := checkCounterRow(h, int64(i+1)); err != nil {
				t.Errorf("%s: history row %d: %v", id, i, err) // and go on: where is each event?
			}
			n := h.n()
			if !sent[n] {
				t.Errorf("%s: seq %d holds n=%d, which was not sent to it, or is in its history twice", id, h.Seq, n)
			}
			delete(sent, n)
			if want := seqN[k][h.Seq]; want != n {
				t.Errorf("%s: seq %d holds n=%d, but its answer gave it to n=%d", id, h.Seq, n, want)
			}
			if h.IdempotencyKey != keyOf(n) || h.Source != "api" || h.RequestID == "" {
				t.Errorf("%s: seq %d: idempotency_key %q, source %q, request_id %q; want key %q, source api, a request id",
					id, h.Seq, h.IdempotencyKey, h.Source, h.RequestID, keyOf(n))
			}
		}
		if len(sent) > 0 {
			t.Errorf("%s: %d events sent to it are not in its history", id, len(sent))
		}
		if len(hist) > 0 && !reflect.DeepEqual(inst.Context, hist[len(hist)-1].ContextAfter) {
			t.Errorf("%s: context %v, its last history row left %v", id, inst.Context, hist[len(hist)-1].ContextAfter)
		}
	}

	// The same in the database itself, past the API.
	counts, err := dbCounterRows(ctx, db, prefix+"-%")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got := counts[id]; got != (dbCounts{rows: concPerInstance, seqs: concPerInstance, maxSeq: concPerInstance, revision: concPerInstance}) {
			t.Errorf("%s in the database: %+v, want %d rows, seqs and revision", id, got, concPerInstance)
		}
	}

	// A key used again later is still answered with its first answer.
	if keyed {
		for n := 1; n <= total; n += total / 10 {
			resp, body, err := c.event(ctx, ids[instanceOf(n)], n, keyOf(n))
			var r apiEventResult
			if err == nil {
				err = decodeNumbers(body, &r)
			}
			if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Idempotent-Replayed") != "true" ||
				r.Transition.n() != n || r.Transition.Seq == 0 || seqN[instanceOf(n)][r.Transition.Seq] != n {
				t.Errorf("event n=%d sent again with its key: %v %s", n, err, body)
			}
		}
		if inst, err := c.instance(ctx, ids[0]); err != nil || inst.Revision != concPerInstance {
			t.Errorf("%s after the replays: revision %d, %v; want %d", ids[0], inst.Revision, err, concPerInstance)
		}
	}
}

// checkCounterAnswer checks one answer to bump n on instance id: the transition counts one up from
// the seq before and holds n, and the instance is as the transition left it.
func checkCounterAnswer(r apiEventResult, id string, n int) error {
	tr, in := r.Transition, r.Instance
	if err := checkCounterRow(apiHistoryEntry{Seq: tr.Seq, Event: tr.Event, From: tr.From, To: tr.To, Payload: tr.Payload,
		ContextBefore: tr.ContextBefore, ContextAfter: tr.ContextAfter}, tr.Seq); err != nil {
		return err
	}
	if tr.n() != n {
		return fmt.Errorf("the transition holds n=%d", tr.n())
	}
	if in.ID != id || in.Revision != tr.Seq || in.State != tr.To || !reflect.DeepEqual(in.Context, tr.ContextAfter) {
		return fmt.Errorf("instance %s at revision %d in %s with %v; want %s at revision %d in %s with %v",
			in.ID, in.Revision, in.State, in.Context, id, tr.Seq, tr.To, tr.ContextAfter)
	}
	return nil
}

// checkCounterRow checks a bump's row of the history: seq is want, the context before counts
// seq-1, the one after seq, and last_n after is the payload's n.
func checkCounterRow(h apiHistoryEntry, want int64) error {
	before, okB := ctxInt(h.ContextBefore, "count")
	after, okA := ctxInt(h.ContextAfter, "count")
	lastN, okL := ctxInt(h.ContextAfter, "last_n")
	n, okN := ctxInt(h.Payload, "n")
	switch {
	case h.Seq != want:
		return fmt.Errorf("seq %d, want %d", h.Seq, want)
	case h.Event != "bump" || h.From != "counting" || h.To != "counting":
		return fmt.Errorf("seq %d: %s --%s--> %s, want counting --bump--> counting", h.Seq, h.From, h.Event, h.To)
	case !okB || !okA || !okL || !okN:
		return fmt.Errorf("seq %d: context_before %v, context_after %v, payload %v: a count, last_n or n is missing",
			h.Seq, h.ContextBefore, h.ContextAfter, h.Payload)
	case before != h.Seq-1 || after != h.Seq:
		return fmt.Errorf("seq %d: count %d -> %d, want %d -> %d", h.Seq, before, after, h.Seq-1, h.Seq)
	case lastN != n:
		return fmt.Errorf("seq %d: payload n=%d but last_n %d after it", h.Seq, n, lastN)
	}
	return nil
}

// dbCounts is what the database holds of one instance.
type dbCounts struct {
	rows, seqs, maxSeq, revision int64
}

// dbCounterRows reads, for each instance whose id is LIKE pattern, its audit rows (how many, how
// many distinct seqs, the largest) and its revision, straight from the tables.
func dbCounterRows(ctx context.Context, db *persistence.DB, pattern string) (map[string]dbCounts, error) {
	rows, err := db.X.QueryContext(ctx, db.X.Rebind(`
		SELECT i.id, i.revision, COUNT(t.seq), COUNT(DISTINCT t.seq), COALESCE(MAX(t.seq), 0)
		FROM instances i LEFT JOIN transitions t ON t.instance_id = i.id
		WHERE i.id LIKE ?
		GROUP BY i.id, i.revision`), pattern)
	if err != nil {
		return nil, fmt.Errorf("counting the audit rows: %w", err)
	}
	defer rows.Close()
	out := map[string]dbCounts{}
	for rows.Next() {
		var id string
		var c dbCounts
		if err := rows.Scan(&id, &c.revision, &c.rows, &c.seqs, &c.maxSeq); err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, rows.Err()
}

// startCounterServer serves the counter definition over db with the real service and HTTP handler,
// and returns the server's URL. The server's warnings and errors are logged when the test fails.
func startCounterServer(t *testing.T, db *persistence.DB) string {
	t.Helper()
	set, diags, err := machine.Load(counterDefinitions)
	if err != nil || diags.Errors() > 0 {
		t.Fatalf("loading %s: %v %v", counterDefinitions, err, diags)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := service.New(db, service.Options{Logger: log})
	if err := svc.Register(context.Background(), set); err != nil {
		t.Fatalf("registering the counter: %v", err)
	}
	srv := httptest.NewServer(server.New(svc, server.Options{Logger: log}))
	t.Cleanup(func() {
		srv.Close() // waits for the requests in flight, so nothing logs after the test
		if t.Failed() && logs.Len() > 0 {
			t.Logf("server log (warnings and errors):\n%s", logs)
		}
	})
	return srv.URL
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The counter tests read the API's answers into the types of helpers_api_test.go, with json.Number
// for contexts and payloads (decodeNumbers), so that they compare exactly.

// n is the marker of a bump (0 when there is none).
func (tr apiTransition) n() int  { n, _ := ctxInt(tr.Payload, "n"); return int(n) }
func (h apiHistoryEntry) n() int { n, _ := ctxInt(h.Payload, "n"); return int(n) }

// ctxInt reads an integer of a JSON object decoded with json.Number.
func ctxInt(m map[string]any, key string) (int64, bool) {
	num, ok := m[key].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := num.Int64()
	return v, err == nil
}

// decodeNumbers decodes JSON keeping numbers as json.Number.
func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding %.200q: %w", data, err)
	}
	return nil
}

// counterClient talks to fsmd's API over HTTP, with enough idle connections kept that concurrent
// requests reuse them.
type counterClient struct {
	base string
	hc   *http.Client
}

func newCounterClient(t testing.TB, base string, timeout time.Duration) *counterClient {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &counterClient{base: base, hc: &http.Client{Transport: apiConformTransport(t, tr), Timeout: timeout}}
}

// do sends a request and reads the whole answer. err is a transport error (or an unreadable body):
// then there is no answer.
func (c *counterClient) do(ctx context.Context, method, path string, body any, header map[string]string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, data, fmt.Errorf("reading the answer (status %d): %w", resp.StatusCode, err)
	}
	return resp, data, nil
}

// event sends bump with payload {n: n} to an instance, with an Idempotency-Key unless key is "".
func (c *counterClient) event(ctx context.Context, id string, n int, key string) (*http.Response, []byte, error) {
	var h map[string]string
	if key != "" {
		h = map[string]string{"Idempotency-Key": key}
	}
	return c.do(ctx, http.MethodPost, "/v1/instances/"+url.PathEscape(id)+"/events",
		map[string]any{"event": "bump", "payload": map[string]any{"n": n}}, h)
}

// mustCreate creates a counter with a chosen id (201).
func (c *counterClient) mustCreate(t testing.TB, id string) {
	t.Helper()
	resp, body, err := c.do(context.Background(), http.MethodPost, "/v1/instances", map[string]any{"definition": "counter", "id": id}, nil)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating %s: %v %s", id, err, body)
	}
}

// instance gets an instance (200).
func (c *counterClient) instance(ctx context.Context, id string) (apiInstance, error) {
	var inst apiInstance
	resp, body, err := c.do(ctx, http.MethodGet, "/v1/instances/"+url.PathEscape(id), nil, nil)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if err == nil {
		err = decodeNumbers(body, &inst)
	}
	if err == nil && resp.Header.Get("ETag") != fmt.Sprintf("%q", fmt.Sprint(inst.Revision)) {
		err = fmt.Errorf("ETag %s for revision %d", resp.Header.Get("ETag"), inst.Revision)
	}
	if err != nil {
		return apiInstance{}, fmt.Errorf("GET instance %s: %w", id, err)
	}
	return inst, nil
}

// history reads the whole history of an instance, page after page.
func (c *counterClient) history(ctx context.Context, id string) ([]apiHistoryEntry, error) {
	var all []apiHistoryEntry
	after := ""
	for {
		path := "/v1/instances/" + url.PathEscape(id) + "/history?limit=1000"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		var page struct {
			Items []apiHistoryEntry `json:"items"`
			Next  string            `json:"next"`
		}
		resp, body, err := c.do(ctx, http.MethodGet, path, nil, nil)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if err == nil {
			err = decodeNumbers(body, &page)
		}
		if err != nil {
			return nil, fmt.Errorf("GET history of %s: %w", id, err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all, nil
		}
		if page.Next == after || len(page.Items) == 0 {
			return nil, fmt.Errorf("GET history of %s: next %q after %q with %d items: the pages do not advance", id, page.Next, after, len(page.Items))
		}
		after = page.Next
	}
}
