package tests

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// TestGracefulShutdown: SIGTERM while clients send events at full speed. fsmd stops taking new
// connections, lets the requests in flight finish, and exits 0; every event it answered 200 is in
// the history, and each instance equals its last audit row (nothing half-written).
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.SQLiteURL(t)
	child := startFsmd(t, dbURL, counterDefinitions)
	c := newCounterClient(t, child.base, 10*time.Second)
	ids := []string{"term-a", "term-b", "term-c"}
	for _, id := range ids {
		c.mustCreate(t, id)
	}

	type answer struct {
		id  string
		seq int64
	}
	var acked sync.Map // event n -> its answer
	var n, answered, afterTerm atomic.Int64
	var termSent atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id, k := ids[(w+i)%len(ids)], int(n.Add(1))
				resp, body, err := c.event(ctx, id, k, "")
				if err != nil {
					return // the server closed: no answer, nothing to check
				}
				if resp.StatusCode != http.StatusOK {
					t.Errorf("event %d on %s answered %d: %s", k, id, resp.StatusCode, body)
					return
				}
				var res apiEventResult
				if err := decodeNumbers(body, &res); err != nil {
					t.Errorf("event %d: %v", k, err)
					return
				}
				acked.Store(k, answer{id, res.Transition.Seq})
				answered.Add(1)
				if termSent.Load() {
					afterTerm.Add(1)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	termSent.Store(true)
	if err := child.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-child.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("fsmd did not exit within 20 s of SIGTERM:\n%s", child.log.tail())
	}
	cancel()
	wg.Wait()
	if code := child.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("fsmd exited %d after SIGTERM:\n%s", code, child.log.tail())
	}
	if answered.Load() == 0 {
		t.Fatal("no event was answered before SIGTERM: the test proves nothing")
	}

	// Restart on the same database and compare what was answered with what was stored.
	child = startFsmd(t, dbURL, counterDefinitions)
	c = newCounterClient(t, child.base, 10*time.Second)
	for _, id := range ids {
		history, err := c.history(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[int64]bool{}
		for i, h := range history {
			if h.Seq != int64(i+1) {
				t.Fatalf("%s: history row %d has seq %d", id, i, h.Seq)
			}
			stored[h.Seq] = true
		}
		inst, err := c.instance(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Revision != int64(len(history)) {
			t.Errorf("%s: revision %d, %d history rows", id, inst.Revision, len(history))
		}
		acked.Range(func(k, v any) bool {
			if a := v.(answer); a.id == id && !stored[a.seq] {
				t.Errorf("%s: event %d was answered with seq %d but is not stored", id, k, a.seq)
			}
			return true
		})
	}
	t.Logf("%d events answered, %d of them after SIGTERM was sent", answered.Load(), afterTerm.Load())
}
