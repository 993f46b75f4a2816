package service

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestTurns: the events of one instance take turns, in order of arrival; another instance does not
// wait for them; a wait ends with its context; nothing is kept once the last leaves.
func TestTurns(t *testing.T) {
	t.Parallel()
	var ts turns
	ctx := context.Background()
	release, err := ts.take(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ts.take(ctx, "b") // another instance: at once
	if err != nil {
		t.Fatal(err)
	}
	other()

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := ts.take(short, "a"); err != context.DeadlineExceeded {
		t.Fatalf("a second take of a held turn: %v, want the context's deadline", err)
	}

	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range 3 {
		wg.Go(func() {
			r, err := ts.take(ctx, "a")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			r()
		})
		time.Sleep(10 * time.Millisecond) // they queue in this order
	}
	release()
	wg.Wait()
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Errorf("turns taken in order %v, want [0 1 2]", order)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.m) != 0 {
		t.Errorf("%d turns kept after every event left", len(ts.m))
	}
}
