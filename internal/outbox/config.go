package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// Config configures a Dispatcher. Every field but Secret has a default (the zero value means it).
type Config struct {
	// Secret keys the HMAC-SHA256 signature of every delivery (Fsmd-Signature). Required: the
	// process's configuration, never part of a definition.
	Secret []byte

	// PollInterval is how often the dispatcher looks for due rows when nothing woke it (Wake, a
	// finished delivery). Default 1s.
	PollInterval time.Duration
	// BatchSize is the most rows claimed at once. Default 100.
	BatchSize int
	// Concurrency is the most deliveries in flight at once. Default 16.
	Concurrency int
	// Timeout bounds one attempt, from connecting to reading the answer: a receiver that hangs
	// fails the attempt then. Default 10s.
	Timeout time.Duration
	// MaxResponseBytes is how much of an answer's body is read (the rest is not; the first bytes
	// are kept in last_error when the attempt failed). Default 64 KiB.
	MaxResponseBytes int64
	// MaxAttempts is how many attempts a delivery gets before it is dead. Default 16.
	MaxAttempts int
	// BackoffBase and BackoffCap shape the pause after the nth failed attempt: a random duration
	// between 0 and min(BackoffCap, BackoffBase * 2^(n-1)) ("full jitter"). Defaults 1s and 1h.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// BreakerThreshold is how many consecutive failed attempts to a destination open its circuit
	// breaker. Default 5.
	BreakerThreshold int
	// BreakerCooldown is how long an open breaker stays open before it lets one attempt through.
	// Default 30s.
	BreakerCooldown time.Duration
	// Lease is how long a claimed row is held by its dispatcher before it is due again (should the
	// dispatcher die). It must exceed Timeout. Default Timeout + 30s.
	Lease time.Duration

	// Allow lists networks delivered to although they are refused by default (link-local
	// addresses and cloud metadata services) or by Deny: an address in Allow is never refused.
	Allow []netip.Prefix
	// Deny lists networks refused in addition to the default ones; PrivateNetworks, for instance,
	// refuses loopback and private addresses, which are allowed by default.
	Deny []netip.Prefix

	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Logger logs failed attempts (debug), dead letters and breaker changes (warn); slog.Default()
	// by default.
	Logger *slog.Logger
	// Metrics, when set, registers the dispatcher's metrics (fsmd_outbox_...).
	Metrics prometheus.Registerer

	// Definition returns a version of a definition. When a delivery is dead, its webhook's
	// on_dead is read there, and the message that sends it is written with the dead letter (see
	// OnDeadMessage). An error gives the delivery back unrecorded, due again after a lease.
	// Without it, no on_dead event is sent.
	Definition func(ctx context.Context, name string, version int) (*machine.Definition, error)
	// OnDeadSent, when set, is called after a commit that wrote on_dead messages (the local
	// message dispatcher's wake).
	OnDeadSent func()
}

// Defaults of Config.
const (
	DefaultPollInterval     = time.Second
	DefaultBatchSize        = 100
	DefaultConcurrency      = 16
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 64 << 10
	DefaultMaxAttempts      = 16
	DefaultBackoffBase      = time.Second
	DefaultBackoffCap       = time.Hour
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
	// defaultLeaseMargin is what the default Lease adds to Timeout.
	defaultLeaseMargin = 30 * time.Second
)

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.PollInterval, DefaultPollInterval)
	setInt(&c.BatchSize, DefaultBatchSize)
	setInt(&c.Concurrency, DefaultConcurrency)
	setDur(&c.Timeout, DefaultTimeout)
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	setInt(&c.MaxAttempts, DefaultMaxAttempts)
	setDur(&c.BackoffBase, DefaultBackoffBase)
	setDur(&c.BackoffCap, DefaultBackoffCap)
	setInt(&c.BreakerThreshold, DefaultBreakerThreshold)
	setDur(&c.BreakerCooldown, DefaultBreakerCooldown)
	setDur(&c.Lease, c.Timeout+defaultLeaseMargin)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports what is wrong with c, after the defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Secret) == 0 {
		errs = append(errs, errors.New("the webhook secret is empty: deliveries must be signed"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"PollInterval", c.PollInterval}, {"Timeout", c.Timeout}, {"BackoffBase", c.BackoffBase},
		{"BackoffCap", c.BackoffCap}, {"BreakerCooldown", c.BreakerCooldown}, {"Lease", c.Lease}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"BatchSize", c.BatchSize}, {"Concurrency", c.Concurrency}, {"MaxAttempts", c.MaxAttempts},
		{"BreakerThreshold", c.BreakerThreshold}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%d)", n.name, n.v))
		}
	}
	if c.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxResponseBytes is negative (%d)", c.MaxResponseBytes))
	}
	if c.BackoffCap < c.BackoffBase {
		errs = append(errs, fmt.Errorf("BackoffCap (%v) is less than BackoffBase (%v)", c.BackoffCap, c.BackoffBase))
	}
	if c.Lease <= c.Timeout {
		errs = append(errs, fmt.Errorf("the lease (%v) must exceed the timeout (%v): a row must not be claimed again while an attempt may still run", c.Lease, c.Timeout))
	}
	for _, p := range append(append([]netip.Prefix(nil), c.Allow...), c.Deny...) {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("network %v is not valid", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}
