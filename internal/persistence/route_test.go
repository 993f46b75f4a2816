package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestHashText: fsmd's hash of an instance id is PostgreSQL's hashtext, which Citus places rows
// by: every length to past two of hash_bytes' 12-byte blocks, every byte value, multibyte text.
func TestHashText(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	var ids []string
	for n := range 40 {
		ids = append(ids, strings.Repeat("abcdefghij", 4)[:n])
	}
	for b := 1; b < 256; b += 7 { // every bit of a byte, high ones included (sign extension)
		ids = append(ids, fmt.Sprintf("id-%c-%d", rune(b), b))
	}
	ids = append(ids, "0192f0a4-7b1c-7d3e-9f00-123456789abc", "ordre-numéro-1", "注文-42", strings.Repeat("é", 99))
	for _, id := range ids {
		var want int32
		if err := db.X.Get(&want, `SELECT hashtext($1)`, id); err != nil {
			t.Fatal(err)
		}
		if got := persistence.HashText(id); got != want {
			t.Errorf("hash of %q: %d, PostgreSQL's %d", id, got, want)
		}
	}
}

// TestCitusEventsGoToTheirWorker: on Citus an event's call goes straight to the worker that holds
// its instance (the node of the placement of the shard Citus names for the id), over a pool whose
// server is that worker, and writes there; the reads of the event (the instance, its key's earlier
// answer) find what it wrote. A worker given an instance it does not hold (a shard moved since
// the routes were read) reads and writes it all the same.
func TestCitusEventsGoToTheirWorker(t *testing.T) {
	t.Parallel()
	db := dbtest.Citus(t)
	ctx := context.Background()
	nodes, err := db.EventRoutes()
	if err != nil || len(nodes) == 0 {
		t.Fatalf("routes %v, %v: want the workers", nodes, err)
	}
	for _, n := range nodes {
		if n.Err != nil {
			t.Errorf("worker %s: %v", n.Addr, n.Err)
		}
	}
	insts := counters(t, db, "inst-", 40)
	workers := map[string]int{}
	for _, in := range insts {
		var node string
		var port int
		if err := db.X.QueryRowContext(ctx, `SELECT n.nodename || ':' || n.nodeport, n.nodeport FROM pg_dist_placement p
			JOIN pg_dist_node n ON n.groupid = p.groupid WHERE p.shardid = get_shard_id_for_distribution_column('instances', $1::text)`,
			in.ID).Scan(&node, &port); err != nil {
			t.Fatal(err)
		}
		addr, server := persistence.EventWorker(t, db, in.ID)
		if addr != node || server != port {
			t.Errorf("instance %s: its events go to %q (a pool on port %d), Citus holds it on %s", in.ID, addr, server, node)
		}
		workers[addr]++
		u, r := counterEvent(in.ID, 1)
		r.IdempotencyKey = "key-" + in.ID
		if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
			t.Fatalf("event of %s: %v", in.ID, err)
		}
		got, err := persistence.InstanceGet(ctx, db, in.ID)
		if err != nil || got.Revision != 1 {
			t.Fatalf("instance %s after its event: revision %d, %v", in.ID, got.Revision, err)
		}
		if tr, err := persistence.TransitionGetByIdempotencyKey(ctx, db, in.ID, r.IdempotencyKey); err != nil || tr.Seq != 1 {
			t.Fatalf("instance %s's event by its key: seq %d, %v", in.ID, tr.Seq, err)
		}
		if _, err := persistence.TransitionGetByIdempotencyKey(ctx, db, in.ID, "other"); !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("instance %s, a key it never had: %v, want ErrNotFound", in.ID, err)
		}
	}
	if len(workers) < 2 {
		t.Errorf("40 instances on %d worker(s): %v", len(workers), workers)
	}

	// A route is a hint: a worker that does not hold the instance reads and writes it all the same.
	persistence.MisrouteEvents(t, db)
	for _, in := range insts {
		got, err := persistence.InstanceGet(ctx, db, in.ID)
		if err != nil || got.Revision != 1 {
			t.Fatalf("instance %s read on another worker: revision %d, %v", in.ID, got.Revision, err)
		}
		u, r := counterEvent(in.ID, 2)
		if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
			t.Fatalf("event of %s on another worker: %v", in.ID, err)
		}
	}
	for _, in := range insts {
		var seqs []int64
		if err := db.X.SelectContext(ctx, &seqs, `SELECT seq FROM transitions WHERE instance_id = $1 ORDER BY seq`, in.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := persistence.InstanceGet(ctx, db, in.ID); err != nil || got.Revision != 2 || !slices.Equal(seqs, []int64{1, 2}) {
			t.Errorf("instance %s after an event on another worker: revision %d (%v), history %v", in.ID, got.Revision, err, seqs)
		}
	}
}

// TestCitusEventRouteCut: a worker this process cannot reach (only the coordinator is reachable)
// costs no read and no event: each goes through the coordinator, and the worker's later ones too.
func TestCitusEventRouteCut(t *testing.T) {
	t.Parallel()
	db := dbtest.Citus(t)
	ctx := context.Background()
	insts := counters(t, db, "cut-", 8)
	for _, in := range insts {
		if addr, _ := persistence.EventWorker(t, db, in.ID); addr == "" {
			t.Fatalf("instance %s: its events go through the coordinator before any worker was cut off", in.ID)
		}
	}
	persistence.CutEventWorkers(t, db)
	// The read of an instance not in the cache goes to its worker too, and falls back as well.
	if got, err := persistence.InstanceGet(ctx, db, insts[0].ID); err != nil || got.Revision != 0 {
		t.Fatalf("reading %s with its worker cut off: revision %d, %v", insts[0].ID, got.Revision, err)
	}
	if addr, _ := persistence.EventWorker(t, db, insts[0].ID); addr != "" {
		t.Errorf("instance %s: its read did not try its worker %s, or kept it after the refusal", insts[0].ID, addr)
	}
	for rev := int64(1); rev <= 2; rev++ {
		for _, in := range insts {
			u, r := counterEvent(in.ID, rev)
			if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
				t.Fatalf("event %d of %s with its worker cut off: %v", rev, in.ID, err)
			}
		}
	}
	for _, in := range insts {
		if addr, _ := persistence.EventWorker(t, db, in.ID); addr != "" {
			t.Errorf("instance %s: events still go to %s, which refused", in.ID, addr)
		}
		if got, err := persistence.InstanceGet(ctx, db, in.ID); err != nil || got.Revision != 2 {
			t.Errorf("instance %s: revision %d, %v; want 2", in.ID, got.Revision, err)
		}
	}
}

// TestCitusWorkerSessionsKeepTheirSize: events in one session on the worker holding their
// instances leave that session's memory as it was. Citus 13.2 keeps a new plan in the session for
// every run of a statement with a generic plan (citusdata/citus#8824); the event's function and
// fsmd's queries on a worker avoid generic plans (advanceFunctionDDL), or each event here would
// add kilobytes to the session, for good.
func TestCitusWorkerSessionsKeepTheirSize(t *testing.T) {
	t.Parallel()
	db := dbtest.Citus(t)
	ctx := context.Background()
	insts := counters(t, db, "size-", 16)
	// The instances one worker holds, their events all in one session there.
	addr, _ := persistence.EventWorker(t, db, insts[0].ID)
	var mine []string
	for _, in := range insts {
		if a, _ := persistence.EventWorker(t, db, in.ID); a == addr {
			mine = append(mine, in.ID)
		}
	}
	rev := map[string]int64{}
	events := func(n int) {
		for i := range n {
			id := mine[i%len(mine)]
			rev[id]++
			if _, err := persistence.InstanceGet(ctx, db, id); err != nil {
				t.Fatal(err)
			}
			u, r := counterEvent(id, rev[id])
			if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	persistence.WorkerSession(t, db, mine[0])
	events(60) // warm: the session's caches of catalogs and plans fill
	before := persistence.WorkerSession(t, db, mine[0])
	events(300)
	after := persistence.WorkerSession(t, db, mine[0])
	t.Logf("the session on %s: %d bytes, %d after 300 more events", addr, before, after)
	if grown := after - before; grown > 512<<10 {
		t.Errorf("the worker's session grew by %d KiB over 300 events (%d to %d bytes)", grown>>10, before, after)
	}
}

// counters seeds the counter definition and n of its instances, prefix followed by 0 to n-1.
func counters(t testing.TB, db *persistence.DB, prefix string, n int) []persistence.InstanceRow {
	t.Helper()
	insts := make([]persistence.InstanceRow, n)
	for i := range insts {
		insts[i] = instance(fmt.Sprint(prefix, i), "counter", 1, "on")
	}
	seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, insts)
	return insts
}

// counterEvent is instance id's event from rev-1 to rev.
func counterEvent(id string, rev int64) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
	u := persistence.InstanceUpdateParams{ID: id, ExpectRevision: rev - 1, Version: 1, State: "on",
		Context: fmt.Appendf(nil, `{"n":%d}`, rev), Revision: rev, UpdatedAt: now(), EnteredAt: now()}
	r := persistence.TransitionRow{InstanceID: id, Seq: rev, Event: "inc", From: "on", To: "on", Source: "api",
		DefinitionVersion: 1, At: now()}
	return u, r
}

// BenchmarkCitusEvent is an event's database work on Citus when the process has not cached its
// instance (another process wrote it last): the instance's read, then the event function's call,
// 8 clients each on instances of its own; straight to the instance's worker, against through the
// coordinator, on the same tables.
func BenchmarkCitusEvent(b *testing.B) {
	db := dbtest.Citus(b)
	ctx := context.Background()
	const instances = 256
	counters(b, db, "i-", instances)
	for _, side := range []string{"worker", "coordinator"} {
		b.Run(side, func(b *testing.B) {
			persistence.RouteThroughCoordinator(b, db, side == "coordinator")
			var next atomic.Int64
			b.SetParallelism(max(1, 8/runtimeProcs()))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprint("i-", next.Add(1)%instances)
				for pb.Next() {
					cur, err := persistence.InstanceGet(ctx, db, id)
					if err != nil {
						b.Error(err)
						return
					}
					u, r := counterEvent(id, cur.Revision+1)
					if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
