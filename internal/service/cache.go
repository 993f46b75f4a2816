package service

import (
	"container/list"
	"sync"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// DefaultCacheBytes bounds the instance cache unless Options say otherwise.
const DefaultCacheBytes = 64 << 20

// cache keeps the rows of recently used instances as they were last read or written, so that an
// event can be decided without reading its instance first (see SendEvent): on PostgreSQL that is
// one round trip of two.
//
// It is never trusted, only tried: a row is committed data of some revision, and every change to an
// instance bumps its revision, so the cached row is the instance for as long as the database has it
// at that revision. An event accepted on a cached row is written with that revision as a condition,
// and a refusal is always decided again on a fresh read. A stale row (another process moved the
// instance) costs one round trip, never a wrong answer.
//
// Least recently used rows go first once the rows' bytes pass the bound.
type cache struct {
	mu    sync.Mutex
	max   int // bytes; 0 disables the cache
	size  int
	order *list.List // of *cached, most recently used first
	byID  map[string]*list.Element
}

type cached struct {
	row  persistence.InstanceRow
	size int
}

// A row costs its variable-length fields plus this much for the rest and the bookkeeping.
const cacheOverhead = 256

func newCache(maxBytes int) *cache {
	return &cache{max: max(maxBytes, 0), order: list.New(), byID: map[string]*list.Element{}}
}

func (c *cache) get(id string) (persistence.InstanceRow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return persistence.InstanceRow{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cached).row, true
}

// put keeps row, unless a later revision of the instance is kept already (two requests finishing
// out of order). row.Context must not be changed afterwards.
func (c *cache) put(row persistence.InstanceRow) {
	size := cacheOverhead + len(row.ID) + len(row.Definition) + len(row.State) + len(row.Context) + len(row.CreateHash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.max/64 { // an outsize context would push out many others: it is read each time
		c.remove(row.ID)
		return
	}
	if e, ok := c.byID[row.ID]; ok {
		old := e.Value.(*cached)
		if old.row.Revision > row.Revision {
			return
		}
		c.size += size - old.size
		old.row, old.size = row, size
		c.order.MoveToFront(e)
	} else {
		c.byID[row.ID] = c.order.PushFront(&cached{row: row, size: size})
		c.size += size
	}
	for c.size > c.max {
		c.remove(c.order.Back().Value.(*cached).row.ID)
	}
}

// drop forgets an instance: its row may not be the one the database has.
func (c *cache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(id)
}

func (c *cache) remove(id string) {
	if e, ok := c.byID[id]; ok {
		c.size -= e.Value.(*cached).size
		c.order.Remove(e)
		delete(c.byID, id)
	}
}
