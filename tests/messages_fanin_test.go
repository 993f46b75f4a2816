package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fanInCollector takes every ping, staying in its state: the deliveries of many pairs to one
// collector are decided one after the other and written together (a batch per target).
const fanInCollector = `name: collector
initial: on
context:
  count: int
events:
  ping:
    n: {type: int, required: true}
states:
  on:
    on:
      ping:
        set: {count: ctx.count + 1}
`

// TestMessagesFanInTwoProcesses: two fsmd serve processes on one PostgreSQL deliver 6,000 messages
// from 40 senders to 5 collectors, each collector the target of 40 pairs at once, so that each
// process delivers a collector's messages in batches while the other may do the same; one process
// is killed meanwhile. Each message is delivered exactly once (one history row each, with its id,
// none dropped), every pair in the order written, and each collector counted all it got.
func TestMessagesFanInTwoProcesses(t *testing.T) {
	// Not parallel: two fsmd processes and the test hold up to 48 PostgreSQL connections, and
	// the server allows 100 in all.
	const senders, collectors, events = 40, 5, 30 // 40 × 5 × 30 = 6,000 messages
	const total = senders * collectors * events
	start, procs, db := twoProcesses(t, map[string]string{"fanout": onceFanout, "collector": fanInCollector})
	var ids []string
	for c := range collectors {
		id := fmt.Sprintf("col-%d", c)
		ids = append(ids, id)
		if code, b := childPost(procs[c%2], "/v1/instances", fmt.Appendf(nil, `{"definition": "collector", "id": %q}`, id)); code != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", id, code, b)
		}
	}
	list, _ := json.Marshal(ids)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			body := fmt.Appendf(nil, `{"definition": "fanout", "id": "fan-%02d", "context": {"peers": %s}}`, s, list)
			if code, b := childPost(procs[s%2], "/v1/instances", body); code != http.StatusCreated {
				t.Errorf("creating fan-%02d: %d %s", s, code, b)
				return
			}
			for i := range events {
				if code, b := childPost(procs[(s+i)%2], fmt.Sprintf("/v1/instances/fan-%02d/events", s), []byte(`{"event": "go"}`)); code != http.StatusOK {
					t.Errorf("fan-%02d go #%d: %d %s", s, i+1, code, b)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// One process is killed while both deliver, and another takes its place.
	deadline := time.Now().Add(90 * time.Second)
	delivered := func() int64 { return countClaims(t, db, `SELECT count(*) FROM transitions WHERE source = 'message'`) }
	for delivered() < total/3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := delivered(); n < total {
		procs[0].kill()
		procs[0] = start()
		t.Logf("killed a process after %d deliveries, and started another", n)
	}

	for countClaims(t, db, `SELECT count(*) FROM messages`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("messages not delivered within 90 s; logs:\n%s\n%s", procs[0].log.tail(), procs[1].log.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := countClaims(t, db, `SELECT count(*) FROM test_sent_log`); n != total {
		t.Fatalf("%d messages written, want %d", n, total)
	}
	checks := []struct{ what, query string }{
		{"deliveries", `SELECT count(*) FROM transitions WHERE instance_id LIKE 'col-%' AND source = 'message' AND dropped IS NULL`},
		{"messages delivered once, under their own id", `SELECT count(DISTINCT t.request_id) FROM transitions t
			JOIN test_sent_log l ON l.id = t.request_id AND l.target = t.instance_id WHERE t.instance_id LIKE 'col-%'`},
		// Per pair, the order of the deliveries in the target's history is the order written.
		{"deliveries in their pair's order", `SELECT count(*) FROM (
			SELECT row_number() OVER (PARTITION BY l.sender, l.target ORDER BY t.seq) AS by_seq,
				row_number() OVER (PARTITION BY l.sender, l.target ORDER BY l.ord) AS by_ord
			FROM transitions t JOIN test_sent_log l ON l.id = t.request_id AND l.target = t.instance_id) x
			WHERE by_seq = by_ord`},
		{"counted", `SELECT COALESCE(sum((context->>'count')::int), 0) FROM instances WHERE definition = 'collector'`},
	}
	for _, c := range checks {
		if n := countClaims(t, db, c.query); n != total {
			t.Errorf("%s: %d, want %d", c.what, n, total)
		}
	}
	if n := countClaims(t, db, `SELECT count(*) FROM transitions WHERE instance_id LIKE 'col-%'`); n != total {
		t.Errorf("the collectors' histories have %d rows, want %d", n, total)
	}
}
