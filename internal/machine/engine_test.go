package machine_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// shopYAML exercises every path of the engine.
const shopYAML = `name: shop
initial: created
context:
  amount: float
  paid: float
  attempts: int
  a: int
  b: int
  tags: [string]
  customer:
    tier: string
    address:
      city: string
      zip: string
  deadline: time
  customer_id: {type: string, required: true}
events:
  pay:
    amount: float
    method: string
    reference: {type: string, required: true}
  note:
    text: string
states:
  created:
    on:
      pay:
        - to: paid
          guard: event.amount >= ctx.amount && event.method in ["card", "sepa"]
          guard_message: the payment must cover the amount by card or SEPA
          set:
            paid: event.amount
            attempts: ctx.attempts + 1
            tags: concat(ctx.tags, ["paid"])
        - to: failed
          guard: event.method == "card"
          guard_message: only a card payment can fail
          set:
            attempts: ctx.attempts + 1
      swap:
        to: created
        set: {a: ctx.b, b: ctx.a}
      promote:
        to: created
        set:
          customer.tier: '"gold"'
          customer.address.city: upper(ctx.customer.address.city)
      touch: created
      note: created
      cancel: cancelled
      boom:
        to: created
        guard: ctx.tags[3] == "x"
      divide:
        to: created
        set:
          a: ctx.a % (ctx.b - 2)
      schedule: scheduled
      expire: cancelled
      remind: created
    timers:
      - after: 72h
        event: expire
      - at: ctx.deadline
        event: remind
      - after: 1h
        event: remind
  failed:
    on:
      pay: paid
      cancel: cancelled
  paid:
    on:
      ship: shipped
  scheduled:
    on:
      fire: shipped
    timers:
      - at: date(ctx.customer.tier)
        event: fire
  shipped: {final: true}
  cancelled: {final: true}
`

var (
	shopOnce sync.Once
	shopDef  *machine.Definition
)

// shop parses shopYAML once: a Definition is immutable and safe to share.
func shop(t testing.TB) *machine.Definition {
	t.Helper()
	shopOnce.Do(func() {
		def, diags := machine.Parse("shop.yaml", []byte(shopYAML))
		if diags.Errors() > 0 {
			panic(fmt.Sprintf("shop.yaml: %v", diags))
		}
		shopDef = def
	})
	return shopDef
}

var (
	created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entered = created.Add(time.Hour)
	at      = created.Add(10 * time.Hour)
)

// snap is an instance in state with the typical context: an order of 10, customer in Paris.
func snap(state string) machine.Snapshot {
	return machine.Snapshot{
		ID: "i-1", Version: 3, State: state, CreatedAt: created, EnteredAt: entered,
		Context: map[string]any{
			"amount": 10.0, "paid": 0.0, "attempts": 0, "a": 1, "b": 2, "tags": []any{"new"},
			"customer":    map[string]any{"tier": "standard", "address": map[string]any{"city": "paris", "zip": "75001"}},
			"deadline":    created.Add(48 * time.Hour),
			"customer_id": "c-1",
		},
	}
}

// fire fires and fails the test on an error.
func fire(t *testing.T, s machine.Snapshot, event string, payload map[string]any) *machine.Transition {
	t.Helper()
	tr, err := machine.Fire(shop(t), s, event, payload, at)
	if err != nil {
		t.Fatalf("Fire(%s in %s): %v", event, s.State, err)
	}
	return tr
}

func pay(amount float64, method string) map[string]any {
	return map[string]any{"amount": amount, "method": method, "reference": "r-1"}
}

// createdTimers are the timers of created when it is entered at `at`, sorted by deadline.
func createdTimers(enteredAt time.Time) []machine.Due {
	return []machine.Due{
		{Event: "remind", At: enteredAt.Add(time.Hour)},
		{Event: "remind", At: created.Add(48 * time.Hour)},
		{Event: "expire", At: enteredAt.Add(72 * time.Hour)},
	}
}

func TestFireErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		state   string
		event   string
		payload map[string]any
		code    string
		check   func(t *testing.T, err error)
		msg     string
	}{
		{
			name: "unknown event", state: "created", event: "explode", code: code.UnknownEvent,
			msg: `unknown event "explode": no state of the definition handles it`,
			check: func(t *testing.T, err error) {
				var e *machine.UnknownEventError
				if !errors.As(err, &e) || e.Event != "explode" {
					t.Errorf("not an *UnknownEventError for explode: %#v", err)
				}
			},
		},
		{
			name: "unknown event in a final state", state: "shipped", event: "explode", code: code.UnknownEvent,
			msg: `unknown event "explode": no state of the definition handles it`,
		},
		{
			name: "invalid transition", state: "created", event: "ship", code: code.InvalidTransition,
			msg: `state "created" does not handle event "ship" (it handles pay, swap, promote, touch, note, cancel, boom, divide, schedule, expire, remind)`,
			check: func(t *testing.T, err error) {
				var e *machine.InvalidTransitionError
				if !errors.As(err, &e) || e.State != "created" || e.Event != "ship" || len(e.Handled) != 11 {
					t.Errorf("not an *InvalidTransitionError for ship in created: %#v", err)
				}
			},
		},
		{
			name: "instance final", state: "cancelled", event: "cancel", code: code.InstanceFinal,
			msg: `the instance is in final state "cancelled" and takes no events (got "cancel")`,
			check: func(t *testing.T, err error) {
				var e *machine.InstanceFinalError
				if !errors.As(err, &e) || e.State != "cancelled" || e.Event != "cancel" {
					t.Errorf("not an *InstanceFinalError: %#v", err)
				}
			},
		},
		{
			name: "guard rejected", state: "created", event: "pay", payload: pay(5, "sepa"), code: code.GuardRejected,
			msg: `event "pay" in state "created": no guard holds: the payment must cover the amount by card or SEPA; only a card payment can fail`,
			check: func(t *testing.T, err error) {
				var e *machine.GuardRejectedError
				if !errors.As(err, &e) {
					t.Fatalf("not a *GuardRejectedError: %#v", err)
				}
				want := []machine.Blocker{
					{To: "paid", Guard: `event.amount >= ctx.amount && event.method in ["card", "sepa"]`, Message: "the payment must cover the amount by card or SEPA"},
					{To: "failed", Guard: `event.method == "card"`, Message: "only a card payment can fail"},
				}
				if e.State != "created" || e.Event != "pay" || !reflect.DeepEqual(e.Blockers, want) {
					t.Errorf("GuardRejectedError = %+v, want blockers %+v", e, want)
				}
			},
		},
		{
			name: "a guard that fails", state: "created", event: "boom", code: code.ExpressionFailed,
			msg: `event "boom" in state "created": guard of branch 1: evaluating "ctx.tags[3] == \"x\"": index out of range: 3 (array length is 1)`,
			check: func(t *testing.T, err error) {
				var e *machine.ExpressionError
				if !errors.As(err, &e) || e.State != "created" || e.Event != "boom" || e.Where != "guard of branch 1" || e.Err == nil {
					t.Errorf("not an *ExpressionError in the guard: %#v", err)
				}
			},
		},
		{
			name: "set fails", state: "created", event: "divide", code: code.ExpressionFailed,
			check: func(t *testing.T, err error) {
				var e *machine.ExpressionError
				if !errors.As(err, &e) || e.Where != "set" || !strings.Contains(e.Error(), "a: ") || !strings.Contains(e.Error(), "integer divide by zero") {
					t.Errorf("not an *ExpressionError in set: %v", err)
				}
			},
		},
		{
			name: "timer at fails on entering", state: "created", event: "schedule", code: code.ExpressionFailed,
			check: func(t *testing.T, err error) {
				var e *machine.ExpressionError
				if !errors.As(err, &e) || e.Where != "timer at" || e.State != "scheduled" || e.Event != "schedule" {
					t.Errorf("not an *ExpressionError in timer at: %#v", err)
				}
			},
		},
		{
			name: "payload of the wrong type", state: "created", event: "pay",
			payload: map[string]any{"amount": "ten", "method": "card", "reference": "r"}, code: code.InvalidPayload,
			msg: `invalid payload for event "pay": amount: expected float, got string "ten"`,
		},
		{
			name: "payload with an unknown field", state: "created", event: "pay",
			payload: map[string]any{"amount": 1.0, "method": "card", "reference": "r", "colour": "red"}, code: code.InvalidPayload,
			msg: `invalid payload for event "pay": colour: unknown field`,
		},
		{
			name: "payload missing a required field", state: "created", event: "pay",
			payload: map[string]any{"amount": 10.0, "method": "card"}, code: code.InvalidPayload,
			msg: `invalid payload for event "pay": reference: required field is missing`,
		},
		{
			name: "no payload for an event with a required field", state: "created", event: "pay",
			code: code.InvalidPayload,
			msg:  `invalid payload for event "pay": reference: required field is missing`,
		},
		{
			name: "payload to an event without a schema", state: "created", event: "cancel",
			payload: map[string]any{"reason": "x"}, code: code.InvalidPayload,
			msg: `invalid payload for event "cancel": this event takes no payload`,
			check: func(t *testing.T, err error) {
				var e *machine.InvalidPayloadError
				if !errors.As(err, &e) || e.Event != "cancel" || e.Err == nil {
					t.Errorf("not an *InvalidPayloadError: %#v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := snap(tt.state)
			before := schema.Clone(s.Context).(map[string]any)
			tr, err := machine.Fire(shop(t), s, tt.event, tt.payload, at)
			if err == nil {
				t.Fatalf("Fire = %+v, want an error", tr)
			}
			if tr != nil {
				t.Errorf("Fire returned a transition with its error: %+v", tr)
			}
			if got := code.Of(err); got != tt.code {
				t.Errorf("CodeOf(%v) = %q, want %q", err, got, tt.code)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("error:\n got %s\nwant %s", err, tt.msg)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			if !reflect.DeepEqual(s.Context, before) {
				t.Errorf("a refused event changed the snapshot's context: %v", s.Context)
			}
		})
	}
}

func TestCodeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		code string
	}{
		{&machine.UnknownEventError{}, "unknown_event"},
		{&machine.InvalidTransitionError{}, "invalid_transition"},
		{&machine.GuardRejectedError{}, "guard_rejected"},
		{&machine.InstanceFinalError{}, "instance_final"},
		{&machine.InvalidPayloadError{Err: errors.New("x")}, "invalid_payload"},
		{&machine.InvalidContextError{Err: errors.New("x")}, "invalid_context"},
		{&machine.ExpressionError{Err: errors.New("x")}, "expression_failed"},
		{&machine.InvalidDefinitionError{}, "invalid_definition"},
		{fmt.Errorf("wrapped: %w", &machine.InstanceFinalError{}), "instance_final"},
		{errors.New("plain"), ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := code.Of(tt.err); got != tt.code {
			t.Errorf("CodeOf(%T) = %q, want %q", tt.err, got, tt.code)
		}
	}
}

func TestFireUnknownState(t *testing.T) {
	t.Parallel()
	_, err := machine.Fire(shop(t), snap("limbo"), "cancel", nil, at)
	if err == nil || code.Of(err) != "" {
		t.Errorf("Fire in a state the definition lacks = %v, want a plain error", err)
	}
}

func TestFireBranches(t *testing.T) {
	t.Parallel()
	g1 := `event.amount >= ctx.amount && event.method in ["card", "sepa"]`
	g2 := `event.method == "card"`
	tests := []struct {
		name    string
		payload map[string]any
		to      string
		branch  int
		guards  []machine.GuardResult
	}{
		{"the first true guard wins", pay(10, "card"), "paid", 0,
			[]machine.GuardResult{{Branch: 0, To: "paid", Guard: g1, Result: true}}},
		{"the first guard true, the second not evaluated", pay(12, "sepa"), "paid", 0,
			[]machine.GuardResult{{Branch: 0, To: "paid", Guard: g1, Result: true}}},
		{"the second branch when the first guard is false", pay(5, "card"), "failed", 1,
			[]machine.GuardResult{{Branch: 0, To: "paid", Guard: g1, Result: false}, {Branch: 1, To: "failed", Guard: g2, Result: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := fire(t, snap("created"), "pay", tt.payload)
			if tr.To != tt.to || tr.Branch != tt.branch || !reflect.DeepEqual(tr.Guards, tt.guards) {
				t.Errorf("to %s, branch %d, guards %+v; want %s, %d, %+v", tr.To, tr.Branch, tr.Guards, tt.to, tt.branch, tt.guards)
			}
		})
	}
	// An unguarded transition evaluates no guard.
	if tr := fire(t, snap("created"), "cancel", nil); tr.Guards != nil || tr.Branch != 0 || tr.To != "cancelled" {
		t.Errorf("cancel: %+v", tr)
	}
}

func TestFireTransition(t *testing.T) {
	t.Parallel()
	s := snap("created")
	before := schema.Clone(s.Context).(map[string]any)
	tr := fire(t, s, "pay", pay(10, "card"))
	want := &machine.Transition{
		Event:   "pay",
		Payload: map[string]any{"amount": 10.0, "method": "card", "reference": "r-1"},
		From:    "created", To: "paid", Branch: 0,
		Guards: []machine.GuardResult{{Branch: 0, To: "paid",
			Guard: `event.amount >= ctx.amount && event.method in ["card", "sepa"]`, Result: true}},
		ContextBefore: before,
		ContextAfter: map[string]any{
			"amount": 10.0, "paid": 10.0, "attempts": 1, "a": 1, "b": 2, "tags": []any{"new", "paid"},
			"customer":    map[string]any{"tier": "standard", "address": map[string]any{"city": "paris", "zip": "75001"}},
			"deadline":    created.Add(48 * time.Hour),
			"customer_id": "c-1",
		},
		// The new context as the engine measured it against its bound, and as it is written.
		ContextAfterJSON: []byte(`{"a":1,"amount":10,"attempts":1,"b":2,"customer":{"address":{"city":"paris","zip":"75001"},` +
			`"tier":"standard"},"customer_id":"c-1","deadline":"2026-01-03T00:00:00Z","paid":10,"tags":["new","paid"]}`),
		Cancel: []string{"expire", "remind", "remind"},
		Arm:    nil,
		Final:  false,
		At:     at,
		Task:   &machine.Task{}, // paid has no task: the instance's is cleared
	}
	if !reflect.DeepEqual(tr, want) {
		t.Errorf("Fire =\n %+v\nwant\n %+v", tr, want)
	}
	if !reflect.DeepEqual(s.Context, before) {
		t.Errorf("Fire changed the snapshot's context: %v", s.Context)
	}

	// The payload is typed with every declared field; an event without a schema has an empty one.
	tr = fire(t, snap("created"), "note", nil)
	if !reflect.DeepEqual(tr.Payload, map[string]any{"text": ""}) {
		t.Errorf("note payload = %#v", tr.Payload)
	}
	tr = fire(t, snap("created"), "cancel", map[string]any{})
	if !reflect.DeepEqual(tr.Payload, map[string]any{}) || !tr.Final || tr.Arm != nil {
		t.Errorf("cancel = %+v", tr)
	}
	// An int is a float where the payload says float.
	tr = fire(t, snap("created"), "pay", map[string]any{"amount": 10, "method": "card", "reference": "r"})
	if tr.Payload["amount"] != 10.0 || tr.To != "paid" {
		t.Errorf("an int amount: %+v", tr)
	}
}

// TestFireSetUsesContextBefore: every set expression sees the context before the change.
func TestFireSetUsesContextBefore(t *testing.T) {
	t.Parallel()
	tr := fire(t, snap("created"), "swap", nil)
	if tr.ContextAfter["a"] != 2 || tr.ContextAfter["b"] != 1 {
		t.Errorf("swap: a=%v b=%v, want a=2 b=1", tr.ContextAfter["a"], tr.ContextAfter["b"])
	}
	if tr.ContextBefore["a"] != 1 || tr.ContextBefore["b"] != 2 {
		t.Errorf("swap changed ContextBefore: %v", tr.ContextBefore)
	}
}

// TestFireDottedSet: a dotted path copies the objects along it; the snapshot's context is unchanged.
func TestFireDottedSet(t *testing.T) {
	t.Parallel()
	s := snap("created")
	customer := s.Context["customer"].(map[string]any)
	address := customer["address"].(map[string]any)
	tags := s.Context["tags"].([]any)
	before := schema.Clone(s.Context).(map[string]any)

	tr := fire(t, s, "promote", nil)
	after := tr.ContextAfter
	wantCustomer := map[string]any{"tier": "gold", "address": map[string]any{"city": "PARIS", "zip": "75001"}}
	if !reflect.DeepEqual(after["customer"], wantCustomer) {
		t.Errorf("customer after = %v, want %v", after["customer"], wantCustomer)
	}
	if !reflect.DeepEqual(s.Context, before) || customer["tier"] != "standard" || address["city"] != "paris" {
		t.Errorf("the snapshot's context was changed: %v", s.Context)
	}
	if !reflect.DeepEqual(tr.ContextBefore, before) {
		t.Errorf("ContextBefore = %v", tr.ContextBefore)
	}
	// Changing the new context does not reach the old one.
	after["customer"].(map[string]any)["address"].(map[string]any)["zip"] = "changed"
	after["amount"] = 99.0
	if address["zip"] != "75001" || s.Context["amount"] != 10.0 {
		t.Error("the new context shares the changed objects with the snapshot")
	}
	// What no set touched is the same.
	if !reflect.DeepEqual(after["tags"], tags) || after["customer_id"] != "c-1" {
		t.Errorf("untouched fields changed: %v", after)
	}
}

// TestFireSelfTransition: a transition to the same state is a transition (looplab/fsm's
// NoTransitionError is success): it cancels and re-arms the state's timers from now.
func TestFireSelfTransition(t *testing.T) {
	t.Parallel()
	for _, event := range []string{"touch", "swap", "remind"} {
		tr := fire(t, snap("created"), event, nil)
		if tr.From != "created" || tr.To != "created" || tr.Final {
			t.Errorf("%s: %s -> %s", event, tr.From, tr.To)
		}
		if want := []string{"expire", "remind", "remind"}; !reflect.DeepEqual(tr.Cancel, want) {
			t.Errorf("%s: Cancel = %v, want %v", event, tr.Cancel, want)
		}
		if want := createdTimers(at); !reflect.DeepEqual(tr.Arm, want) {
			t.Errorf("%s: Arm = %v, want %v", event, tr.Arm, want)
		}
	}
	// Without set the context is carried over as it is.
	s := snap("created")
	tr := fire(t, s, "touch", nil)
	if !reflect.DeepEqual(tr.ContextAfter, s.Context) {
		t.Errorf("touch changed the context: %v", tr.ContextAfter)
	}
}

func TestFireTimers(t *testing.T) {
	t.Parallel()
	// Leaving failed (no timers) for paid (no timers).
	tr := fire(t, snap("failed"), "pay", pay(1, "cash"))
	if tr.Cancel != nil || tr.Arm != nil || tr.To != "paid" {
		t.Errorf("failed -> paid: Cancel %v, Arm %v", tr.Cancel, tr.Arm)
	}
	// Leaving created for scheduled cancels created's timers and arms scheduled's `at`.
	s0 := snap("created")
	s0.Context["customer"] = map[string]any{"tier": "2026-02-01", "address": map[string]any{"city": "", "zip": ""}}
	tr = fire(t, s0, "schedule", nil)
	if want := []string{"expire", "remind", "remind"}; !reflect.DeepEqual(tr.Cancel, want) {
		t.Errorf("created -> scheduled: Cancel = %v, want %v", tr.Cancel, want)
	}
	if want := []machine.Due{{Event: "fire", At: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}}; !reflect.DeepEqual(tr.Arm, want) {
		t.Errorf("created -> scheduled: Arm = %v, want %v", tr.Arm, want)
	}
	// Re-entering created arms its timers from now.
	tr = fire(t, snap("created"), "note", map[string]any{"text": "hi"})
	if !reflect.DeepEqual(tr.Arm, createdTimers(at)) {
		t.Errorf("Arm = %v", tr.Arm)
	}
	// An `at` deadline earlier than a second after entering fires a second after entering: a timer
	// that re-enters its state cannot loop faster than that.
	for _, deadline := range []time.Time{at.Add(-time.Hour), at, at.Add(time.Second - time.Nanosecond), {}} {
		s := snap("created")
		s.Context["deadline"] = deadline
		tr = fire(t, s, "touch", nil)
		if want := at.Add(machine.MinTimerDelay); len(tr.Arm) != 3 || tr.Arm[0].Event != "remind" || !tr.Arm[0].At.Equal(want) {
			t.Errorf("deadline %v: Arm = %v, want remind at %v first", deadline, tr.Arm, want)
		}
	}
	// From a second on, the deadline is the expression's.
	s := snap("created")
	s.Context["deadline"] = at.Add(time.Second)
	if tr = fire(t, s, "touch", nil); len(tr.Arm) != 3 || !tr.Arm[0].At.Equal(at.Add(time.Second)) {
		t.Errorf("Arm = %v, want remind at %v first", tr.Arm, at.Add(time.Second))
	}
}

func TestTimers(t *testing.T) {
	t.Parallel()
	def := shop(t)
	due, err := def.Timers(snap("created"))
	if err != nil {
		t.Fatal(err)
	}
	if want := createdTimers(entered); !reflect.DeepEqual(due, want) {
		t.Errorf("Timers(created) = %v, want %v", due, want)
	}
	// Equal deadlines keep the file's order.
	s := snap("created")
	s.Context["deadline"] = entered.Add(time.Hour)
	due, _ = def.Timers(s)
	if len(due) != 3 || due[0].At != due[1].At || due[0].Event != "remind" {
		t.Errorf("Timers with equal deadlines = %v", due)
	}
	for _, state := range []string{"paid", "shipped", "nowhere"} {
		if due, err := def.Timers(snap(state)); due != nil || err != nil {
			t.Errorf("Timers(%s) = %v, %v; want none", state, due, err)
		}
	}
	s = snap("scheduled")
	s.Context["customer"].(map[string]any)["tier"] = "2026-02-01"
	due, err = def.Timers(s)
	if want := []machine.Due{{Event: "fire", At: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}}; err != nil || !reflect.DeepEqual(due, want) {
		t.Errorf("Timers(scheduled) = %v, %v; want %v", due, err, want)
	}
	if _, err := def.Timers(snap("scheduled")); err == nil {
		t.Error("an `at` expression that fails gives no error")
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	def := shop(t)
	s, due, err := machine.Start(def, "i-9", 2, map[string]any{"customer_id": "c-9", "amount": 5, "customer": map[string]any{"tier": "gold"}}, at)
	if err != nil {
		t.Fatal(err)
	}
	want := machine.Snapshot{ID: "i-9", Version: 2, State: "created", CreatedAt: at, EnteredAt: at,
		Context: map[string]any{
			"amount": 5.0, "paid": 0.0, "attempts": 0, "a": 0, "b": 0, "tags": []any{},
			"customer":    map[string]any{"tier": "gold", "address": map[string]any{"city": "", "zip": ""}},
			"deadline":    time.Time{},
			"customer_id": "c-9",
		}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Start =\n %+v\nwant\n %+v", s, want)
	}
	wantDue := []machine.Due{
		{Event: "remind", At: at.Add(machine.MinTimerDelay)}, // the zero deadline, put off to a second after
		{Event: "remind", At: at.Add(time.Hour)},
		{Event: "expire", At: at.Add(72 * time.Hour)},
	}
	if !reflect.DeepEqual(due, wantDue) {
		t.Errorf("Start timers = %v, want %v", due, wantDue)
	}
}

func TestStartInvalidContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ctx  map[string]any
		msg  string
	}{
		{"nil context misses the required field", nil, "invalid context: customer_id: required field is missing"},
		{"missing required field", map[string]any{"amount": 1.0}, "invalid context: customer_id: required field is missing"},
		{"wrong type", map[string]any{"customer_id": "c", "amount": "ten"}, `invalid context: amount: expected float, got string "ten"`},
		{"int with a fraction", map[string]any{"customer_id": "c", "attempts": 1.5}, `invalid context: attempts: expected int, got number (a number with a fraction)`},
		{"wrong nested type", map[string]any{"customer_id": "c", "customer": map[string]any{"tier": 1}}, `invalid context: customer.tier: expected string, got number`},
		{"unknown field", map[string]any{"customer_id": "c", "colour": "red"}, `invalid context: colour: unknown field`},
		{"unknown nested field", map[string]any{"customer_id": "c", "customer": map[string]any{"tire": "x"}}, `invalid context: customer.tire: unknown field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := machine.Start(shop(t), "i", 1, tt.ctx, at)
			var e *machine.InvalidContextError
			if !errors.As(err, &e) || e.Err == nil {
				t.Fatalf("Start error = %#v, want an *InvalidContextError", err)
			}
			if code.Of(err) != code.InvalidContext || err.Error() != tt.msg {
				t.Errorf("Start error = %q (%s), want %q", err, code.Of(err), tt.msg)
			}
		})
	}
}

// TestFireConcurrent: one definition serves many goroutines at once (run with -race).
func TestFireConcurrent(t *testing.T) {
	t.Parallel()
	def := shop(t)
	base := snap("created")
	calls := []struct {
		event   string
		payload map[string]any
		to      string
		code    string
	}{
		{"pay", pay(10, "card"), "paid", ""},
		{"pay", pay(1, "card"), "failed", ""},
		{"promote", nil, "created", ""},
		{"swap", nil, "created", ""},
		{"pay", pay(1, "sepa"), "", code.GuardRejected},
		{"ship", nil, "", code.InvalidTransition},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				c := calls[(g+i)%len(calls)]
				tr, err := machine.Fire(def, base, c.event, c.payload, at)
				if code.Of(err) != c.code || (err == nil && tr.To != c.to) {
					errs <- fmt.Errorf("goroutine %d, call %d (%s): %+v, %v; want %s%s", g, i, c.event, tr, err, c.to, c.code)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !reflect.DeepEqual(base.Context, snap("created").Context) {
		t.Errorf("concurrent Fire changed the shared snapshot: %v", base.Context)
	}
}

// TestPrepare: Prepare emits every expression's bytecode, and the definition fires as before.
func TestPrepare(t *testing.T) {
	t.Parallel()
	def := shop(t)
	if err := def.Prepare(); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if err := def.Prepare(); err != nil { // again: a no-op
		t.Fatalf("Prepare again: %v", err)
	}
	tr, err := machine.Fire(def, snap("created"), "pay", pay(10, "card"), time.Now())
	if err != nil || tr.To != "paid" {
		t.Fatalf("Fire after Prepare: %+v, %v", tr, err)
	}
}
