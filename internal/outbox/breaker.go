package outbox

import (
	"sync"
	"time"
)

// The states of a circuit breaker.
const (
	BreakerClosed   = "closed"    // deliveries go through
	BreakerOpen     = "open"      // no delivery goes through until the cool-down ends
	BreakerHalfOpen = "half-open" // the cool-down ended: one attempt goes through, and decides
)

// breaker is the circuit breaker of one destination.
type breaker struct {
	state     string
	failures  int       // consecutive failed attempts
	openUntil time.Time // open: when the cool-down ends
	probing   bool      // half-open: the one attempt is in flight
}

// breakers are the circuit breakers of a dispatcher, by destination. A destination without one is
// closed.
type breakers struct {
	threshold int
	cooldown  time.Duration
	// onChange is told when a breaker opens or closes (for logs and metrics).
	onChange func(destination, from, to string)

	mu sync.Mutex
	m  map[string]*breaker
}

func newBreakers(threshold int, cooldown time.Duration, onChange func(destination, from, to string)) *breakers {
	return &breakers{threshold: threshold, cooldown: cooldown, onChange: onChange, m: map[string]*breaker{}}
}

// skip lists the destinations whose rows are not to be claimed now: open breakers whose
// cool-down runs, and half-open ones whose probe is in flight.
func (bs *breakers) skip(now time.Time) []string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	var out []string
	for dest, b := range bs.m {
		if b.state == BreakerOpen && now.Before(b.openUntil) || b.state == BreakerHalfOpen && b.probing {
			out = append(out, dest)
		}
	}
	return out
}

// allow reports whether an attempt to dest may go now; when not, retry says when one may.
func (bs *breakers) allow(dest string, now time.Time) (ok bool, retry time.Time) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[dest]
	if b == nil || b.state == BreakerClosed {
		return true, time.Time{}
	}
	if b.state == BreakerOpen {
		if now.Before(b.openUntil) {
			return false, b.openUntil
		}
		bs.set(dest, b, BreakerHalfOpen)
	}
	if b.probing {
		return false, now // skip leaves the destination out of the claims while its probe runs
	}
	b.probing = true
	return true, time.Time{}
}

// success records an attempt to dest that was answered 2xx: the breaker closes.
func (bs *breakers) success(dest string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[dest]
	if b == nil {
		return
	}
	if b.state != BreakerClosed {
		bs.set(dest, b, BreakerClosed)
	}
	delete(bs.m, dest) // closed with no failure: as if it had never failed
}

// failure records a failed attempt to dest: the threshold-th consecutive one opens the breaker,
// and so does a failed probe.
func (bs *breakers) failure(dest string, now time.Time) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[dest]
	if b == nil {
		b = &breaker{state: BreakerClosed}
		bs.m[dest] = b
	}
	b.failures++
	switch {
	case b.state == BreakerHalfOpen, b.state == BreakerClosed && b.failures >= bs.threshold:
		b.openUntil = now.Add(bs.cooldown)
		bs.set(dest, b, BreakerOpen)
	case b.state == BreakerOpen:
		// An attempt begun before the breaker opened: the cool-down runs from its end.
		b.openUntil = now.Add(bs.cooldown)
	}
}

// done ends an attempt that neither succeeded nor failed (it was canceled): a probe may go again.
func (bs *breakers) done(dest string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.m[dest]; b != nil {
		b.probing = false
	}
}

// set moves b to state; the caller holds mu.
func (bs *breakers) set(dest string, b *breaker, state string) {
	from := b.state
	b.state, b.probing = state, false
	if bs.onChange != nil && from != state {
		bs.onChange(dest, from, state)
	}
}

// state is dest's breaker state.
func (bs *breakers) state(dest string, now time.Time) string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[dest]
	switch {
	case b == nil:
		return BreakerClosed
	case b.state == BreakerOpen && !now.Before(b.openUntil):
		return BreakerHalfOpen // it lets the next attempt through
	}
	return b.state
}
