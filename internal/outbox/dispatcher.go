package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Dispatcher delivers the outbox's rows: it claims due rows, POSTs each to its webhook, and
// records the outcome. Every process runs one (Run); they share the work through the database.
type Dispatcher struct {
	db       *persistence.DB
	cfg      Config
	client   *http.Client
	guard    *guard
	breakers *breakers
	log      *slog.Logger
	metrics  *metrics
	wake     chan struct{}
	running  atomic.Bool
	stats    struct{ delivered, failed, dead, released atomic.Int64 }
}

// New makes a dispatcher over db. The configuration's zero fields take their defaults; an invalid
// configuration (an empty secret, say) is an error.
func New(db *persistence.DB, cfg Config) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &Dispatcher{db: db, cfg: cfg, guard: newGuard(cfg.Allow, cfg.Deny), log: cfg.Logger,
		wake: make(chan struct{}, 1)}
	var err error
	if d.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	d.breakers = newBreakers(cfg.BreakerThreshold, cfg.BreakerCooldown, d.breakerChanged)
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, Control: d.guard.control}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would connect to the destination, past the guard
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           4 * cfg.Concurrency,
		MaxIdleConnsPerHost:    cfg.Concurrency,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	d.client = &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// A redirect is not followed: the receiver's answer is the 3xx, a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d, nil
}

// Wake makes the dispatcher look for due rows now rather than at its next poll: the event path
// calls it after committing a transition with outbox rows. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Stats counts what the dispatcher did since it was made.
type Stats struct {
	Delivered int64 // attempts answered 2xx (the rows are deleted)
	Failed    int64 // failed attempts that will be retried
	Dead      int64 // rows given up on
	Released  int64 // claimed rows given back unsent (a breaker opened, or the dispatcher stopped)
}

// Stats returns the dispatcher's counts.
func (d *Dispatcher) Stats() Stats {
	return Stats{Delivered: d.stats.delivered.Load(), Failed: d.stats.failed.Load(), Dead: d.stats.dead.Load(),
		Released: d.stats.released.Load()}
}

// BreakerState returns the state of the circuit breaker of a destination (see Destination):
// BreakerClosed, BreakerOpen or BreakerHalfOpen.
func (d *Dispatcher) BreakerState(destination string) string {
	return d.breakers.state(destination, d.cfg.Now())
}

// outcome is what became of one claimed row.
type outcome int

const (
	delivered outcome = iota
	failed            // to be retried
	dead              // given up on: refused, or the last attempt
	released          // given back unsent
)

// result is one claimed row's outcome.
type result struct {
	row     persistence.OutboxRow
	outcome outcome
	err     string                  // failed, dead
	at      time.Time               // when the attempt was made
	next    time.Time               // failed, released: when the row is due again
	onDead  *persistence.MessageRow // dead: the webhook's on_dead message, written with the dead letter
}

// Run delivers until ctx ends, then gives back the rows it holds and returns ctx's error. A
// dispatcher runs once at a time.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("outbox: the dispatcher runs already")
	}
	defer d.running.Store(false)
	slots := make(chan struct{}, d.cfg.Concurrency) // one per delivery in flight, freed once recorded
	results := make(chan result, d.cfg.Concurrency)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.record(results, slots)
	}()
	var deliveries sync.WaitGroup
	stop := func() error {
		deliveries.Wait()
		close(results)
		<-recorded
		return ctx.Err()
	}
	poll := time.NewTimer(0)
	defer poll.Stop()
	lastRepair := d.cfg.Now()
	for {
		if ctx.Err() != nil {
			return stop()
		}
		if now := d.cfg.Now(); now.Sub(lastRepair) >= d.cfg.Lease {
			lastRepair = now
			d.repair(ctx)
		}
		want := min(cap(slots)-len(slots), d.cfg.BatchSize)
		var got int
		if want > 0 {
			rows, err := d.claim(ctx, want)
			if err != nil && ctx.Err() == nil {
				d.log.Error("outbox: claiming deliveries failed", slog.Any("error", err))
			}
			for _, row := range rows {
				slots <- struct{}{}
				deliveries.Go(func() { results <- d.deliver(ctx, row) })
			}
			got = len(rows)
		}
		if got > 0 && got == want {
			continue // there may be more due
		}
		poll.Reset(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return stop()
		case <-d.wake:
		case <-poll.C:
		}
	}
}

// claim claims up to n due rows, leaving out the destinations whose breaker is open.
func (d *Dispatcher) claim(ctx context.Context, n int) ([]persistence.OutboxRow, error) {
	now := d.cfg.Now()
	p := persistence.OutboxClaimParams{Now: now, LeaseUntil: now.Add(d.cfg.Lease), Claim: token(), Limit: n,
		Skip: d.breakers.skip(now)}
	var rows []persistence.OutboxRow
	err := d.db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
		rows, err = persistence.OutboxClaim(ctx, tx, p)
		return err
	})
	return rows, err
}

// repair makes the earliest waiting row of an instance and webhook pending where none is: see
// persistence.OutboxPromoteOrphans.
func (d *Dispatcher) repair(ctx context.Context) {
	var n int64
	err := d.db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
		n, err = persistence.OutboxPromoteOrphans(ctx, tx)
		return err
	})
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Error("outbox: repairing the order of deliveries failed", slog.Any("error", err))
	case n > 0:
		d.log.Warn("outbox: deliveries were waiting behind none; they are pending now", slog.Int64("deliveries", n))
	}
}

// token is a random claim token.
func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deliver makes one attempt of a claimed row.
func (d *Dispatcher) deliver(ctx context.Context, row persistence.OutboxRow) result {
	now := d.cfg.Now()
	if ok, retry := d.breakers.allow(row.Destination, now); !ok {
		return result{row: row, outcome: released, at: now, next: retry}
	}
	res := d.attempt(ctx, row, now)
	switch {
	case res.outcome == delivered:
		d.breakers.success(row.Destination)
	case res.outcome == released: // canceled: neither a success nor a failure
		d.breakers.done(row.Destination)
	case res.outcome == dead && res.refused:
		d.breakers.done(row.Destination)
	default:
		d.breakers.failure(row.Destination, d.cfg.Now())
	}
	return res.result
}

// attemptResult is a result and whether the destination was refused (which says nothing about the
// receiver's health).
type attemptResult struct {
	result
	refused bool
}

// attempt POSTs a row to its webhook and classifies the answer.
func (d *Dispatcher) attempt(ctx context.Context, row persistence.OutboxRow, now time.Time) attemptResult {
	r := attemptResult{result: result{row: row, at: now}}
	fail := func(format string, args ...any) attemptResult {
		r.err = clean(fmt.Sprintf(format, args...))
		attempts := row.Attempts + 1
		if attempts >= d.cfg.MaxAttempts {
			r.outcome = dead
			r.err += fmt.Sprintf(" (attempt %d of %d: dead)", attempts, d.cfg.MaxAttempts)
			return r
		}
		r.outcome, r.next = failed, d.cfg.Now().Add(d.backoff(attempts))
		return r
	}
	refuse := func(err error) attemptResult {
		r.outcome, r.refused, r.err = dead, true, clean(err.Error())
		return r
	}
	if err := machine.CheckWebhookURL(row.URL); err != nil {
		return refuse(err)
	}
	u, _ := url.Parse(row.URL)
	if err := d.guard.checkHost(u.Hostname()); err != nil {
		return refuse(err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, row.URL, bytes.NewReader(row.Body))
	if err != nil {
		return refuse(err)
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderDeliveryID, row.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(d.cfg.Secret, ts, row.Body))
	req.Header.Set(HeaderAttempt, strconv.Itoa(row.Attempts+1))
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		d.metrics.observe(time.Since(start))
		var refused *RefusedError
		switch {
		case errors.As(err, &refused):
			return refuse(refused)
		case ctx.Err() != nil: // the dispatcher stops: give the row back
			r.outcome, r.next = released, d.cfg.Now()
			return r
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return fail("no answer within %v", d.cfg.Timeout)
		}
		return fail("POST failed: %v", unwrapURLError(err))
	}
	// Read at most MaxResponseBytes of the answer, then close: the rest is never read.
	head, readErr := io.ReadAll(io.LimitReader(resp.Body, d.cfg.MaxResponseBytes))
	resp.Body.Close()
	d.metrics.observe(time.Since(start))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail("HTTP %d: %s", resp.StatusCode, snippet(head))
	}
	if readErr != nil && ctx.Err() == nil && reqCtx.Err() != nil {
		// A 2xx whose body did not arrive within the timeout: the receiver said yes; it counts.
		d.log.Debug("outbox: the answer's body was cut short", slog.String("delivery", row.ID), slog.Any("error", readErr))
	}
	r.outcome = delivered
	return r
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURLError drops net/http's "Post "URL": " prefix: last_error is shown with the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxErrorBytes bounds last_error; maxSnippet the part of an answer's body it shows.
const (
	maxErrorBytes = 1024
	maxSnippet    = 256
)

// snippet is the first bytes of an answer's body, for last_error.
func snippet(b []byte) string {
	if len(b) == 0 {
		return "(no body)"
	}
	s := string(b)
	if len(s) > maxSnippet {
		s = s[:maxSnippet] + "..."
	}
	return strings.TrimSpace(s)
}

// clean makes an error text storable and short: valid UTF-8, no control characters, at most
// maxErrorBytes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorBytes {
		s = strings.ToValidUTF8(s[:maxErrorBytes], "") + "..."
	}
	return s
}

// backoff is the pause after the nth failed attempt: full jitter, a random duration between 0
// and min(BackoffCap, BackoffBase * 2^(n-1)).
func (d *Dispatcher) backoff(n int) time.Duration {
	ceiling := d.cfg.BackoffBase
	for i := 1; i < n && ceiling < d.cfg.BackoffCap; i++ {
		if ceiling > d.cfg.BackoffCap/2 {
			ceiling = d.cfg.BackoffCap
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, d.cfg.BackoffCap)
	if ceiling <= 0 {
		return 0
	}
	return mrand.N(ceiling)
}

// record writes the outcomes of the deliveries as they finish, those that finished together in
// one transaction, frees their slots and wakes the claiming loop (the next row of an instance and
// webhook may be due now).
func (d *Dispatcher) record(results <-chan result, slots chan struct{}) {
	for first := range results {
		batch := []result{first}
	drain:
		for len(batch) < d.cfg.BatchSize {
			select {
			case r, ok := <-results:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		d.write(batch)
		for range batch {
			<-slots
		}
		d.Wake()
	}
}

// recordTimeout bounds the transaction that records a batch of outcomes. It runs whatever the
// dispatcher's context: outcomes are recorded while the dispatcher stops, too.
const recordTimeout = 30 * time.Second

func (d *Dispatcher) write(batch []result) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	d.onDeadMessages(ctx, batch)
	var lost, sent int
	err := d.db.WithTx(ctx, func(tx *persistence.Tx) error {
		lost, sent = 0, 0
		deliveredByClaim := map[string][]string{}
		for _, r := range batch {
			var err error
			switch r.outcome {
			case delivered:
				deliveredByClaim[r.row.Claim] = append(deliveredByClaim[r.row.Claim], r.row.ID)
			case failed, dead:
				err = persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: r.row.ID, Claim: r.row.Claim,
					At: r.at, NextTryAt: r.next, Error: r.err, Dead: r.outcome == dead, OnDead: r.onDead})
				if err == nil && r.onDead != nil {
					sent++
				}
			case released:
				err = persistence.OutboxRelease(ctx, tx, r.row.ID, r.row.Claim, r.next)
			}
			if errors.Is(err, persistence.ErrConflict) {
				lost++ // the lease ran out and another claim holds the row: it is that claim's now
			} else if err != nil {
				return err
			}
		}
		for claim, ids := range deliveredByClaim {
			n, err := persistence.OutboxDelete(ctx, tx, claim, ids)
			if err != nil {
				return err
			}
			lost += len(ids) - int(n)
		}
		return nil
	})
	if err != nil {
		// The rows stay claimed until their lease ends, and are attempted again then.
		d.log.Error("outbox: recording deliveries failed; they will be attempted again", slog.Int("deliveries", len(batch)), slog.Any("error", err))
		return
	}
	if lost > 0 {
		d.log.Warn("outbox: deliveries outlived their lease; another claim holds them", slog.Int("deliveries", lost))
	}
	if sent > 0 && d.cfg.OnDeadSent != nil {
		d.cfg.OnDeadSent()
	}
	for _, r := range batch {
		d.count(r)
	}
}

// onDeadMessages gives each dead result of batch whose webhook has an on_dead event the message
// that sends it (OnDeadMessage). A result whose definition version cannot be read is given back
// instead, not counted as an attempt and due again after a lease: a dead letter is never written
// without its message.
func (d *Dispatcher) onDeadMessages(ctx context.Context, batch []result) {
	if d.cfg.Definition == nil {
		return
	}
	for i := range batch {
		r := &batch[i]
		if r.outcome != dead {
			continue
		}
		def, err := d.cfg.Definition(ctx, r.row.Definition, r.row.Version)
		if err != nil {
			d.log.Error("outbox: a dead delivery's definition cannot be read for its webhook's on_dead; it is attempted again later",
				slog.String("delivery", r.row.ID), slog.String("definition", r.row.Definition),
				slog.Int("version", r.row.Version), slog.Any("error", err))
			r.outcome, r.next, r.err = released, d.cfg.Now().Add(d.cfg.Lease), ""
			continue
		}
		if r.onDead, err = OnDeadMessage(def, r.row, r.row.Attempts+1, r.err, d.cfg.Now()); err != nil {
			d.log.Error("outbox: the on_dead message of a dead delivery", slog.String("delivery", r.row.ID), slog.Any("error", err))
			r.outcome, r.next, r.err = released, d.cfg.Now().Add(d.cfg.Lease), ""
		}
	}
}

// OnDeadPayload is the payload of an on_dead event (machine.OnDeadPayload).
type OnDeadPayload struct {
	Webhook   string `json:"webhook"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// OnDeadMessage is the message that sends the on_dead event of row's webhook, when the delivery
// is dead after attempts attempts, the last failing with lastError: from the instance to itself,
// sent by the transition the delivery announced (row.Seq). Nil when the webhook has no on_dead
// (or def no longer has the webhook).
func OnDeadMessage(def *machine.Definition, row persistence.OutboxRow, attempts int, lastError string, now time.Time) (*persistence.MessageRow, error) {
	var event string
	for _, w := range def.Notify {
		if w.Name == row.Webhook {
			event = w.OnDead
		}
	}
	if event == "" {
		return nil, nil
	}
	payload, err := json.Marshal(OnDeadPayload{Webhook: row.Webhook, Attempts: attempts, LastError: lastError})
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	return &persistence.MessageRow{ID: ident.New(now), Sender: row.InstanceID, SenderSeq: row.Seq, Target: row.InstanceID,
		Event: event, Payload: payload, CreatedAt: now}, nil
}

// count updates the stats, the metrics and the log with a recorded outcome.
func (d *Dispatcher) count(r result) {
	log := func(level slog.Level, msg string) {
		d.log.Log(context.Background(), level, msg, slog.String("delivery", r.row.ID), slog.String("instance", r.row.InstanceID),
			slog.Int64("seq", r.row.Seq), slog.String("webhook", r.row.Webhook), slog.String("url", r.row.URL),
			slog.Int("attempt", r.row.Attempts+1), slog.String("error", r.err))
	}
	switch r.outcome {
	case delivered:
		d.stats.delivered.Add(1)
		d.metrics.outcome("delivered")
	case failed:
		d.stats.failed.Add(1)
		d.metrics.outcome("failed")
		log(slog.LevelDebug, "outbox: delivery failed; it will be retried")
	case dead:
		d.stats.dead.Add(1)
		d.metrics.outcome("dead")
		log(slog.LevelWarn, "outbox: delivery dead")
	case released:
		d.stats.released.Add(1)
		d.metrics.outcome("released")
	}
}

func (d *Dispatcher) breakerChanged(dest, from, to string) {
	d.metrics.breaker(from, to)
	level := slog.LevelInfo
	if to == BreakerOpen {
		level = slog.LevelWarn
	}
	d.log.Log(context.Background(), level, "outbox: circuit breaker "+to, slog.String("destination", dest), slog.String("was", from))
}
