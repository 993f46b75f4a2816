package tests

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestTimersProcesses: three fsmd processes on one PostgreSQL, 1,000 instances created through each,
// every one arming a timer a few seconds ahead. One process is killed with SIGKILL while the timers
// fire; the other two fire the rest. Every timer fires exactly once (one audit row per instance, from
// a timer), none before its time.
func TestTimersProcesses(t *testing.T) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testTimersProcesses(t, dbtest.PostgresDatabaseURL(t)) })
	t.Run("citus", func(t *testing.T) { t.Parallel(); testTimersProcesses(t, dbtest.CitusDatabaseURL(t)) })
}

func testTimersProcesses(t *testing.T, dbURL string) {
	const perProcess = 1000
	defs, err := filepath.Abs("testdata/timers")
	if err != nil {
		t.Fatal(err)
	}
	var children []*fsmdChild
	for range 3 {
		children = append(children, startFsmd(t, dbURL, defs, "--timer-poll", "50ms"))
	}
	db, err := persistence.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	// The timers are due from 4 s after now, over 3 s: creating them takes a while.
	start := time.Now().UTC()
	var wg sync.WaitGroup
	for p, child := range children {
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < perProcess; i += 4 {
					n := p*perProcess + i
					due := start.Add(4*time.Second + time.Duration(n)*time.Millisecond)
					body := fmt.Appendf(nil, `{"definition": "ping", "id": "p%04d", "context": {"due": %q}}`, n, due.Format(time.RFC3339Nano))
					if code, b := childPost(child, "/v1/instances", body); code != http.StatusCreated {
						t.Errorf("creating p%04d: %d %s", n, code, b)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if created := time.Since(start); created > 4*time.Second {
		t.Logf("creating the instances took %s: the first timers were due before the last were created", created)
	}

	// Kill one process once some timers have fired.
	deadline := time.Now().Add(120 * time.Second) // generous: a loaded CI machine
	for countClaims(t, db, "SELECT count(*) FROM transitions WHERE source = 'timer'") < 300 {
		if time.Now().After(deadline) {
			t.Fatalf("no timer fired; logs:\n%s", children[0].log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	children[0].kill()
	total := int64(3 * perProcess)
	for countClaims(t, db, "SELECT count(*) FROM instances WHERE state = 'rung'") < total {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rung after 120 s; logs:\n%s", countClaims(t, db, "SELECT count(*) FROM instances WHERE state = 'rung'"),
				total, children[1].log.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for query, want := range map[string]int64{
		"SELECT count(*) FROM transitions WHERE source = 'timer'":                                total,
		"SELECT count(DISTINCT instance_id) FROM transitions WHERE source = 'timer' AND seq = 1": total,
		"SELECT count(*) FROM transitions WHERE dropped IS NOT NULL":                             0,
		"SELECT count(*) FROM timers":                                                            0,
		`SELECT count(*) FROM transitions t JOIN instances i ON i.id = t.instance_id
			WHERE t.source = 'timer' AND t.at < (i.context->>'due')::timestamptz`: 0, // early
	} {
		if got := countClaims(t, db, query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
	var lagP99 float64
	if err := db.X.Get(&lagP99, `SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM t.at - (i.context->>'due')::timestamptz))
		FROM transitions t JOIN instances i ON i.id = t.instance_id WHERE t.source = 'timer'`); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d timers fired once each by the processes; p99 lag %.3f s (a process was killed among them)", total, lagP99)
}

// childPost posts a JSON body to a child fsmd and returns the status and body.
func childPost(child *fsmdChild, path string, body []byte) (int, string) {
	resp, err := http.Post(child.base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b := make([]byte, 512)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, string(b[:n])
}
