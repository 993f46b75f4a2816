package machine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// slowYAML has a slow expression where an event evaluates one: a guard, a `set`, the `at` of the
// state it enters, and the `at` of the initial state. ctx.k (or event.k) 100000 makes each loop
// 10^10 times; 1 lets them hold at once.
const slowYAML = `name: slow
initial: a
context:
  k: int
events:
  go: {k: int}
states:
  a:
    on:
      go:
        - to: a
          guard: 'let r = 1..event.k; all(r, {all(r, {true})})'
      compute:
        to: a
        set: {k: 'let r = 1..ctx.k; count(r, {all(r, {true})})'}
      wait: b
      end: z
    timers:
      - at: 'let r = 1..ctx.k; all(r, {all(r, {true})}) ? now : now'
        event: go
  b:
    on: {go: b}
    timers:
      - at: 'let r = 1..ctx.k; all(r, {all(r, {true})}) ? now + duration("1h") : now'
        event: go
  z: {final: true}
`

// TestFireTimeBudget: each place an event evaluates an expression stops at the Limits' budget with
// expression_failed and "time budget exceeded", and says where; with small values the same events
// are accepted.
func TestFireTimeBudget(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("slow.yaml", []byte(slowYAML))
	if diags.Errors() > 0 {
		t.Fatalf("slow.yaml: %v", diags)
	}
	limits := machine.Limits{Budget: 50 * time.Millisecond}
	tests := []struct {
		event   string
		payload map[string]any
		where   string
	}{
		{"go", map[string]any{"k": 100_000}, "guard of branch 1"},
		{"compute", nil, "set"},
		{"wait", nil, "timer at"},
	}
	for _, tt := range tests {
		s := machine.Snapshot{ID: "i-1", Version: 1, State: "a", Context: map[string]any{"k": 100_000}, CreatedAt: at, EnteredAt: at}
		start := time.Now()
		_, err := limits.Fire(def, s, tt.event, tt.payload, at)
		took := time.Since(start)
		var ee *machine.ExpressionError
		if !errors.As(err, &ee) || !strings.HasPrefix(ee.Where, tt.where) || !strings.Contains(err.Error(), "time budget exceeded") {
			t.Errorf("%s: got %v, want an expression error in %s, time budget exceeded", tt.event, err, tt.where)
		}
		if took > 2*time.Second {
			t.Errorf("%s: failed after %v, want about %v", tt.event, took, limits.Budget)
		}
		s.Context["k"] = 1
		if tt.payload != nil {
			tt.payload = map[string]any{"k": 1}
		}
		if _, err := limits.Fire(def, s, tt.event, tt.payload, at); err != nil {
			t.Errorf("%s with k 1: %v", tt.event, err)
		}
	}

	if _, _, err := limits.Start(def, "i-2", 1, map[string]any{"k": 100_000}, at); err == nil || !strings.Contains(err.Error(), "time budget exceeded") {
		t.Errorf("Start: got %v, want the time budget error", err)
	}

	// explain reports the error of the event and of its guard.
	s := machine.Snapshot{ID: "i-1", Version: 1, State: "a", Context: map[string]any{"k": 1}, CreatedAt: at, EnteredAt: at}
	x := limits.Explain(def, s, "go", map[string]any{"k": 100_000}, at)
	if x.Err == nil || !strings.Contains(x.Err.Error(), "time budget exceeded") || x.Transition != nil {
		t.Errorf("Explain: %v, %v; want the time budget error", x.Transition, x.Err)
	}
	if len(x.Branches) != 1 || x.Branches[0].Err == nil || !strings.Contains(x.Branches[0].Err.Error(), "time budget exceeded") {
		t.Errorf("Explain branches: %+v", x.Branches)
	}
}
