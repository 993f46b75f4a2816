package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// alarmDef arms timers: open reminds after 1h; reminded escalates after 1h when ctx.escalate, or
// the escalation is refused (a dropped timer); twice has two timers of which the earlier wins.
const alarmDef = `name: alarm
initial: open
context:
  escalate: bool
  n: int
states:
  open:
    on:
      answer: answered
      remind: reminded
      split: twice
    timers:
      - {after: 1h, event: remind}
  reminded:
    on:
      answer: answered
      escalate_now:
        - to: escalated
          guard: ctx.escalate
    timers:
      - {after: 1h, event: escalate_now}
  twice:
    on:
      first: {to: twice, set: {n: ctx.n + 1}}
      second: {to: twice, set: {n: ctx.n + 100}}
    timers:
      - {after: 2h, event: second}
      - {after: 1h, event: first}
  escalated: {on: {answer: answered}}
  answered: {final: true}
`

// clock is a settable clock for a service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestTimers: timers are armed on entering a state and listed on the instance, never fire early,
// fire through the event path (audit source timer) and re-arm the next state's, are cancelled by
// leaving the state, fire an instance's earliest first after downtime, and a refused timer event is
// dropped with its reason, once.
func TestTimers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
		t0 := c.now()
		svc := service.New(db, service.Options{Now: c.now})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, alarmDef)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "b", "d"} {
			create(t, svc, "alarm", id)
		}
		if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "alarm", ID: "e", Context: map[string]any{"escalate": true}}); err != nil {
			t.Fatal(err)
		}
		timersOf := func(id string) string {
			t.Helper()
			inst, err := svc.GetInstance(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, tm := range inst.Timers {
				parts = append(parts, tm.Event+"@"+tm.DueAt.Sub(t0).String())
			}
			return inst.State + " [" + strings.Join(parts, " ") + "]"
		}
		fire := func(want int) {
			t.Helper()
			n, err := svc.FireDue(ctx, service.TimerOptions{})
			if err != nil || n != want {
				t.Fatalf("FireDue: %d instances, %v; want %d", n, err, want)
			}
		}
		if got := timersOf("a"); got != "open [remind@1h0m0s]" {
			t.Fatalf("a after creation: %s", got)
		}
		send(t, svc, "b", "answer") // leaves open: its timer is cancelled
		send(t, svc, "d", "split")
		if got := timersOf("d"); got != "twice [first@1h0m0s second@2h0m0s]" {
			t.Fatalf("d in twice: %s", got)
		}

		c.advance(59 * time.Minute)
		fire(0) // none early

		c.advance(4 * time.Hour) // downtime: everything is overdue
		fire(3)                  // a, e: remind; d: first (the earlier), which re-enters twice
		for id, want := range map[string]string{
			"a": "reminded [escalate_now@5h59m0s]", // armed from when it fired, 4h59m after t0
			"e": "reminded [escalate_now@5h59m0s]",
			"b": "answered []",
			"d": "twice [first@5h59m0s second@6h59m0s]",
		} {
			if got := timersOf(id); got != want {
				t.Errorf("%s: %s, want %s", id, got, want)
			}
		}
		h, err := svc.History(ctx, "d", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if last := h.Items[len(h.Items)-1]; last.Event != "first" || last.Source != "timer" || last.Dropped != "" {
			t.Errorf("d's last row: %+v, want first from a timer", last)
		}

		c.advance(time.Hour)
		fire(3) // a's escalation is refused (no escalate): dropped; e escalates; d: first again
		if got := timersOf("a"); got != "reminded []" {
			t.Errorf("a after the refused escalation: %s", got)
		}
		if got := timersOf("e"); got != "escalated []" {
			t.Errorf("e: %s", got)
		}
		h, err = svc.History(ctx, "a", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		last := h.Items[len(h.Items)-1]
		if last.Event != "escalate_now" || last.Source != "timer" || last.From != "reminded" || last.To != "reminded" ||
			!strings.HasPrefix(last.Dropped, "guard_rejected: ") || len(h.Items) != 2 {
			t.Errorf("a's history: %+v, want the remind row, then escalate_now dropped (guard_rejected)", h.Items)
		}
		fire(0) // the dropped timer is gone: no loop

		// A timer whose event the state does not handle (as one left over from an older version
		// would be): dropped with the reason, not retried.
		err = db.WithTx(ctx, func(tx *persistence.Tx) error {
			return persistence.TimersReplace(ctx, tx, "e", false, 99, []persistence.Arm{{Event: "remind", DueAt: c.now()}})
		})
		if err != nil {
			t.Fatal(err)
		}
		fire(1)
		h, err = svc.History(ctx, "e", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if last := h.Items[len(h.Items)-1]; last.Event != "remind" || !strings.HasPrefix(last.Dropped, "invalid_transition: ") {
			t.Errorf("e's last row: %+v, want remind dropped (invalid_transition)", last)
		}
		fire(0)
		if got := timersOf("e"); got != "escalated []" {
			t.Errorf("e after the unhandled timer: %s", got)
		}
	})
}

// TestTimerRetry: a timer that fails to fire for a reason of its own (here the process does not
// have its definition loaded) is put off with backoff, keeps its attempts and error, and fires once
// the reason is gone.
func TestTimerRetry(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
		svc := service.New(db, service.Options{Now: c.now})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, alarmDef)); err != nil {
			t.Fatal(err)
		}
		create(t, svc, "alarm", "r")
		blind := service.New(db, service.Options{Now: c.now}) // knows no definition
		t.Cleanup(blind.Close)
		c.advance(time.Hour)
		if n, err := blind.FireDue(ctx, service.TimerOptions{Backoff: time.Minute, MaxWait: time.Hour}); err != nil || n != 1 {
			t.Fatalf("FireDue without the definition: %d, %v", n, err)
		}
		inst, err := svc.GetInstance(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if len(inst.Timers) != 1 || inst.Timers[0].Attempts != 1 || !strings.Contains(inst.Timers[0].LastError, "alarm") ||
			inst.Timers[0].NextTryAt.Before(c.now().Add(30*time.Second)) || inst.State != "open" {
			t.Fatalf("after the failure: %s %+v, want open with the timer put off 30 s to 1 min", inst.State, inst.Timers)
		}
		if n, err := svc.FireDue(ctx, service.TimerOptions{}); err != nil || n != 0 {
			t.Fatalf("FireDue before its next try: %d instances, %v; want none", n, err)
		}
		if inst, _ := svc.GetInstance(ctx, "r"); inst.State != "open" {
			t.Fatalf("fired before its next try: %s", inst.State)
		}
		c.advance(time.Minute)
		if n, err := svc.FireDue(ctx, service.TimerOptions{}); err != nil || n != 1 {
			t.Fatalf("FireDue: %d, %v", n, err)
		}
		if inst, _ := svc.GetInstance(ctx, "r"); inst.State != "reminded" {
			t.Fatalf("after the next try: %s, want reminded", inst.State)
		}
	})
}

// slowTimerDef has a timer whose event's guard loops ctx.k² times (10^10 with k 100000), and a
// definition without timers for the events sent meanwhile.
const slowTimerDef = `name: slowtimer
initial: waiting
context: {k: int}
states:
  waiting:
    on:
      tick:
        to: waiting
        guard: 'let r = 1..ctx.k; all(r, {all(r, {true})})'
    timers:
      - {after: 1h, event: tick}
`

const pingerDef = `name: pinger
initial: idle
states:
  idle: {on: {ping: idle}}
`

// TestSlowTimerHoldsNoLock: a timer whose event spends its whole time budget is dropped
// (expression_failed), and meanwhile the events of another instance are not delayed: the scheduler
// decides with no lock on it (on SQLite with no transaction, so not SQLite's write lock; on
// PostgreSQL only the instances of its batch are locked). Before, it decided in the
// transaction of its round, which on SQLite held the write lock for the whole evaluation.
func TestSlowTimerHoldsNoLock(t *testing.T) {
	// Not parallel: it measures latencies.
	const budget = 400 * time.Millisecond
	for _, d := range []struct {
		name string
		open func(testing.TB) *persistence.DB
	}{{"postgres", dbtest.Postgres}, {"sqlite", dbtest.SQLite}} {
		t.Run(d.name, func(t *testing.T) { testSlowTimer(t, d.open(t), budget) })
	}
}

func testSlowTimer(t *testing.T, db *persistence.DB, budget time.Duration) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	svc := service.New(db, service.Options{Now: c.now, ExprBudget: budget})
	t.Cleanup(svc.Close)
	if err := svc.Register(ctx, set(t, slowTimerDef, pingerDef)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "slowtimer", ID: "slow", Context: map[string]any{"k": 100_000}}); err != nil {
		t.Fatal(err)
	}
	create(t, svc, "pinger", "other")
	send(t, svc, "other", "ping")
	c.advance(time.Hour)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		n, err := svc.FireDue(ctx, service.TimerOptions{})
		if err == nil && n != 1 {
			err = fmt.Errorf("FireDue: %d instances, want 1", n)
		}
		done <- err
	}()
	var slowest time.Duration
	sent := 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default: // an accepted event: on SQLite it needs the write lock
			began := time.Now()
			send(t, svc, "other", "ping")
			slowest = max(slowest, time.Since(began))
			sent++
		}
	}
	took := time.Since(start)
	if took < budget*9/10 || took > budget+time.Second {
		t.Errorf("the round took %v, want about the budget (%v)", took, budget)
	}
	t.Logf("round %v; %d events meanwhile, the slowest %v", took, sent, slowest)
	// Held, the lock would hold an event for about the whole budget; half of it leaves room for a
	// loaded machine (an event took 130 ms at a load average of 11) and still catches that.
	if sent == 0 || slowest > budget/2 {
		t.Errorf("events on another instance: %d sent, the slowest took %v while the timer's event was decided", sent, slowest)
	}
	h, err := svc.History(ctx, "slow", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Items) != 1 || !strings.HasPrefix(h.Items[0].Dropped, "expression_failed: ") || !strings.Contains(h.Items[0].Dropped, "time budget exceeded") {
		t.Errorf("slow's history: %+v, want the tick dropped (expression_failed, time budget exceeded)", h.Items)
	}
}
