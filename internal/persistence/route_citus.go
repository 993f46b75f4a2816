package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// On Citus every node takes queries (Citus 11 and later keep its metadata on the workers too), so
// an event's statements (getOf: its reads and its one call, advanceCitus) go straight to
// the worker that holds its instance rather than through the coordinator, which would only relay
// them there: a server and a round trip fewer per statement, and the coordinator no longer carries
// every event of the cluster.
//
// Where an instance lives is Citus's to say: its id's hash (hashText) falls in the range of one
// shard of instances, which has one placement. The routes are read at start and again every
// routeEvery. A route is a hint, never a condition: a worker handed an instance it does not hold
// runs the call all the same (Citus sends it on), so a shard moved since the last read costs a hop,
// not a wrong write. A worker fsmd cannot reach (its address in Citus's metadata may be one only
// the cluster's own network knows) gets no events: they go through the coordinator, as before.

// routeEvery is how often the routes are read again.
const routeEvery = 30 * time.Second

// routes is one reading of where the instances' shards live.
type routes struct {
	ranges []shardRange // sorted by min; they cover the hashes when Citus's metadata is whole
	nodes  []RouteNode
	err    error // why there are no ranges: every event goes through the coordinator
}

// shardRange is one shard of instances: the ids whose hashes are from min to max are on worker
// (nil: their events go through the coordinator).
type shardRange struct {
	shard    int64
	min, max int32
	worker   *worker
}

// worker is a pool of connections to one worker.
//
// Its queries are not prepared: a prepared query run on the worker holding its shard would meet the
// bug of Citus 13.2 that advanceFunctionDDL tells of (a plan kept for every run, the session
// growing for good). An unnamed statement gets a custom plan, dropped after its run.
type worker struct {
	addr string // host:port
	pool *sqlx.DB
}

// RouteNode is a node that holds shards of instances, as the last reading of the routes found it.
type RouteNode struct {
	Addr string // host:port, as Citus's metadata names it
	// Err is why its events go through the coordinator: the node could not be reached from here.
	// The coordinator's own shards have no error and no pool of their own.
	Err error
}

// router holds the routes and one pool per worker.
type router struct {
	cfg     pq.Config // the coordinator's connection settings; a worker's differ in host and port
	current atomic.Pointer[routes]
	mu      sync.Mutex
	workers map[string]*worker // by host:port
	stop    context.CancelFunc // the readings in the background
	done    chan struct{}      // closed once they have stopped
}

// routeShardsQuery reads where instances' shards are placed: the shard's hash range, and the node
// of its placement (groupid 0 is the coordinator), and whether that node has Citus's metadata
// (without it a worker knows only its shards, not the distributed tables the function names).
// Only hash-distributed instances have ranges.
const routeShardsQuery = `SELECT s.shardid, s.shardminvalue::integer AS shardminvalue, s.shardmaxvalue::integer AS shardmaxvalue,
		n.nodename, n.nodeport, n.groupid = 0 AS coordinator, n.hasmetadata AND n.metadatasynced AS metadata
	FROM pg_dist_shard s JOIN pg_dist_placement p ON p.shardid = s.shardid JOIN pg_dist_node n ON n.groupid = p.groupid
	WHERE s.logicalrelid = 'instances'::regclass AND n.isactive AND n.noderole = 'primary'
		AND s.shardminvalue IS NOT NULL
	ORDER BY 2`

// routeProbes are ids whose shards Citus names at each reading (routeProbeQuery): a reading whose
// hash or ranges place one elsewhere is not used (hashText is PostgreSQL's for a deterministic
// collation; a column with another would hash otherwise).
var routeProbes = []string{"", "a", "order-42", "01J9ZQ4M3V5K8Q2W6X7Y0B1C2D", "instance with a longer id than twelve bytes"}

const routeProbeQuery = `SELECT get_shard_id_for_distribution_column('instances', id) FROM unnest($1::text[]) AS id`

// startRouting reads the routes (Open, on Citus) and keeps them read in the background until
// Close. A failure to read them is no failure of Open: events go through the coordinator.
func (db *DB) startRouting(ctx context.Context, dsn string) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return // Open connected with this DSN: this does not happen
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &router{cfg: cfg, workers: map[string]*worker{}, stop: stop, done: make(chan struct{})}
	db.router = r
	if err := db.readRoutes(ctx); err != nil && r.current.Load() == nil {
		r.current.Store(&routes{err: err})
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(routeEvery)
		defer t.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-t.C:
				_ = db.readRoutes(loopCtx)
			}
		}
	}()
}

// readRoutes reads the placements and makes a pool for each worker not seen before. A reading
// that fails keeps the routes of the one before, unless it found them wrong.
func (db *DB) readRoutes(ctx context.Context) error {
	type placement struct {
		Shard       int64  `db:"shardid"`
		Min         int32  `db:"shardminvalue"`
		Max         int32  `db:"shardmaxvalue"`
		Host        string `db:"nodename"`
		Port        int    `db:"nodeport"`
		Coordinator bool   `db:"coordinator"`
		Metadata    bool   `db:"metadata"`
	}
	var placements []placement
	if err := db.X.SelectContext(ctx, &placements, routeShardsQuery); err != nil {
		return err
	}
	var shards []int64
	if err := db.X.SelectContext(ctx, &shards, routeProbeQuery, pq.Array(routeProbes)); err != nil {
		return err
	}
	r := db.router
	next := &routes{}
	workers := map[string]*worker{}
	for _, p := range placements {
		addr := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
		w, seen := workers[addr]
		if !seen {
			var err error
			switch {
			case p.Coordinator:
			case !p.Metadata:
				err = fmt.Errorf("persistence: the Citus worker %s has no copy of Citus's metadata (citus_activate_node)", addr)
			default:
				w, err = r.worker(ctx, p.Host, p.Port)
			}
			workers[addr] = w
			next.nodes = append(next.nodes, RouteNode{Addr: addr, Err: err})
		}
		next.ranges = append(next.ranges, shardRange{shard: p.Shard, min: p.Min, max: p.Max, worker: w})
	}
	for i, id := range routeProbes {
		if got := next.find(id); got == nil || got.shard != shards[i] {
			err := fmt.Errorf("persistence: Citus places the instance %q in shard %d, not where fsmd's hash does", id, shards[i])
			r.current.Store(&routes{err: err})
			return err
		}
	}
	sort.Slice(next.nodes, func(i, j int) bool { return next.nodes[i].Addr < next.nodes[j].Addr })
	r.current.Store(next)
	return nil
}

// worker is the worker at host:port, made on first use; nil with the reason when it does not
// answer from here (it is tried again at the next reading).
func (r *router) worker(ctx context.Context, host string, port int) (*worker, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r.mu.Lock()
	w := r.workers[addr]
	r.mu.Unlock()
	if w != nil {
		if err := w.pool.PingContext(pingCtx); err != nil {
			return nil, fmt.Errorf("persistence: the Citus worker %s does not answer from here: %w", addr, err)
		}
		return w, nil
	}
	p, err := r.openPool(host, port)
	if err != nil {
		return nil, err
	}
	if err := p.PingContext(pingCtx); err != nil {
		p.Close()
		return nil, fmt.Errorf("persistence: the Citus worker %s does not answer from here: %w", addr, err)
	}
	w = &worker{addr: addr, pool: p}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.workers[addr]; old != nil { // another reading made it meanwhile
		w.close()
		return old, nil
	}
	r.workers[addr] = w
	return w, nil
}

// openPool opens a pool of connections to the node at host:port, with the coordinator's settings
// otherwise.
func (r *router) openPool(host string, port int) (*sqlx.DB, error) {
	cfg := r.cfg.Clone()
	cfg.Host, cfg.Port, cfg.Multi = host, uint16(port), nil
	c, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	p := sqlx.NewDb(sql.OpenDB(c), "postgres")
	boundPostgresPool(p)
	return p, nil
}

func (w *worker) close() { w.pool.Close() }

// eventWorker is the worker the routed queries of instance id go to; nil: through the coordinator.
func (db *DB) eventWorker(id string) *worker {
	if db.router == nil {
		return nil
	}
	if r := db.router.current.Load().find(id); r != nil {
		return r.worker
	}
	return nil
}

// find is the shard whose range holds id's hash (nil: none does).
func (rs *routes) find(id string) *shardRange {
	h := hashText(id)
	i := sort.Search(len(rs.ranges), func(i int) bool { return rs.ranges[i].max >= h })
	if i < len(rs.ranges) && rs.ranges[i].min <= h {
		return &rs.ranges[i]
	}
	return nil
}

// getOf is getContext for a query about instance id alone: on Citus, outside a transaction,
// straight on the instance's worker (routedGet). An event's statements use it (the instance's
// read, its Idempotency-Key's earlier answer, its write), so that an event does not pass through
// the coordinator, whether or not the process has its instance cached.
func getOf(ctx context.Context, ex Executor, id string, dest any, query string, args ...any) error {
	if db, ok := ex.(*DB); ok && db.router != nil {
		return db.routedGet(ctx, id, dest, query, args...)
	}
	return getContext(ctx, ex, dest, query, args...)
}

// routedGet runs query, about instance id alone, and scans its row into dest:
// straight on the instance's worker, unless this process cannot reach it (then on the
// coordinator, which routes it there).
func (db *DB) routedGet(ctx context.Context, id string, dest any, query string, args ...any) error {
	if w := db.eventWorker(id); w != nil {
		observe(db, query, args)
		err := sqlx.GetContext(ctx, w.pool, dest, q(Postgres, query), args...)
		if err == nil || ctx.Err() != nil || !isUnavailable(err) {
			return err
		}
		db.router.unroute(w) // out of reach from here; the coordinator may not be
		if !NeverSent(err) {
			return err // sent, perhaps run: the caller finds out
		}
		// Nothing reached the worker: the coordinator takes the query.
	}
	return getContext(ctx, db, dest, query, args...)
}

// unroute sends the queries of w's shards through the coordinator until the next reading of the
// routes: w failed to answer one (routedGet).
func (r *router) unroute(w *worker) {
	for {
		old := r.current.Load()
		next := &routes{ranges: slices.Clone(old.ranges), nodes: old.nodes}
		for i := range next.ranges {
			if next.ranges[i].worker == w {
				next.ranges[i].worker = nil
			}
		}
		if r.current.CompareAndSwap(old, next) {
			return
		}
	}
}

// EventRoutes tells which nodes hold instances, and which of them fsmd cannot reach (their
// instances' events go through the coordinator); or, as an error, why every event goes through the
// coordinator. Nothing unless the database is Citus.
func (db *DB) EventRoutes() ([]RouteNode, error) {
	if db.router == nil {
		return nil, nil
	}
	rs := db.router.current.Load()
	return rs.nodes, rs.err
}

// close stops the readings and closes the workers' pools.
func (r *router) close() {
	r.stop()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		w.close()
	}
}
