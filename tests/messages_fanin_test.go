package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
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
// On Citus with fewer events (1,000 messages).
func TestMessagesFanInTwoProcesses(t *testing.T) {
	// Not parallel, nor its two: two fsmd processes and the test hold up to 48 PostgreSQL
	// connections, and the server allows 100 in all.
	t.Run("postgres", func(t *testing.T) { testMessagesFanIn(t, dbtest.PostgresDatabaseURL(t), 30) })
	t.Run("citus", func(t *testing.T) { testMessagesFanIn(t, dbtest.CitusDatabaseURL(t), 5) })
}

func testMessagesFanIn(t *testing.T, dbURL string, events int) {
	const senders, collectors = 40, 5 // 40 × 5 × 30 = 6,000 messages on PostgreSQL
	total := senders * collectors * events
	start, procs, db := twoProcesses(t, dbURL, map[string]string{"fanout": onceFanout, "collector": fanInCollector})
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
	for delivered() < int64(total/3) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := delivered(); n < int64(total) {
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
	sent := sentLog(t, db)
	if len(sent) != total {
		t.Fatalf("%d messages written, want %d", len(sent), total)
	}
	// The collectors' histories against the log of the messages written (on Citus the log is each
	// worker's: compared here, not joined in SQL).
	rows := histories(t, db, "col-")
	byID := make(map[string]sentMessage, len(sent))
	for _, m := range sent {
		byID[m.ID] = m
	}
	var deliveries, once, inOrder int
	seen := map[string]bool{}
	byPair := map[[2]string][]int64{} // per pair, the ords of its messages in delivery order
	for _, r := range rows {
		if r.Source == "message" && r.Dropped == nil {
			deliveries++
		}
		m, ok := byID[r.RequestID]
		if !ok || m.Target != r.Target || seen[r.RequestID] {
			continue
		}
		seen[r.RequestID] = true
		once++
		pair := [2]string{m.Sender, m.Target}
		byPair[pair] = append(byPair[pair], m.Ord)
	}
	for _, ords := range byPair { // the order delivered is the order written
		written := slices.Sorted(slices.Values(ords))
		for i := range ords {
			if ords[i] == written[i] {
				inOrder++
			}
		}
	}
	checks := []struct {
		what string
		n    int64
	}{
		{"deliveries", int64(deliveries)},
		{"messages delivered once, under their own id", int64(once)},
		{"deliveries in their pair's order", int64(inOrder)},
		{"counted", countClaims(t, db, `SELECT COALESCE(sum((context->>'count')::int), 0) FROM instances WHERE definition = 'collector'`)},
	}
	for _, c := range checks {
		if c.n != int64(total) {
			t.Errorf("%s: %d, want %d", c.what, c.n, total)
		}
	}
	if len(rows) != total {
		t.Errorf("the collectors' histories have %d rows, want %d", len(rows), total)
	}
}
