package service

import (
	"context"
	"sync"
)

// turns makes the events of one instance take turns in this process (SendEvent): each is decided on
// the instance as the one before left it, instead of all being decided on the same read and all but
// one being decided again. Instances never wait for each other: there is a turn per instance with
// events in flight, forgotten when the last leaves. A wait ends with its request.
type turns struct {
	mu sync.Mutex
	m  map[string]*turn
}

type turn struct {
	held    chan struct{} // a slot, full while an event of the instance has its turn: FIFO for waiters
	waiting int           // events holding or waiting for the turn; guarded by turns.mu
}

// take waits for the turn of instance id, and returns its release; ctx's error when ctx ends first.
func (ts *turns) take(ctx context.Context, id string) (release func(), err error) {
	ts.mu.Lock()
	if ts.m == nil {
		ts.m = map[string]*turn{}
	}
	t := ts.m[id]
	if t == nil {
		t = &turn{held: make(chan struct{}, 1)}
		ts.m[id] = t
	}
	t.waiting++
	ts.mu.Unlock()
	leave := func() {
		ts.mu.Lock()
		if t.waiting--; t.waiting == 0 {
			delete(ts.m, id)
		}
		ts.mu.Unlock()
	}
	select {
	case t.held <- struct{}{}:
		return func() { <-t.held; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
