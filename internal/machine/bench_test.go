package machine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/looplab/fsm"
)

// benchDefinition has 10 states; pay from created takes a guarded branch with a set.
const benchDefinition = `
name: bench
initial: created
context:
  amount: float
  paid: float
  attempts: int
  currency: {type: string, default: EUR}
  tags: [string]
events:
  pay:
    amount: float
    method: string
states:
  created:
    on:
      pay:
        - to: paid
          guard: event.amount >= ctx.amount && event.method in ["card", "sepa"]
          guard_message: the payment must cover the amount
          set:
            paid: ctx.paid + event.amount
            attempts: ctx.attempts + 1
        - to: payment_failed
          guard: event.method == "card"
      cancel: cancelled
      payment_overdue: cancelled
    timers:
      - after: 72h
        event: payment_overdue
  payment_failed:
    on:
      pay: paid
      cancel: cancelled
  paid:
    on:
      pack: packed
      refund: refunded
  packed:
    on:
      ship: shipped
  shipped:
    on:
      deliver: delivered
      lose: lost
  delivered:
    on:
      return: returned
      close: closed
  returned:
    on:
      refund: refunded
  lost:
    on:
      refund: refunded
  refunded: {final: true}
  closed: {final: true}
  cancelled: {final: true}
`

func benchParse(b *testing.B, src string) *Definition {
	b.Helper()
	def, diags := Parse("bench.yaml", []byte(src))
	if diags.Errors() > 0 {
		b.Fatalf("definition: %v", diags)
	}
	return def
}

// BenchmarkFire handles pay on the 10-state definition: the payload typed, a guard evaluated, two
// `set` expressions, the step on looplab/fsm, the timers of the state left and entered.
func BenchmarkFire(b *testing.B) {
	def := benchParse(b, benchDefinition)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap, _, err := Start(def, "i1", 1, map[string]any{"amount": 10.0}, now)
	if err != nil {
		b.Fatal(err)
	}
	payload := map[string]any{"amount": 12.5, "method": "card"}
	b.ReportAllocs()
	for b.Loop() {
		t, err := Fire(def, snap, "pay", payload, now)
		if err != nil {
			b.Fatal(err)
		}
		if t.To != "paid" {
			b.Fatalf("went to %s", t.To)
		}
	}
}

// BenchmarkLooplabBaseline is the floor Fire is measured against: a bare looplab/fsm on the same graph
// (one event per branch, as the engine builds it), created and stepped once per iteration.
func BenchmarkLooplabBaseline(b *testing.B) {
	def := benchParse(b, benchDefinition)
	events := append([]fsm.EventDesc(nil), def.graph...)
	event := def.States["created"].On["pay"].Branches[0].fsmEvent
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f := fsm.NewFSM(def.Initial, events, nil)
		if err := f.Event(ctx, event); err != nil {
			b.Fatal(err)
		}
		if f.Current() != "paid" {
			b.Fatalf("went to %s", f.Current())
		}
	}
}

// benchLoadDefinition writes a realistic definition of n states: a typed context, and in every state but
// the two final ones guarded branches with a set, a shorthand transition and a timer. Guards differ
// from state to state, as they would in a real definition; some `set` expressions repeat, as they do
// in real ones (a counter, a timestamp).
func benchLoadDefinition(name string, n int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "name: %s\ndescription: generated for BenchmarkLoad1000\ninitial: s0\n", name)
	s.WriteString("context:\n  amount: float\n  paid: float\n  attempts: int\n  currency: {type: string, default: EUR}\n")
	s.WriteString("  customer:\n    id: string\n    tier: string\n  tags: [string]\n  paid_at: time\n")
	s.WriteString("events:\n  pay:\n    amount: float\n    method: string\n  cancel:\n    reason: string\n")
	s.WriteString("states:\n")
	for i := range n - 2 {
		next := fmt.Sprintf("s%d", i+1)
		if i == n-3 {
			next = "done"
		}
		fmt.Fprintf(&s, "  s%d:\n    description: step %d of the process\n    on:\n      pay:\n", i, i)
		fmt.Fprintf(&s, "        - to: %s\n", next)
		fmt.Fprintf(&s, "          guard: event.amount >= ctx.amount * %d && event.method in [\"card\", \"sepa\"]\n", i+1)
		fmt.Fprintf(&s, "          guard_message: the payment must cover step %d\n", i)
		s.WriteString("          set:\n            paid: ctx.paid + event.amount\n            attempts: ctx.attempts + 1\n")
		fmt.Fprintf(&s, "            paid_at: now\n            tags: concat(ctx.tags, [\"s%d\"])\n", i)
		fmt.Fprintf(&s, "        - to: failed\n          guard: ctx.customer.tier == \"gold\" || ctx.attempts >= %d\n", i+3)
		fmt.Fprintf(&s, "        - to: s%d\n", i)
		fmt.Fprintf(&s, "      cancel:\n        to: done\n        set:\n          currency: '\"X%02d\"'\n", i)
		s.WriteString("      overdue: failed\n")
		fmt.Fprintf(&s, "    timers:\n      - after: %dh\n        event: overdue\n", 24+i)
	}
	s.WriteString("  failed: {final: true}\n  done: {final: true}\n")
	return s.String()
}

// BenchmarkLoad1000 loads and validates a folder of 1,000 definitions of 50 states each, shaped like
// the examples in definitions/ (about 2.5 transitions and 4.5 expressions a state, a timer every other
// state, typed contexts with a nested object and a list). The target is under 2 s per op.
func BenchmarkLoad1000(b *testing.B) {
	benchLoad(b, benchTypicalDefinition, false)
}

// BenchmarkLoad1000Dense is the same with denser states (5 transitions and 7 expressions a state).
func BenchmarkLoad1000Dense(b *testing.B) {
	benchLoad(b, benchLoadDefinition, false)
}

// BenchmarkLoad1000Prepared also emits the bytecode of every expression (Definition.Prepare), which
// Load leaves to the first evaluation: what loading costs a service that warms its definitions.
func BenchmarkLoad1000Prepared(b *testing.B) {
	benchLoad(b, benchTypicalDefinition, true)
}

func benchLoad(b *testing.B, gen func(name string, states int) string, prepare bool) {
	dir := b.TempDir()
	for i := range 1000 {
		name := fmt.Sprintf("def_%04d", i)
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(gen(name, 50)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		set, diags, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(diags) > 0 { // not even a warning
			b.Fatalf("%d diagnostics, first: %v", len(diags), diags[0])
		}
		if len(set.ByName) != 1000 {
			b.Fatalf("loaded %d definitions", len(set.ByName))
		}
		if prepare {
			for _, def := range set.ByName {
				if err := def.Prepare(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// benchTypicalDefinition writes a definition of n states in the style of definitions/approval.yaml.
func benchTypicalDefinition(name string, n int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "name: %s\ndescription: generated for BenchmarkLoad1000\ninitial: s0\n", name)
	s.WriteString("context:\n  amount: float\n  requester: string\n  rounds: int\n  approved_by: string\n")
	s.WriteString("  decided_at: time\n  reason: string\n  currency: {type: string, default: EUR}\n")
	s.WriteString("  customer:\n    id: string\n    tier: string\n  notes: [string]\n")
	s.WriteString("events:\n  approve:\n    by: string\n    amount: float\n  reject:\n    reason: string\n")
	s.WriteString("states:\n")
	for i := range n - 2 {
		next := fmt.Sprintf("s%d", i+1)
		if i == n-3 {
			next = "approved"
		}
		fmt.Fprintf(&s, "  s%d:\n    description: Step %d; the case waits for a decision.\n    on:\n      approve:\n", i, i)
		fmt.Fprintf(&s, "        - to: %s\n          guard: event.by != ctx.requester && event.amount >= ctx.amount * %d\n", next, i+1)
		fmt.Fprintf(&s, "          guard_message: requesters cannot approve step %d themselves\n", i)
		s.WriteString("          set:\n            approved_by: event.by\n            decided_at: now\n")
		fmt.Fprintf(&s, "        - to: s%d\n          set:\n            notes: concat(ctx.notes, [\"short at step %d\"])\n", i, i)
		s.WriteString("      reject:\n        to: rejected\n        set:\n          reason: event.reason\n")
		if i%2 == 1 {
			fmt.Fprintf(&s, "      expire: rejected\n    timers:\n      - after: %dh\n        event: expire\n", 24+i)
		}
	}
	s.WriteString("  approved: {final: true}\n  rejected: {final: true}\n")
	return s.String()
}
