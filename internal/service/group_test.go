package service_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// TestGroupCommitConcurrent sends events at once from many goroutines to one instance and to many,
// with group commit on (and off, to compare): every event answered is counted exactly once (the
// counts, revisions and audit rows add up, seq 1..N without a gap), and every answer's seq holds its
// event. Some requests are canceled at random while they wait: each of those is written at most
// once, and the rest still add up.
func TestGroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	const workers, events = 12, 30
	for _, tt := range []struct {
		name      string
		instances int
		group     int
	}{
		{"many instances", 24, service.DefaultGroupCommit},
		{"one instance", 1, service.DefaultGroupCommit},
		{"many instances, group commit off", 24, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
				svc := service.New(db, service.Options{GroupCommit: tt.group})
				t.Cleanup(svc.Close)
				if err := svc.Register(context.Background(), set(t, tally)); err != nil {
					t.Fatal(err)
				}
				for i := range tt.instances {
					create(t, svc, "tally", fmt.Sprint("g", i))
				}
				var answered, canceled atomic.Int64
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for e := range events {
							id := fmt.Sprint("g", (w*events+e)%tt.instances)
							ctx, cancel := context.Background(), context.CancelFunc(func() {})
							if e%7 == 3 { // canceled at some point of its way, or not at all
								ctx, cancel = context.WithTimeout(ctx, time.Duration(rand.N(2000))*time.Microsecond)
							}
							res, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: id, Event: "add", RequestID: fmt.Sprint("w", w, "e", e)})
							cancel()
							switch {
							case err == nil && res.Transition.Seq < 1:
								t.Errorf("%s: answered with seq %d", id, res.Transition.Seq)
							case err == nil:
								answered.Add(1)
							case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
								canceled.Add(1)
							case ctx.Err() != nil:
								canceled.Add(1) // its deadline passed: the database may have said so first
							default:
								t.Errorf("%s: %v", id, err)
								return
							}
						}
					})
				}
				wg.Wait()
				total := int64(0)
				for i := range tt.instances {
					id := fmt.Sprint("g", i)
					inst, err := svc.GetInstance(context.Background(), id)
					if err != nil {
						t.Fatal(err)
					}
					var n int64
					fmt.Sscan(fmt.Sprint(inst.Context["n"]), &n)
					total += n
					// Its rows are seq 1..revision, each once.
					var rows, seqs, last int64
					if err := db.X.QueryRowx(db.X.Rebind(`SELECT count(*), count(DISTINCT seq), COALESCE(max(seq), 0) FROM transitions
						WHERE instance_id = ?`), id).Scan(&rows, &seqs, &last); err != nil {
						t.Fatal(err)
					}
					if n != inst.Revision || rows != n || seqs != n || last != n {
						t.Errorf("%s: n %d, revision %d, %d audit rows, %d seqs up to %d", id, n, inst.Revision, rows, seqs, last)
					}
				}
				// Every answered event counted once; a canceled one at most once.
				if total < answered.Load() || total > answered.Load()+canceled.Load() {
					t.Errorf("the instances counted %d events; %d were answered, %d canceled", total, answered.Load(), canceled.Load())
				}
				t.Logf("%d answered, %d canceled, %d counted", answered.Load(), canceled.Load(), total)
			})
		})
	}
}

// TestGroupCommitFailingEvent: an event whose write fails inside a group fails no other event of the
// group: it gets the answer it gets alone, and the events of the other instances are written. Here
// the failing write is an Idempotency-Key sent again: decided on the cached row, which does not
// look keys up, its audit row finds the key taken (on PostgreSQL a unique violation, which aborts
// the group's transaction); it is then decided again on a fresh read and answered with the first
// answer, replayed.
func TestGroupCommitFailingEvent(t *testing.T) {
	t.Parallel()
	const instances, rounds = 16, 10
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := service.New(db, service.Options{GroupCommit: service.DefaultGroupCommit}) // on PostgreSQL too
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, tally)); err != nil {
			t.Fatal(err)
		}
		for i := range instances {
			create(t, svc, "tally", fmt.Sprint("f", i))
		}
		for round := range rounds {
			// The round's key is taken on f0 first, which leaves f0's row cached.
			key := fmt.Sprint("key-", round)
			first, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: "f0", Event: "add", IdempotencyKey: key, RequestID: "first"})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range instances {
				wg.Go(func() {
					req := service.SendEvent{InstanceID: fmt.Sprint("f", i), Event: "add", RequestID: fmt.Sprint("r", round)}
					if i == 0 {
						req.IdempotencyKey = key
					}
					res, replayed, err := svc.SendEvent(ctx, req)
					switch {
					case err != nil:
						t.Errorf("round %d, f%d: %v", round, i, err)
					case i == 0 && (!replayed || res.Transition.Seq != first.Transition.Seq):
						t.Errorf("round %d, f0 sent again with key %s: replayed %v, seq %d; want the first answer, seq %d",
							round, key, replayed, res.Transition.Seq, first.Transition.Seq)
					case i > 0 && (replayed || res.Transition.Seq != int64(round+1)):
						t.Errorf("round %d, f%d: replayed %v, seq %d; want seq %d", round, i, replayed, res.Transition.Seq, round+1)
					}
				})
			}
			wg.Wait()
		}
		for i := range instances {
			inst, err := svc.GetInstance(ctx, fmt.Sprint("f", i))
			if err != nil || inst.Revision != rounds {
				t.Errorf("f%d: revision %d, %v; want %d", i, inst.Revision, err, rounds)
			}
			if n := rowsOf(t, db, inst.ID); n != rounds {
				t.Errorf("f%d: %d audit rows, want %d", i, n, rounds)
			}
		}
	})
}

// rowsOf counts the audit rows of an instance.
func rowsOf(t *testing.T, db *persistence.DB, id string) int64 {
	t.Helper()
	var n int64
	if err := db.X.QueryRowx(db.X.Rebind(`SELECT count(*) FROM transitions WHERE instance_id = ?`), id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGroupCommitSizesMetric: fsmd_group_commit_events observes each group's size, so that the sizes
// add up to the events written (each in one group); it is not served when group commit is off.
func TestGroupCommitSizesMetric(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		group int
	}{{"on", service.DefaultGroupCommit}, {"off", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
				svc := service.New(db, service.Options{GroupCommit: tt.group})
				t.Cleanup(svc.Close)
				reg := prometheus.NewRegistry()
				if err := svc.RegisterMetrics(reg); err != nil {
					t.Fatal(err)
				}
				if err := svc.Register(context.Background(), set(t, tally)); err != nil {
					t.Fatal(err)
				}
				const workers, events = 8, 5
				for w := range workers {
					create(t, svc, "tally", fmt.Sprint("s", w))
				}
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for e := range events {
							if _, _, err := svc.SendEvent(context.Background(), service.SendEvent{InstanceID: fmt.Sprint("s", w), Event: "add",
								RequestID: fmt.Sprint("s", w, "e", e)}); err != nil {
								t.Error(err)
							}
						}
					})
				}
				wg.Wait()
				mfs, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				var h *dto.Histogram
				for _, mf := range mfs {
					if mf.GetName() == "fsmd_group_commit_events" {
						h = mf.GetMetric()[0].GetHistogram()
					}
				}
				switch {
				case tt.group == 1 && h != nil:
					t.Errorf("group commit off, and fsmd_group_commit_events is served: %v", h)
				case tt.group == 1:
				case h == nil:
					t.Fatal("no fsmd_group_commit_events")
				case h.GetSampleSum() != workers*events || h.GetSampleCount() < 1 || h.GetSampleCount() > workers*events:
					t.Errorf("fsmd_group_commit_events: %d groups of %g events in all, want %d events in 1 to %d groups",
						h.GetSampleCount(), h.GetSampleSum(), workers*events, workers*events)
				}
			})
		})
	}
}
