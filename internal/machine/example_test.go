package machine_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// order is a small definition: a guarded payment with two branches, then shipping.
const order = `
name: order
initial: awaiting_payment
context:
  amount: float
  paid: float
events:
  pay:
    amount: float
    method: string
states:
  awaiting_payment:
    on:
      pay:
        - to: paid
          guard: event.amount >= ctx.amount
          guard_message: the payment must cover the amount
          set:
            paid: event.amount
        - to: awaiting_payment
          guard: event.method == "card"
          guard_message: only a card payment may be retried
  paid:
    on:
      ship: shipped
  shipped:
    final: true
`

// Parse loads a definition, Start makes the first snapshot of an instance, and Fire decides what an
// event does to it: the transition, with the context before and after. Fire changes nothing: the
// caller stores the transition (fsmd's service writes it to the database).
func Example() {
	def, diags := machine.Parse("order.yaml", []byte(order))
	if diags.Errors() > 0 {
		fmt.Println(diags)
		return
	}
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	snap, _, err := machine.Start(def, "order-1", 1, map[string]any{"amount": 40.0}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	tr, err := machine.Fire(def, snap, "pay", map[string]any{"amount": 40.0, "method": "card"}, now.Add(time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s -> %s by branch %d\n", tr.From, tr.To, tr.Branch)
	fmt.Println("paid:", tr.ContextBefore["paid"], "->", tr.ContextAfter["paid"])
	// Output:
	// awaiting_payment -> paid by branch 0
	// paid: 0 -> 40
}

// A refused event is an error with a code (code.Of reads it) and a type of its own for the
// details: a GuardRejectedError names each branch that was blocked, an InvalidTransitionError the
// events the state handles.
func Example_refusals() {
	def, _ := machine.Parse("order.yaml", []byte(order))
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	snap, _, _ := machine.Start(def, "order-1", 1, map[string]any{"amount": 40.0}, now)

	_, err := machine.Fire(def, snap, "pay", map[string]any{"amount": 10.0, "method": "sepa"}, now)
	var rejected *machine.GuardRejectedError
	if errors.As(err, &rejected) {
		fmt.Println(code.Of(err))
		for _, b := range rejected.Blockers {
			fmt.Printf("  to %s: %s\n", b.To, b.Message)
		}
	}

	_, err = machine.Fire(def, snap, "ship", nil, now)
	var invalid *machine.InvalidTransitionError
	if errors.As(err, &invalid) {
		fmt.Println(code.Of(err))
		fmt.Printf("  %s handles %v\n", invalid.State, invalid.Handled)
	}
	// Output:
	// guard_rejected
	//   to paid: the payment must cover the amount
	//   to awaiting_payment: only a card payment may be retried
	// invalid_transition
	//   awaiting_payment handles [pay]
}
