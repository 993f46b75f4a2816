package persistence

import (
	"context"
	"net"
	"slices"
	"testing"
)

var HashText = hashText

// EventWorker is the address of the worker an event of instance id goes to ("": the coordinator),
// and the port of the server its pool reaches.
func EventWorker(t *testing.T, db *DB, id string) (addr string, port int) {
	t.Helper()
	w := db.eventWorker(id)
	if w == nil {
		return "", 0
	}
	if err := w.pool.GetContext(context.Background(), &port, `SELECT inet_server_port()`); err != nil {
		t.Fatal(err)
	}
	return w.addr, port
}

// CutEventWorkers makes every worker of db's routes unreachable from here from now on, as a
// network that lets fsmd reach the coordinator only: each worker's pool goes to a port where
// nothing listens, so every connection is refused.
func CutEventWorkers(t *testing.T, db *DB) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	db.router.mu.Lock()
	defer db.router.mu.Unlock()
	for _, w := range db.router.workers {
		pool, err := db.router.openPool("127.0.0.1", closed)
		if err != nil {
			t.Fatal(err)
		}
		old := w.pool
		w.pool = pool // the router closes it
		old.Close()
	}
}

// RouteThroughCoordinator sends every read and event of db through the coordinator (on) or
// straight to the workers again (off): the benchmark's two sides on one database.
func RouteThroughCoordinator(t testing.TB, db *DB, on bool) {
	t.Helper()
	if on {
		db.router.current.Store(&routes{})
		return
	}
	if err := db.readRoutes(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// MisrouteEvents sends each instance's routed queries to a worker that does not hold it (as after
// shard moves that the last reading of the routes has not seen): each range gets the next worker's.
func MisrouteEvents(t testing.TB, db *DB) {
	t.Helper()
	rs := db.router.current.Load()
	var workers []*worker
	for _, r := range rs.ranges {
		if r.worker != nil && !slices.Contains(workers, r.worker) {
			workers = append(workers, r.worker)
		}
	}
	if len(workers) < 2 {
		t.Fatalf("%d workers with shards: nothing to send elsewhere", len(workers))
	}
	next := &routes{ranges: slices.Clone(rs.ranges), nodes: rs.nodes}
	for i, r := range next.ranges {
		if r.worker != nil {
			next.ranges[i].worker = workers[(slices.Index(workers, r.worker)+1)%len(workers)]
		}
	}
	db.router.current.Store(next)
}

// WorkerSession narrows the pool of instance id's worker to one connection, so that its routed
// queries all run in one session on that worker, and returns how many bytes that session's memory
// contexts hold now (pg_backend_memory_contexts).
func WorkerSession(t testing.TB, db *DB, id string) int64 {
	t.Helper()
	w := db.eventWorker(id)
	if w == nil {
		t.Fatalf("instance %s: no worker of its own", id)
	}
	w.pool.SetMaxOpenConns(1)
	var bytes int64
	if err := w.pool.Get(&bytes, `SELECT sum(total_bytes) FROM pg_backend_memory_contexts`); err != nil {
		t.Fatal(err)
	}
	return bytes
}
