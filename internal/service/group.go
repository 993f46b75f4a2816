package service

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Group commit: the events decided at the same time for different instances share one commit.
// An event written on its own pays a commit of its own, one WAL flush (an fsync) each: on SQLite,
// with its one writer, the flushes follow one another and bound the events per second. Here each
// event's write (the update of its instance and its audit row, with its timers, outbox rows and
// messages) is queued; a writer goroutine takes what is queued, up to maxGroup events and
// groupBytes of their data, without waiting for more (at low load a group is the one event there
// is, written as before, and no latency is added), and writes them in one transaction
// (audit.AppendGroup, persistence.AdvanceGroup); while it commits, the next events queue and form
// the next group.
//
// Guarantees, each event as it would have without the group:
//   - it is answered only once the transaction holding it has committed (durably, with the
//     database's synchronous commit), or with the error it would have had alone: ErrConflict when
//     its instance moved on (decided again on a fresh read, event.go), its own statement's error
//     (a key taken...), which fails no other event of the group, or the transaction's error, which
//     is every event's in it (a broken connection during COMMIT leaves each event's outcome to be
//     resolved from its audit row, outcome.go, as it would alone);
//   - a request whose context ends while its event is still queued withdraws it: nothing is
//     written and it is answered with its context's error; once the writer has taken it, its
//     cancellation cancels the group's statements, as it would its own write alone, and the group
//     is written again without it (commit); a commit begun is not cut short, and the outcome is
//     waited for, so that the answer and the cache say what was written.
//
// The queue holds at most groupQueue events: a request beyond waits to enqueue, under its context.
// On PostgreSQL several writers take groups from it (groupWriters).

// DefaultGroupCommit is how many events one commit may hold unless Options say otherwise, on
// SQLite.
const DefaultGroupCommit = 64

// defaultGroupCommit is Options.GroupCommit's default on d: on SQLite, whose one writer pays an
// fsync per commit, group commit about doubled the events per second; on PostgreSQL, which flushes
// the commits of concurrent sessions together already, it measured no faster (0.75 to 0.97 of
// them on the 2 cores here: bench/README.md), so it is off there unless asked for.
func defaultGroupCommit(d persistence.Dialect) int {
	if d == persistence.Postgres {
		return 1
	}
	return DefaultGroupCommit
}

// groupWriters is how many writers take groups from the queue at once on d: one on SQLite, which
// has one writer anyway; on PostgreSQL four, so that groups are written on several connections at
// once (with one, group commit there ran at half the events per second of no group commit; with
// four at three quarters: bench/README.md). The instances of two groups in flight never meet: an
// instance's events take turns, so it has a write in one group at most.
func groupWriters(d persistence.Dialect) int {
	if d == persistence.Postgres {
		return 4
	}
	return 1
}

// groupBytes bounds the data of the events of one group (the contexts, payloads and effects they
// write), so that a group of large events stays a few MiB in memory and in one transaction.
const groupBytes = 4 << 20

// groupQueue is how many events may wait for the writer.
const groupQueue = 1024

// committer is the queue of event writes and its writer goroutine.
type committer struct {
	db       *persistence.DB
	maxGroup int
	queue    chan *groupWrite
	mu       sync.RWMutex // held shared to enqueue, exclusively to close the queue
	closed   bool         // guarded by mu: writes go their own way (InstanceAdvance) after close
	done     chan struct{}
	// sizes observes how many events each transaction of the writers held: group commit's effect,
	// served by /metrics (fsmd_group_commit_events) once RegisterMetrics registers it.
	sizes prometheus.Histogram
}

// groupWrite is one event's write, waiting for its group.
type groupWrite struct {
	ctx   context.Context // the request's
	item  persistence.Advance
	size  int
	state atomic.Int32 // writeQueued, then writeTaken by the writer or writeWithdrawn by the request
	err   chan error   // the outcome, once; buffered
}

// The states of a groupWrite.
const (
	writeQueued int32 = iota
	writeTaken
	writeWithdrawn
)

// newCommitter starts the writers (at least one) of groups of at most maxGroup events (2 or more).
func newCommitter(db *persistence.DB, maxGroup, writers int) *committer {
	c := idleCommitter(db, maxGroup)
	var wg sync.WaitGroup
	for range max(writers, 1) {
		wg.Go(c.loop)
	}
	go func() {
		wg.Wait()
		close(c.done)
	}()
	return c
}

// idleCommitter is a committer whose writers are not started yet.
func idleCommitter(db *persistence.DB, maxGroup int) *committer {
	return &committer{db: db, maxGroup: maxGroup, queue: make(chan *groupWrite, groupQueue), done: make(chan struct{}),
		sizes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fsmd_group_commit_events",
			Help:    "How many events each group commit of this process held (1: an event written alone).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		})}
}

// advance writes the update u and its audit row r in the next group, and returns once it is
// committed, with what audit.AppendWithUpdate would have returned for it alone.
func (c *committer) advance(ctx context.Context, u persistence.InstanceUpdateParams, r audit.Row) error {
	w := &groupWrite{ctx: ctx, item: persistence.Advance{Update: u, Row: r}, size: writeSize(u, r), err: make(chan error, 1)}
	c.mu.RLock()
	if c.closed { // the service is closing: the event is written alone
		c.mu.RUnlock()
		return audit.AppendWithUpdate(ctx, c.db, u, r)
	}
	select {
	case c.queue <- w:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-w.err:
		return err
	case <-ctx.Done():
		if w.state.CompareAndSwap(writeQueued, writeWithdrawn) {
			return ctx.Err() // not taken: never written
		}
		return <-w.err // taken: its group is being written (see commit), and says what became of it
	}
}

// writeSize is about how many bytes an event's write holds.
func writeSize(u persistence.InstanceUpdateParams, r audit.Row) int {
	n := 512 + len(u.Context) + len(u.Children) + len(r.Guards) + len(r.Payload) + len(r.ContextBefore) + len(r.ContextAfter)
	for _, o := range u.Outbox {
		n += len(o.Body) + len(o.URL)
	}
	for _, m := range u.Messages {
		n += len(m.Payload)
	}
	return n
}

// loop is a writer's work: groups, until the queue is closed and empty.
func (c *committer) loop() {
	group := make([]*groupWrite, 0, c.maxGroup)
	var next *groupWrite // the write that did not fit in the group before
	for {
		if next == nil {
			w, ok := <-c.queue
			if !ok {
				return
			}
			next = w
		}
		group = append(group[:0], next)
		size := next.size
		next = nil
	fill:
		for len(group) < c.maxGroup {
			select {
			case w, ok := <-c.queue:
				if !ok {
					break fill
				}
				if size+w.size > groupBytes {
					next = w
					break fill
				}
				group = append(group, w)
				size += w.size
			default: // nothing more queued: no waiting for more
				break fill
			}
		}
		c.commit(group)
		clear(group) // the writes are the requests' now: keep no reference
	}
}

// commit writes the group's writes that are not withdrawn, in one transaction, and hands each its
// outcome.
//
// A request canceled while its write is being written cancels the group's statements, as it would
// cancel its own write alone (nothing of it is written, and it is answered with its context's
// error); the group is then written again without it, so that the others are delayed by a retry,
// never failed. A commit begun is not cut short (persistence.WithTx): what committed is answered as
// written, canceled or not.
func (c *committer) commit(group []*groupWrite) {
	taken := make([]*groupWrite, 0, len(group))
	for _, w := range group {
		if w.state.CompareAndSwap(writeQueued, writeTaken) {
			taken = append(taken, w)
		}
	}
	for len(taken) > 0 { // each round answers at least the writes whose request was canceled
		items := make([]persistence.Advance, len(taken))
		parent := context.Background()
		if len(taken) == 1 { // alone: under its request's context, exactly as without a group
			parent = taken[0].ctx
		}
		gctx, cancel := context.WithCancel(parent)
		stops := make([]func() bool, len(taken))
		for i, w := range taken {
			items[i] = w.item
			stops[i] = context.AfterFunc(w.ctx, cancel)
		}
		c.sizes.Observe(float64(len(items)))
		errs := audit.AppendGroup(gctx, c.db, items)
		for _, stop := range stops {
			stop()
		}
		canceled := gctx.Err() != nil
		cancel()
		var again []*groupWrite
		for i, w := range taken {
			err := errs[i]
			switch {
			case canceled && cutShort(err) && w.ctx.Err() != nil:
				w.err <- w.ctx.Err() // its own cancellation: nothing written
			case canceled && cutShort(err):
				again = append(again, w) // another's cancellation cut it short: written again
			default:
				w.err <- err
			}
		}
		taken = again
	}
}

// cutShort reports whether err is a group's write canceled before it committed: nothing of it
// written. (A connection broken at the same time leaves the outcome to be resolved: not cut short.)
func cutShort(err error) bool {
	return errors.Is(err, context.Canceled) && !errors.Is(err, persistence.ErrUnavailable)
}

// close stops taking writes (the later ones are written alone), lets the writer write what is
// queued, and waits for it.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	<-c.done
}
