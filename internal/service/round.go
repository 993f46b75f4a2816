package service

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// round is one round of a background worker (the timer scheduler, the message dispatcher): it
// handles rows, workers at a time (their decisions and writes are independent, so round trips
// overlap, and a row that spends its time budget delays the others less), starting at a place of
// its own (other processes may read the same rows). The first error stops the round: the next one
// tries again.
func round[R any](rows []R, workers int, handle func(R) error) error {
	rand.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, len(rows)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(rows); i = int(next.Add(1)) - 1 {
				if err := handle(rows[i]); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(len(rows)))
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
