package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// tally counts with a self-transition, so that the same event is valid again and again.
const tally = `name: tally
initial: counting
context:
  n: int
states:
  counting:
    on:
      add: {to: counting, set: {n: ctx.n + 1}}
      stop: stopped
  stopped: {final: true}
`

// step is one event sent by one of two processes (two services on one database, each with its own
// instance cache) and what it must get.
type step struct {
	by      int // 0 or 1: which service sends it
	id      string
	event   string
	key     string // Idempotency-Key
	payload map[string]any
	ifMatch int64 // 0 for none

	wantFrom, wantTo string
	wantSeq          int64
	wantReplayed     bool
	wantCode         string // the refusal's code instead of a transition
}

// TestTwoProcesses: a service decides an event on the row it cached, but never answers wrongly from
// a row that another process (or migration) made stale: every answer is the one the database's
// current state gives, and the history holds each accepted event once.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		svcs := []*service.Service{start(t, db, doorV1, tally), start(t, db, doorV1, tally)}
		create(t, svcs[0], "door", "d") // cached by 0 in state closed
		create(t, svcs[0], "tally", "t")
		steps := []step{
			{by: 1, id: "d", event: "open", wantFrom: "closed", wantTo: "opened", wantSeq: 1},
			// 0's cached row says closed, where close is refused: decided again on a read.
			{by: 0, id: "d", event: "close", wantFrom: "opened", wantTo: "closed", wantSeq: 2},
			// 1's cached row says opened: the same.
			{by: 1, id: "d", event: "open", wantFrom: "closed", wantTo: "opened", wantSeq: 3},
			// 0's cached row says closed, where open is accepted; the write finds the instance
			// moved on, and the event is refused on the state it is in.
			{by: 0, id: "d", event: "open", wantCode: "invalid_transition"},
			{by: 1, id: "d", event: "close", wantFrom: "opened", wantTo: "closed", wantSeq: 4},
			// If-Match is checked against the database, not 0's cached revision 3.
			{by: 0, id: "d", event: "open", ifMatch: 4, wantFrom: "closed", wantTo: "opened", wantSeq: 5},
			{by: 1, id: "d", event: "close", ifMatch: 4, wantCode: "version_conflict"},

			{by: 0, id: "t", event: "add", key: "k1", wantFrom: "counting", wantTo: "counting", wantSeq: 1},
			// On the cached row the repeated event is accepted; the write finds the key taken, and
			// the first answer is replayed.
			{by: 0, id: "t", event: "add", key: "k1", wantFrom: "counting", wantTo: "counting", wantSeq: 1, wantReplayed: true},
			{by: 1, id: "t", event: "add", key: "k1", wantFrom: "counting", wantTo: "counting", wantSeq: 1, wantReplayed: true},
			{by: 0, id: "t", event: "add", key: "k1", payload: map[string]any{}, wantFrom: "counting", wantTo: "counting", wantSeq: 1, wantReplayed: true},
			{by: 1, id: "t", event: "stop", key: "k1", wantCode: "idempotency_mismatch"},
			{by: 1, id: "t", event: "add", key: "k2", wantFrom: "counting", wantTo: "counting", wantSeq: 2},
			{by: 0, id: "t", event: "add", wantFrom: "counting", wantTo: "counting", wantSeq: 3},
			{by: 1, id: "t", event: "stop", wantFrom: "counting", wantTo: "stopped", wantSeq: 4},
			{by: 0, id: "t", event: "add", wantCode: "instance_final"},
		}
		for i, st := range steps {
			req := service.SendEvent{InstanceID: st.id, Event: st.event, Payload: st.payload, IdempotencyKey: st.key, RequestID: fmt.Sprint("r", i)}
			if st.ifMatch != 0 {
				req.IfMatch = &st.ifMatch
			}
			res, replayed, err := svcs[st.by].SendEvent(context.Background(), req)
			if st.wantCode != "" {
				var coded interface{ Code() string }
				if !errors.As(err, &coded) || coded.Code() != st.wantCode {
					t.Fatalf("step %d (%s %s by %d): %v, want %s", i, st.id, st.event, st.by, err, st.wantCode)
				}
				continue
			}
			tr := res.Transition
			if err != nil || tr.From != st.wantFrom || tr.To != st.wantTo || tr.Seq != st.wantSeq || replayed != st.wantReplayed ||
				res.Instance.Revision != st.wantSeq {
				t.Fatalf("step %d (%s %s by %d): %s -> %s seq %d revision %d replayed %v, %v; want %s -> %s seq %d replayed %v",
					i, st.id, st.event, st.by, tr.From, tr.To, tr.Seq, res.Instance.Revision, replayed, err,
					st.wantFrom, st.wantTo, st.wantSeq, st.wantReplayed)
			}
		}
		for id, want := range map[string]int{"d": 5, "t": 4} {
			h, err := svcs[1].History(context.Background(), id, 0, 0)
			if err != nil || len(h.Items) != want {
				t.Fatalf("history of %s: %d rows, %v; want %d", id, len(h.Items), err, want)
			}
			for i, e := range h.Items {
				if e.Seq != int64(i+1) {
					t.Errorf("history of %s: row %d has seq %d", id, i, e.Seq)
				}
			}
		}
		if inst, err := svcs[0].GetInstance(context.Background(), "t"); err != nil || fmt.Sprint(inst.Context["n"]) != "3" {
			t.Errorf("tally after the steps: %+v, %v; want n 3", inst, err)
		}
	})
}

// TestTwoProcessesConcurrent: two services send events to the same instances at once; every
// accepted event is counted once and each history is gap-free, whichever cache was stale.
func TestTwoProcessesConcurrent(t *testing.T) {
	t.Parallel()
	const instances, workers, events = 3, 8, 25
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		svcs := []*service.Service{start(t, db, tally), start(t, db, tally)}
		for i := range instances {
			create(t, svcs[i%2], "tally", fmt.Sprint("c", i))
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for e := range events {
					id := fmt.Sprint("c", (w+e)%instances)
					if _, _, err := svcs[(w+e)%2].SendEvent(context.Background(), service.SendEvent{InstanceID: id, Event: "add"}); err != nil {
						t.Errorf("worker %d event %d: %v", w, e, err)
						return
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for i := range instances {
			id := fmt.Sprint("c", i)
			inst, err := svcs[i%2].GetInstance(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			fmt.Sscan(fmt.Sprint(inst.Context["n"]), &n)
			total += n
			h, err := svcs[0].History(context.Background(), id, 0, 0)
			if err != nil || int64(len(h.Items)) != inst.Revision || int64(n) != inst.Revision {
				t.Errorf("%s: n %d, revision %d, %d history rows, %v", id, n, inst.Revision, len(h.Items), err)
			}
			for j, e := range h.Items {
				if e.Seq != int64(j+1) {
					t.Errorf("%s: row %d has seq %d", id, j, e.Seq)
				}
			}
		}
		if total != workers*events {
			t.Errorf("the instances counted %d events, want %d", total, workers*events)
		}
	})
}
