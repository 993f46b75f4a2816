package service

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// poll runs rounds of a background worker until ctx ends: a full round (batch rows) is followed by
// another at once, else by a pause of every, cut short by wake (nil: none); a failed round by a
// pause doubling from every up to maxWait, logged with what.
func (s *Service) poll(ctx context.Context, what string, every, maxWait time.Duration, batch int, wake <-chan struct{},
	once func(context.Context) (int, error)) {
	failures := 0
	for ctx.Err() == nil {
		n, err := once(ctx)
		wait := every
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = min(every<<min(failures, 10), maxWait)
			s.log.Error(what, slog.Any("error", err), slog.Duration("retry_in", wait))
		case err == nil && n == batch:
			failures = 0
			continue // there may be more
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(wait):
		}
	}
}

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
