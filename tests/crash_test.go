package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// The load of TestCrash: crashWorkers goroutines send bumps at full speed to crashInstances
// counters; after crashRunFor the server is killed with SIGKILL and restarted on the same database,
// crashRounds times.
const (
	crashInstances = 5
	crashWorkers   = 8
	crashRunFor    = time.Second
	crashRounds    = 2
)

// crashShape is how many counters the load goes to, from how many goroutines.
type crashShape struct {
	instances, workers int
	flags              []string // of fsmd serve
}

// crashOutcome is what the client knows of an event it sent.
type crashOutcome int

const (
	crashUnknown crashOutcome = iota // no answer: the server died with the request in flight
	crashAcked                       // 200: the event is stored, at the seq the answer gave
	crashRefused                     // another status: a failure of the test
)

// crashEvent is an event the client sent: bump {n} to instance, with Idempotency-Key crashKey(n)
// when keyed.
type crashEvent struct {
	n        int
	instance string
	keyed    bool
	outcome  crashOutcome
	seq      int64 // when acked
}

func crashKey(n int) string { return fmt.Sprintf("crash-key-%d", n) }

// crashBook records every event sent, by n.
type crashBook struct {
	mu     sync.Mutex
	events map[int]*crashEvent
}

func (b *crashBook) add(e *crashEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events[e.n] = e
}

// sorted returns the events in n order (call when no worker runs).
func (b *crashBook) sorted() []*crashEvent {
	out := make([]*crashEvent, 0, len(b.events))
	for _, e := range b.events {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out
}

// TestCrash runs fsmd as a child process on PostgreSQL (and on the embedded SQLite, its default),
// sends events at full speed from several goroutines (half of them with an Idempotency-Key), kills
// the process with SIGKILL in the middle of it, restarts it on the same database and checks the
// audit log against what the client saw:
//
//   - every event answered 200 is in the history of its instance exactly once, at the seq the
//     answer gave, and the events in flight at the kill are there at most once;
//   - no history holds an event that was not sent to its instance, and every history is gap-free
//     (seq 1..N), each row's count following from the one before;
//   - every instance is what its last history row left: revision N, its state and context;
//   - in the database, each instance's revision equals its number of audit rows.
//
// Twice; then the keyed events whose answer was lost are sent again with their keys: each is
// answered 200, replayed exactly when it was stored before the kill, and at the end every keyed event
// is in the log exactly once.
func TestCrash(t *testing.T) {
	shape := crashShape{instances: crashInstances, workers: crashWorkers}
	t.Run("postgres", func(t *testing.T) { testCrash(t, dbtest.PostgresDatabaseURL(t), shape) })
	t.Run("sqlite", func(t *testing.T) { testCrash(t, dbtest.SQLiteURL(t), shape) })
	t.Run("citus", func(t *testing.T) { testCrash(t, dbtest.CitusDatabaseURL(t), shape) })
}

// TestCrashGroupCommit is TestCrash with 32 goroutines sending to 64 counters and --group-commit 64
// (on PostgreSQL too, where it is off by default), so that the events written at the kill are
// groups of many instances sharing one commit: every acknowledged event is in the log exactly once,
// and of a group whose commit the kill interrupted nothing is half-written (each counter's revision
// is its number of rows, its history gap-free).
func TestCrashGroupCommit(t *testing.T) {
	shape := crashShape{instances: 64, workers: 32, flags: []string{"--group-commit", "64"}}
	t.Run("postgres", func(t *testing.T) { testCrash(t, dbtest.PostgresDatabaseURL(t), shape) })
	t.Run("sqlite", func(t *testing.T) { testCrash(t, dbtest.SQLiteURL(t), shape) })
	t.Run("citus", func(t *testing.T) { testCrash(t, dbtest.CitusDatabaseURL(t), shape) })
}

func testCrash(t *testing.T, dbURL string, shape crashShape) {
	ctx := context.Background()
	defs, err := filepath.Abs(counterDefinitions)
	if err != nil {
		t.Fatal(err)
	}
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("opening the test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	child := startFsmd(t, dbURL, defs, shape.flags...)
	c := newCounterClient(t, child.base, 10*time.Second)
	ids := make([]string, shape.instances)
	for k := range ids {
		ids[k] = fmt.Sprintf("crash-%02d", k)
		c.mustCreate(t, ids[k])
	}
	book := &crashBook{events: map[int]*crashEvent{}}
	var next atomic.Int64 // the last n sent

	var stored map[int]crashPlace
	ackedBefore := 0
	for round := 1; round <= crashRounds; round++ {
		crashLoad(t, c, child, ids, shape.workers, book, &next)
		if t.Failed() {
			t.Fatalf("round %d: the load failed before the kill; child log:\n%s", round, child.log.tail())
		}
		waitForOrphans(t, db)
		child = startFsmd(t, dbURL, defs, shape.flags...)
		c = newCounterClient(t, child.base, 10*time.Second)
		stored = verifyCrash(t, c, db, ids, book)
		if t.Failed() {
			t.Fatalf("round %d: after the restart the log and the instances disagree with the client (above)", round)
		}
		var acked, inFlight, inFlightStored int
		for _, e := range book.sorted() {
			switch e.outcome {
			case crashAcked:
				acked++
			case crashUnknown:
				inFlight++
				if _, ok := stored[e.n]; ok {
					inFlightStored++
				}
			}
		}
		t.Logf("after round %d: %d events sent, %d acknowledged, %d without an answer (%d of them stored)",
			round, len(book.events), acked, inFlight, inFlightStored)
		if acked == ackedBefore {
			t.Fatalf("round %d: no event acknowledged before the kill: the test tested nothing", round)
		}
		ackedBefore = acked
	}

	// The keyed events without an answer, sent again with their keys: the first answer for those
	// stored before the kill, a new transition for the others.
	resent := 0
	for _, e := range book.sorted() {
		if e.outcome != crashUnknown || !e.keyed {
			continue
		}
		resent++
		before, wasStored := stored[e.n]
		resp, body, err := c.event(ctx, e.instance, e.n, crashKey(e.n))
		var r apiEventResult
		if err == nil && resp.StatusCode == http.StatusOK {
			err = decodeNumbers(body, &r)
		}
		switch {
		case err != nil || resp.StatusCode != http.StatusOK:
			t.Errorf("n=%d sent again to %s with its key: %v %s", e.n, e.instance, err, body)
			continue
		case (resp.Header.Get("Idempotent-Replayed") == "true") != wasStored:
			t.Errorf("n=%d sent again to %s with its key: Idempotent-Replayed %q, but stored before the kill: %v",
				e.n, e.instance, resp.Header.Get("Idempotent-Replayed"), wasStored)
		case wasStored && r.Transition.Seq != before.seq:
			t.Errorf("n=%d sent again to %s with its key: replayed as seq %d, but it is stored at seq %d", e.n, e.instance, r.Transition.Seq, before.seq)
		case r.Transition.n() != e.n || r.Transition.Seq < 1:
			t.Errorf("n=%d sent again to %s with its key: answered with transition %d of n=%d", e.n, e.instance, r.Transition.Seq, r.Transition.n())
		}
		e.outcome, e.seq = crashAcked, r.Transition.Seq
	}
	stored = verifyCrash(t, c, db, ids, book)
	for _, e := range book.sorted() {
		if _, ok := stored[e.n]; e.keyed && !ok {
			t.Errorf("n=%d, sent to %s with key %s (and again after the restart if unanswered), is not in the log", e.n, e.instance, crashKey(e.n))
		}
	}
	t.Logf("%d keyed events without an answer sent again; the log holds %d events", resent, len(stored))
	if t.Failed() {
		t.Logf("child log:\n%s", child.log.tail())
	}
}

// crashLoad sends bumps from the given number of goroutines until child is killed, crashRunFor
// after the start, and records every event and its outcome in book.
func crashLoad(t *testing.T, c *counterClient, child *fsmdChild, ids []string, workers int, book *crashBook, next *atomic.Int64) {
	ctx := context.Background()
	var killed atomic.Bool // set just before the kill: a request failing earlier is a failure
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				e := &crashEvent{n: int(next.Add(1)), instance: ids[(w+i)%len(ids)], keyed: w%2 == 0}
				key := ""
				if e.keyed {
					key = crashKey(e.n)
				}
				book.add(e)
				resp, body, err := c.event(ctx, e.instance, e.n, key)
				switch {
				case err != nil:
					e.outcome = crashUnknown
					if !killed.Load() {
						t.Errorf("n=%d to %s: no answer while the server runs: %v", e.n, e.instance, err)
					}
					return // the server is gone
				case resp.StatusCode != http.StatusOK:
					e.outcome = crashRefused
					t.Errorf("n=%d to %s: status %d: %s", e.n, e.instance, resp.StatusCode, body)
					return
				}
				var r apiEventResult
				if err := decodeNumbers(body, &r); err != nil {
					t.Errorf("n=%d to %s: %v", e.n, e.instance, err)
					return
				}
				if err := checkCounterAnswer(r, e.instance, e.n); err != nil {
					t.Errorf("n=%d to %s: %v\n%s", e.n, e.instance, err, body)
				}
				e.outcome, e.seq = crashAcked, r.Transition.Seq
			}
		})
	}
	time.Sleep(crashRunFor)
	killed.Store(true)
	child.kill()
	wg.Wait()
}

// waitForOrphans waits, on PostgreSQL, until no session of the killed server can still commit.
// PostgreSQL ends a session when it finds its client gone, rolling back its transaction, but a
// COMMIT it had received before is carried out: once every other client session of the database is
// idle or gone, what the log holds is final, and the checks that follow see it all.
func waitForOrphans(t *testing.T, db *persistence.DB) {
	t.Helper()
	if db.Dialect != persistence.Postgres {
		return // the killed process took SQLite's transaction with it
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var busy int
		err := db.X.QueryRowContext(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend'
			  AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'`).Scan(&busy)
		switch {
		case err != nil:
			t.Fatalf("reading pg_stat_activity: %v", err)
		case busy == 0:
			return
		case time.Now().After(deadline):
			t.Fatalf("%d sessions of the killed server still busy after 30 s", busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashPlace is where an event is stored: its instance and seq.
type crashPlace struct {
	instance string
	seq      int64
}

// verifyCrash checks the histories, the instances and the database against the book (see TestCrash)
// and returns where each event stored is, by n.
func verifyCrash(t *testing.T, c *counterClient, db *persistence.DB, ids []string, book *crashBook) map[int]crashPlace {
	t.Helper()
	ctx := context.Background()
	stored := map[int]crashPlace{}
	counts, err := dbCounterRows(ctx, db, "crash-%")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		hist, err := c.history(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := c.instance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range hist {
			if err := checkCounterRow(h, int64(i+1)); err != nil {
				t.Errorf("%s: history row %d: %v", id, i, err) // and go on: where is each event?
			}
			n := h.n()
			e := book.events[n]
			prev, dup := stored[n]
			switch {
			case e == nil:
				t.Errorf("%s: seq %d holds n=%d, which was never sent", id, h.Seq, n)
				continue
			case e.instance != id:
				t.Errorf("%s: seq %d holds n=%d, which was sent to %s", id, h.Seq, n, e.instance)
			case dup:
				t.Errorf("%s: seq %d holds n=%d, stored already at seq %d of %s: an event stored twice", id, h.Seq, n, prev.seq, prev.instance)
			case e.outcome == crashAcked && e.seq != h.Seq:
				t.Errorf("%s: n=%d is at seq %d, but its answer said seq %d", id, n, h.Seq, e.seq)
			}
			stored[n] = crashPlace{id, h.Seq}
			wantKey := ""
			if e.keyed {
				wantKey = crashKey(n)
			}
			if h.IdempotencyKey != wantKey || h.Source != "api" {
				t.Errorf("%s: seq %d (n=%d): idempotency_key %q, source %q; want %q, api", id, h.Seq, n, h.IdempotencyKey, h.Source, wantKey)
			}
		}
		// The instance is what its last row left (or as created, without rows).
		wantState, wantCtx := "counting", map[string]any{"count": json.Number("0"), "last_n": json.Number("0")}
		if len(hist) > 0 {
			last := hist[len(hist)-1]
			wantState, wantCtx = last.To, last.ContextAfter
		}
		if inst.Revision != int64(len(hist)) || inst.State != wantState || inst.Final || !reflect.DeepEqual(inst.Context, wantCtx) {
			t.Errorf("%s: revision %d, state %q, final %v, context %v; its history (%d rows) ends in %q with %v",
				id, inst.Revision, inst.State, inst.Final, inst.Context, len(hist), wantState, wantCtx)
		}
		n := int64(len(hist))
		if got := counts[id]; got != (dbCounts{rows: n, seqs: n, maxSeq: n, revision: n}) {
			t.Errorf("%s in the database: %+v; the API shows %d rows", id, got, n)
		}
	}
	for _, e := range book.sorted() {
		if _, ok := stored[e.n]; e.outcome == crashAcked && !ok {
			t.Errorf("n=%d, acknowledged by %s at seq %d, is not in the log: a lost update", e.n, e.instance, e.seq)
		}
	}
	return stored
}

// fsmdChild is `fsmd serve` running as a child process.
type fsmdChild struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	base string        // http://host:port
	log  *childLog
}

// startFsmd starts the fsmd binary (built by TestMain) serving the definitions in defs on the
// database at dbURL, on a port of its own choosing, with the flags in extra, waits until /readyz
// answers 200 and returns it. The process is killed when the test ends.
func startFsmd(t *testing.T, dbURL, defs string, extra ...string) *fsmdChild {
	t.Helper()
	return startFsmdEnv(t, nil, dbURL, defs, extra...)
}

// startFsmdEnv is startFsmd with environment variables (NAME=value) added to the test's.
func startFsmdEnv(t *testing.T, env []string, dbURL, defs string, extra ...string) *fsmdChild {
	t.Helper()
	log := &childLog{addr: make(chan string, 1)}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--definitions", defs}, extra...)
	cmd := exec.Command(fsmdBin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting fsmd: %v", err)
	}
	child := &fsmdChild{cmd: cmd, done: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		close(child.done)
	}()
	t.Cleanup(child.kill)

	timeout := time.After(30 * time.Second)
	select {
	case addr := <-log.addr:
		child.base = "http://" + addr
	case <-child.done:
		t.Fatalf("fsmd exited before serving (%v):\n%s", cmd.ProcessState, log.tail())
	case <-timeout:
		t.Fatalf("fsmd did not say where it serves within 30 s:\n%s", log.tail())
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	for {
		resp, err := hc.Get(child.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return child
			}
		}
		select {
		case <-child.done:
			t.Fatalf("fsmd exited before it was ready (%v):\n%s", cmd.ProcessState, log.tail())
		case <-timeout:
			t.Fatalf("fsmd not ready within 30 s (last: %v):\n%s", err, log.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill kills the process with SIGKILL (kill -9: no shutdown of any kind) and waits until it has
// exited. Killing it again does nothing.
func (c *fsmdChild) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// childLog takes a child's output: it finds the address in the "fsmd serving" line and keeps the
// last lines, and every warning and error, for failure messages.
type childLog struct {
	mu       sync.Mutex
	partial  []byte
	last     []string
	problems []string
	found    bool
	addr     chan string
}

func (l *childLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *childLog) line(s string) {
	if l.last = append(l.last, s); len(l.last) > 50 {
		l.last = l.last[1:]
	}
	if (strings.Contains(s, `"level":"ERROR"`) || strings.Contains(s, `"level":"WARN"`)) && len(l.problems) < 50 {
		l.problems = append(l.problems, s)
	}
	if !l.found && strings.Contains(s, `"msg":"fsmd serving"`) {
		var m struct{ Addr string }
		if json.Unmarshal([]byte(s), &m) == nil && m.Addr != "" {
			l.found = true
			l.addr <- m.Addr
		}
	}
}

// tail returns the warnings and errors, then the last lines.
func (l *childLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "warnings and errors:\n" + strings.Join(l.problems, "\n") + "\nlast lines:\n" + strings.Join(l.last, "\n") + "\n" + string(l.partial)
}
