package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

var secret = []byte("test secret")

// hit is one request a receiver got.
type hit struct {
	id       string // Fsmd-Delivery-Id
	instance string
	seq      int64
	webhook  string
	attempt  string
	status   int // what the receiver answered (0: it gave no answer in time)
}

// receiver is a real local HTTP receiver of deliveries. Its behaviour is a function of the request
// number (from 1) and the body, changed at will; it checks every request's signature and headers
// and records what it got.
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	answer   func(n int64, b outbox.Body, w http.ResponseWriter, r *http.Request) int
	hits     []hit
	ok       map[string]int // delivery id -> 2xx answers
	inFlight map[string]bool
	overlaps []string // delivery ids received while a request with the same id was in flight
	n        atomic.Int64
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t, ok: map[string]int{}, inFlight: map[string]bool{}}
	rc.answer = func(int64, outbox.Body, http.ResponseWriter, *http.Request) int { return http.StatusNoContent }
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

// always answers status to every request.
func (rc *receiver) always(status int) {
	rc.set(func(int64, outbox.Body, http.ResponseWriter, *http.Request) int { return status })
}

func (rc *receiver) set(answer func(n int64, b outbox.Body, w http.ResponseWriter, r *http.Request) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = answer
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	n := rc.n.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: reading the body: %v", err)
		return
	}
	switch {
	case r.Method != http.MethodPost:
		rc.t.Errorf("receiver: method %s", r.Method)
	case r.Header.Get("Content-Type") != "application/json":
		rc.t.Errorf("receiver: Content-Type %q", r.Header.Get("Content-Type"))
	case r.Header.Get("User-Agent") != outbox.UserAgent:
		rc.t.Errorf("receiver: User-Agent %q", r.Header.Get("User-Agent"))
	}
	if err := outbox.Verify(secret, r.Header.Get(outbox.HeaderSignature), r.Header.Get(outbox.HeaderTimestamp), body, time.Now(), time.Minute); err != nil {
		rc.t.Errorf("receiver: %v", err)
	}
	var b outbox.Body
	if err := json.Unmarshal(body, &b); err != nil {
		rc.t.Errorf("receiver: body %s: %v", body, err)
	}
	id := r.Header.Get(outbox.HeaderDeliveryID)
	if id != b.DeliveryID {
		rc.t.Errorf("receiver: %s %q, body's delivery_id %q", outbox.HeaderDeliveryID, id, b.DeliveryID)
	}
	rc.mu.Lock()
	if rc.inFlight[id] {
		rc.overlaps = append(rc.overlaps, id)
	}
	rc.inFlight[id] = true
	answer := rc.answer
	i := len(rc.hits) // hits are in the order the requests arrived
	rc.hits = append(rc.hits, hit{id: id, instance: b.Instance.ID, seq: b.Transition.Seq, webhook: b.Webhook,
		attempt: r.Header.Get(outbox.HeaderAttempt)})
	rc.mu.Unlock()

	status := answer(n, b, w, r)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.inFlight, id)
	if status == 0 || r.Context().Err() != nil {
		return // no answer in time
	}
	if status >= 200 && status < 300 {
		rc.ok[id]++
	}
	if w.Header().Get("X-Written") == "" {
		w.WriteHeader(status)
	}
	rc.hits[i].status = status
}

func (rc *receiver) snapshot() ([]hit, map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ok := make(map[string]int, len(rc.ok))
	for k, v := range rc.ok {
		ok[k] = v
	}
	return append([]hit(nil), rc.hits...), ok
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.hits)
}

// counterDef is a definition whose every transition notifies webhook a, and whose ticks notify
// webhook b too.
func counterDef(t testing.TB, urlA, urlB string) *machine.Definition {
	return parse(t, fmt.Sprintf(`name: counter
initial: running
states:
  running:
    on:
      tick: running
      stop: stopped
  stopped: {final: true}
notify:
  - {name: a, url: %q}
  - {name: b, url: %q, events: [tick]}
`, urlA, urlB))
}

// seed inserts the outbox rows of n ticks of each of the instances, as the event path would (one
// transaction per transition), and returns every row.
func seed(t testing.TB, db *persistence.DB, def *machine.Definition, instances, n int) []persistence.OutboxRow {
	t.Helper()
	var all []persistence.OutboxRow
	now := time.Now()
	for i := range instances {
		for seq := int64(1); seq <= int64(n); seq++ {
			tr := &machine.Transition{Event: "tick", From: "running", To: "running", At: now,
				ContextBefore: map[string]any{}, ContextAfter: map[string]any{}, Payload: map[string]any{}}
			rows, err := outbox.Rows(outbox.RowsParams{Definition: def, Version: 1, InstanceID: fmt.Sprintf("i-%03d", i),
				Seq: seq, Source: "api", Transition: tr, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.WithTx(context.Background(), func(tx *persistence.Tx) error {
				return persistence.OutboxInsert(context.Background(), tx, rows)
			}); err != nil {
				t.Fatal(err)
			}
			all = append(all, rows...)
		}
	}
	return all
}

// fast is a configuration for tests: every interval in milliseconds.
func fast() outbox.Config {
	return outbox.Config{Secret: secret, PollInterval: 10 * time.Millisecond, Timeout: 200 * time.Millisecond,
		BackoffBase: 2 * time.Millisecond, BackoffCap: 20 * time.Millisecond, MaxAttempts: 1000,
		BreakerThreshold: 1000, BreakerCooldown: 50 * time.Millisecond, Lease: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// start runs a dispatcher until the test ends, and checks that it stops when told.
func start(t testing.TB, db *persistence.DB, cfg outbox.Config) *outbox.Dispatcher {
	t.Helper()
	d, err := outbox.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the dispatcher did not stop")
		}
	})
	return d
}

// eventually waits until cond holds, failing the test after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counts(t testing.TB, db *persistence.DB) persistence.OutboxCounts {
	t.Helper()
	c, err := persistence.OutboxCount(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkOrder checks that, per instance and webhook, no request for a transition came before the
// delivery of an earlier one was answered 2xx (or given up on, when deadOK).
func checkOrder(t testing.TB, hits []hit) {
	t.Helper()
	type key struct{ instance, webhook string }
	last := map[key]int64{}
	for _, h := range hits {
		k := key{h.instance, h.webhook}
		if h.seq < last[k] {
			t.Errorf("%s/%s: seq %d was sent after seq %d", h.instance, h.webhook, h.seq, last[k])
		}
		last[k] = max(last[k], h.seq)
	}
}

// TestDeliverThroughFailures: a receiver that is down, then hangs, then answers slowly and fails
// now and then, gets every delivery at least once, each instance's in order per webhook.
func TestDeliverThroughFailures(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		rc := newReceiver(t)
		var began time.Time // when the dispatcher starts, before any request
		rc.set(func(n int64, _ outbox.Body, _ http.ResponseWriter, r *http.Request) int {
			switch since := time.Since(began); {
			case since < 300*time.Millisecond: // down
				return http.StatusServiceUnavailable
			case since < 600*time.Millisecond && n%2 == 0: // hangs past the timeout
				<-r.Context().Done()
				return 0
			case n%5 == 0: // fails now and then
				return http.StatusInternalServerError
			case n%7 == 0: // slow, within the timeout
				time.Sleep(50 * time.Millisecond)
			}
			return http.StatusOK
		})
		def := counterDef(t, rc.srv.URL+"/a", rc.srv.URL+"/b")
		rows := seed(t, db, def, 20, 10)
		began = time.Now()
		d := start(t, db, fast())
		eventually(t, 30*time.Second, "every row delivered", func() bool { return counts(t, db) == persistence.OutboxCounts{} })
		eventually(t, time.Second, "the stats counted", func() bool { return d.Stats().Delivered >= int64(len(rows)) })
		hits, ok := rc.snapshot()
		for _, r := range rows {
			if ok[r.ID] < 1 {
				t.Errorf("row %s (%s seq %d to %s) was never delivered", r.ID, r.InstanceID, r.Seq, r.Webhook)
			}
		}
		checkOrder(t, hits)
		st := d.Stats()
		if st.Delivered < int64(len(rows)) || st.Failed == 0 || st.Dead != 0 {
			t.Errorf("stats %+v for %d rows", st, len(rows))
		}
		var timeouts, refusals int
		for _, h := range hits {
			if h.status == 0 {
				timeouts++
			} else if h.status >= 500 {
				refusals++
			}
		}
		if timeouts == 0 || refusals == 0 {
			t.Errorf("the receiver timed out %d and failed %d requests: the test did not test", timeouts, refusals)
		}
	})
}

// TestHangingReceiver: a receiver that never answers costs one timeout per attempt, then the
// delivery is dead.
func TestHangingReceiver(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		rc := newReceiver(t)
		rc.set(func(_ int64, _ outbox.Body, _ http.ResponseWriter, r *http.Request) int {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return 0
		})
		def := counterDef(t, rc.srv.URL, rc.srv.URL)
		rows := seed(t, db, def, 1, 1)
		cfg := fast()
		cfg.Timeout, cfg.MaxAttempts = 100*time.Millisecond, 2
		began := time.Now()
		start(t, db, cfg)
		eventually(t, 5*time.Second, "dead letters", func() bool { return counts(t, db).Dead == 2 })
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("two attempts of two deliveries took %v with a timeout of 100ms", took)
		}
		for _, r := range rows {
			got, err := persistence.OutboxGet(context.Background(), db, r.ID)
			if err != nil || got.Attempts != 2 || !strings.Contains(got.LastError, "no answer within 100ms (attempt 2 of 2: dead)") {
				t.Errorf("row = %+v, %v", got, err)
			}
		}
	})
}

// endless writes an answer's body until the client hangs up, and counts what it wrote.
func endless(written *atomic.Int64, status int) func(int64, outbox.Body, http.ResponseWriter, *http.Request) int {
	return func(_ int64, _ outbox.Body, w http.ResponseWriter, r *http.Request) int {
		w.Header().Set("X-Written", "yes")
		w.WriteHeader(status)
		chunk := []byte(strings.Repeat("x", 64<<10))
		for i := 0; i < 1<<14 && r.Context().Err() == nil; i++ { // at most 1 GiB
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				break
			}
		}
		return status
	}
}

// TestHugeAnswer: an answer's body is read up to MaxResponseBytes and no further, whether the
// answer is a success or a failure (whose first bytes go to last_error).
func TestHugeAnswer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		var okWritten, failWritten atomic.Int64
		good, bad := newReceiver(t), newReceiver(t)
		good.set(endless(&okWritten, http.StatusOK))
		bad.set(endless(&failWritten, http.StatusBadGateway))
		def := counterDef(t, good.srv.URL, bad.srv.URL)
		rows := seed(t, db, def, 1, 1)
		cfg := fast()
		cfg.MaxResponseBytes, cfg.MaxAttempts, cfg.Timeout = 1024, 1, 5*time.Second
		cfg.Lease = 10 * time.Second
		d := start(t, db, cfg)
		eventually(t, 10*time.Second, "one delivered, one dead", func() bool {
			st := d.Stats()
			return st.Delivered == 1 && st.Dead == 1
		})
		dead, err := persistence.OutboxGet(context.Background(), db, rows[1].ID)
		if err != nil || !strings.HasPrefix(dead.LastError, "HTTP 502: xxxx") || len(dead.LastError) > 400 {
			t.Errorf("dead letter: %q, %v", dead.LastError, err)
		}
		// Socket buffers take some megabytes the client never reads; not the gigabyte.
		for name, n := range map[string]int64{"2xx": okWritten.Load(), "502": failWritten.Load()} {
			if n > 64<<20 {
				t.Errorf("%s: the receiver wrote %d MiB of its answer", name, n>>20)
			}
		}
	})
}

// TestDeadLettersAndRedrive: after MaxAttempts failures a delivery is dead and the next one of
// its instance and webhook goes; re-driven, dead letters are delivered.
func TestDeadLettersAndRedrive(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		rc := newReceiver(t)
		rc.always(http.StatusInternalServerError)
		def := counterDef(t, rc.srv.URL+"/a", rc.srv.URL+"/b")
		rows := seed(t, db, def, 2, 3)
		cfg := fast()
		cfg.MaxAttempts = 3
		start(t, db, cfg)
		eventually(t, 10*time.Second, "every row dead", func() bool { return counts(t, db).Dead == int64(len(rows)) })
		hits, _ := rc.snapshot()
		if len(hits) != 3*len(rows) {
			t.Errorf("%d requests for %d rows of 3 attempts", len(hits), len(rows))
		}
		checkOrder(t, hits)
		attempts := map[string][]string{}
		for _, h := range hits {
			attempts[h.id] = append(attempts[h.id], h.attempt)
		}
		for id, a := range attempts {
			if strings.Join(a, ",") != "1,2,3" {
				t.Errorf("delivery %s: attempts %v", id, a)
			}
		}
		dead, err := persistence.OutboxListDead(ctx, db, persistence.OutboxListParams{})
		if err != nil || len(dead) != len(rows) {
			t.Fatalf("dead letters: %d, %v", len(dead), err)
		}
		for _, r := range dead {
			if r.Attempts != 3 || r.LastError != "HTTP 500: (no body) (attempt 3 of 3: dead)" || r.Claim != "" {
				t.Errorf("dead letter %+v", r)
			}
		}

		// The receiver recovers; re-driven, the dead letters go, in order again.
		rc.always(http.StatusOK)
		if err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			_, err := persistence.OutboxRedriveAll(ctx, tx, persistence.OutboxRedriveParams{Webhook: "a", Now: time.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "webhook a's re-driven", func() bool {
			l, _ := persistence.OutboxListDead(ctx, db, persistence.OutboxListParams{Webhook: "a"})
			return counts(t, db).Pending == 0 && len(l) == 0
		})
		if c := counts(t, db); c.Dead != int64(len(rows)/2) {
			t.Errorf("counts %+v: webhook b's were re-driven too", c)
		}
		hits, ok := rc.snapshot()
		for _, r := range rows {
			if r.Webhook == "a" && ok[r.ID] != 1 {
				t.Errorf("re-driven row %s delivered %d times", r.ID, ok[r.ID])
			}
		}
		checkOrder(t, hits[3*len(rows):])
	})
}

// TestBreaker: a dead receiver's breaker opens after the threshold and lets one attempt through
// per cool-down, while another receiver keeps getting its deliveries; when the dead one recovers,
// its breaker closes and its backlog goes.
func TestBreaker(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		down, up := newReceiver(t), newReceiver(t)
		down.always(http.StatusServiceUnavailable)
		def := counterDef(t, down.srv.URL, up.srv.URL)
		rows := seed(t, db, def, 10, 5)
		cfg := fast()
		cfg.BreakerThreshold, cfg.BreakerCooldown = 3, 300*time.Millisecond
		cfg.BackoffBase, cfg.BackoffCap = time.Millisecond, time.Millisecond
		d := start(t, db, cfg)
		dest, _ := outbox.Destination(down.srv.URL)

		eventually(t, 10*time.Second, "the breaker opens", func() bool { return d.BreakerState(dest) == outbox.BreakerOpen })
		opened := down.count()
		// The first attempt of each of the 10 instances goes at once; a few may follow before the
		// failures are in.
		if opened < cfg.BreakerThreshold || opened > cfg.BreakerThreshold+10 {
			t.Errorf("%d attempts opened the breaker; the threshold is %d", opened, cfg.BreakerThreshold)
		}
		// The other receiver gets all of its deliveries meanwhile.
		eventually(t, 10*time.Second, "the healthy receiver's deliveries", func() bool {
			_, ok := up.snapshot()
			return len(ok) == len(rows)/2
		})
		// While open, one probe per cool-down at most (once the attempts in flight when it opened
		// have arrived).
		time.Sleep(100 * time.Millisecond)
		base := down.count()
		time.Sleep(time.Second)
		if n := down.count() - base; n > 4 {
			t.Errorf("%d attempts to the dead receiver in 1s with a cool-down of 300ms", n)
		}
		if got := d.BreakerState(dest); got == outbox.BreakerClosed {
			t.Errorf("breaker %s while the receiver is down", got)
		}
		if st := d.Stats(); st.Dead != 0 {
			t.Errorf("stats %+v", st)
		}

		// Recovered: the next probe closes the breaker, and the backlog goes.
		down.always(http.StatusOK)
		eventually(t, 10*time.Second, "the breaker closes", func() bool { return d.BreakerState(dest) == outbox.BreakerClosed })
		eventually(t, 10*time.Second, "the backlog delivered", func() bool { return counts(t, db) == persistence.OutboxCounts{} })
		hits, _ := down.snapshot()
		checkOrder(t, hits)
	})
}

// TestTwoDispatchers: two dispatchers (two processes) on one PostgreSQL database deliver every row
// once, never the same row at the same time.
func TestTwoDispatchers(t *testing.T) {
	t.Parallel()
	url := dbtest.PostgresDatabaseURL(t)
	var dbs []*persistence.DB
	for range 2 {
		db, err := persistence.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	rc := newReceiver(t)
	rc.set(func(n int64, _ outbox.Body, _ http.ResponseWriter, _ *http.Request) int {
		if n%3 == 0 {
			time.Sleep(time.Millisecond) // interleave
		}
		return http.StatusOK
	})
	def := counterDef(t, rc.srv.URL+"/a", rc.srv.URL+"/b")
	rows := seed(t, dbs[0], def, 30, 10)
	cfg := fast()
	cfg.BatchSize = 7
	d1, d2 := start(t, dbs[0], cfg), start(t, dbs[1], cfg)
	eventually(t, 30*time.Second, "every row delivered", func() bool { return counts(t, dbs[0]) == persistence.OutboxCounts{} })
	eventually(t, time.Second, "the stats counted", func() bool {
		return d1.Stats().Delivered+d2.Stats().Delivered >= int64(len(rows))
	})
	hits, ok := rc.snapshot()
	for _, r := range rows {
		if ok[r.ID] != 1 {
			t.Errorf("row %s delivered %d times", r.ID, ok[r.ID])
		}
	}
	if len(hits) != len(rows) {
		t.Errorf("%d requests for %d rows", len(hits), len(rows))
	}
	rc.mu.Lock()
	if len(rc.overlaps) > 0 {
		t.Errorf("rows delivered by both at once: %v", rc.overlaps)
	}
	rc.mu.Unlock()
	checkOrder(t, hits)
	s1, s2 := d1.Stats(), d2.Stats()
	if s1.Delivered == 0 || s2.Delivered == 0 || s1.Delivered+s2.Delivered != int64(len(rows)) {
		t.Errorf("delivered %d and %d of %d", s1.Delivered, s2.Delivered, len(rows))
	}
}

// TestRefusedDestinations: link-local and metadata destinations, names that resolve to refused
// addresses, and URLs that are not http(s) are dead at once, without a request.
func TestRefusedDestinations(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		rc := newReceiver(t)
		port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
		now := time.Now()
		row := func(id, url string) persistence.OutboxRow {
			return persistence.OutboxRow{ID: id, InstanceID: id, Seq: 1, Definition: "d", Version: 1, Webhook: "w", URL: url,
				Destination: id, Body: []byte(`{}`), NextTryAt: now, CreatedAt: now}
		}
		refused := map[string]string{
			"metadata":      "http://169.254.169.254/latest/meta-data/",
			"link-local":    "http://169.254.10.10:" + port + "/",
			"v6 link-local": "http://[fe80::1]:" + port + "/",
			"gcp":           "http://metadata.google.internal/computeMetadata/v1/",
			"localhost":     "http://localhost:" + port + "/", // a name: refused once resolved, by Deny
			"loopback":      "http://127.0.0.1:" + port + "/",
			"ftp":           "ftp://127.0.0.1:" + port + "/",
			"no host":       "http:///x",
		}
		var rows []persistence.OutboxRow
		for id, url := range refused {
			rows = append(rows, row(id, url))
		}
		if err := db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.OutboxInsert(ctx, tx, rows) }); err != nil {
			t.Fatal(err)
		}
		cfg := fast()
		cfg.Deny = outbox.PrivateNetworks
		cfg.MaxAttempts = 5
		start(t, db, cfg)
		eventually(t, 10*time.Second, "every row dead", func() bool { return counts(t, db).Dead == int64(len(rows)) })
		if n := rc.count(); n != 0 {
			t.Errorf("the receiver got %d requests", n)
		}
		want := map[string]string{
			"metadata":      "refused: 169.254.169.254 is a cloud metadata address (in 169.254.169.254/32)",
			"link-local":    "refused: 169.254.10.10 is link-local (in 169.254.0.0/16)",
			"v6 link-local": "refused: fe80::1 is link-local (in fe80::/10)",
			"gcp":           "refused: metadata.google.internal is a cloud metadata service",
			"localhost":     "is a network the process refuses",
			"loopback":      "refused: 127.0.0.1 is a network the process refuses (in 127.0.0.0/8)",
			"ftp":           "is not an http or https URL",
			"no host":       "has no host",
		}
		for id, msg := range want {
			r, err := persistence.OutboxGet(ctx, db, id)
			if err != nil || r.Attempts != 1 || !strings.Contains(r.LastError, msg) {
				t.Errorf("%s: %+v, %v; want an error with %q", id, r, err, msg)
			}
		}
	})
}

// TestAllowedDestination: Allow lifts a refusal (here of loopback, which Deny refuses).
func TestAllowedDestination(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	rc := newReceiver(t)
	def := counterDef(t, strings.Replace(rc.srv.URL, "127.0.0.1", "localhost", 1), rc.srv.URL)
	seed(t, db, def, 1, 2)
	cfg := fast()
	cfg.Deny = outbox.PrivateNetworks
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	start(t, db, cfg)
	eventually(t, 10*time.Second, "every row delivered", func() bool { return counts(t, db) == persistence.OutboxCounts{} })
}

// TestExpiredLease: a row claimed by a dispatcher that died is delivered by another once the
// claim's lease ends.
func TestExpiredLease(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		rc := newReceiver(t)
		rows := seed(t, db, counterDef(t, rc.srv.URL, rc.srv.URL), 1, 1)
		if err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			_, err := persistence.OutboxClaim(ctx, tx, persistence.OutboxClaimParams{Now: time.Now(),
				LeaseUntil: time.Now().Add(300 * time.Millisecond), Claim: "a dead process", Limit: 10})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		start(t, db, fast())
		time.Sleep(100 * time.Millisecond)
		if n := rc.count(); n != 0 {
			t.Errorf("%d requests during the lease", n)
		}
		eventually(t, 10*time.Second, "delivered after the lease", func() bool { return counts(t, db) == persistence.OutboxCounts{} })
		if _, ok := rc.snapshot(); len(ok) != len(rows) {
			t.Errorf("delivered %v", ok)
		}
	})
}

// TestStopReleases: a dispatcher that stops mid-delivery gives the row back, no attempt counted.
func TestStopReleases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		rc := newReceiver(t)
		arrived := make(chan struct{}, 10)
		rc.set(func(_ int64, _ outbox.Body, _ http.ResponseWriter, r *http.Request) int {
			arrived <- struct{}{}
			<-r.Context().Done()
			return 0
		})
		rows := seed(t, db, counterDef(t, rc.srv.URL, rc.srv.URL), 1, 1)
		cfg := fast()
		cfg.Timeout, cfg.Lease = 5*time.Second, time.Minute
		d, err := outbox.New(db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		<-arrived
		began := time.Now()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("stopping took %v", took)
		}
		for _, r := range rows {
			got, err := persistence.OutboxGet(context.Background(), db, r.ID)
			if err != nil || got.Claim != "" || got.Attempts != 0 || got.Status != persistence.OutboxPending || got.NextTryAt.After(time.Now()) {
				t.Errorf("row after stopping = %+v, %v", got, err)
			}
		}
		if st := d.Stats(); st.Released != int64(len(rows)) {
			t.Errorf("stats %+v", st)
		}
		if err := d.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run again = %v", err)
		}
	})
}

// TestNew: New refuses a configuration without a secret; Run refuses to run twice at once.
func TestNew(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	if _, err := outbox.New(db, outbox.Config{}); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("New without a secret = %v", err)
	}
	d := start(t, db, fast())
	time.Sleep(100 * time.Millisecond)
	if err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "runs already") {
		t.Errorf("a second Run = %v", err)
	}
	d.Wake()
	d.Wake() // never blocks
}

// TestAppend: Append inserts a transition's rows with the caller's transaction, and nothing for a
// transition no webhook is told of.
func TestAppend(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		def := parse(t, orderDef)
		now := time.Now()
		pay := fire(t, def, map[string]any{"amount": 10.0}, now, "pay")
		ship := fire(t, def, map[string]any{"amount": 10.0}, now, "pay", "ship")
		var n1, n2 int
		err := db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
			if n1, err = outbox.Append(ctx, tx, outbox.RowsParams{Definition: def, Version: 1, InstanceID: "i-1", Seq: 1, Source: "api", Transition: pay, Now: now}); err != nil {
				return err
			}
			n2, err = outbox.Append(ctx, tx, outbox.RowsParams{Definition: def, Version: 1, InstanceID: "i-1", Seq: 2, Source: "api", Transition: ship, Now: now})
			return err
		})
		if err != nil || n1 != 2 || n2 != 2 {
			t.Fatalf("Append = %d, %d, %v", n1, n2, err)
		}
		// billing and all of seq 1 are pending; crm of seq 2 too (its first), all of seq 2 waits.
		if c := counts(t, db); c != (persistence.OutboxCounts{Pending: 3, Waiting: 1}) {
			t.Errorf("counts %+v", c)
		}
		err = db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
			n1, err = outbox.Append(ctx, tx, outbox.RowsParams{Definition: parse(t, strings.Split(orderDef, "notify:")[0]), Version: 1,
				InstanceID: "i-2", Seq: 1, Transition: pay, Now: now})
			return err
		})
		if err != nil || n1 != 0 {
			t.Errorf("Append without webhooks = %d, %v", n1, err)
		}
	})
}
