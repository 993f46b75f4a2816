package machine

import (
	"fmt"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// RepairEvent is the event of a repair's transition (docs/operators.md, "Repair").
const RepairEvent = "repair"

// UnknownStateError: a repair names a state the definition does not declare.
type UnknownStateError struct {
	Definition, State string
	States            []string // those it declares, in file order
}

func (e *UnknownStateError) Error() string {
	return fmt.Sprintf("definition %s has no state %q (its states: %v)", e.Definition, e.State, e.States)
}

// Code is the error code.
func (e *UnknownStateError) Code() string { return code.UnknownState }

// Enter repairs snap: it puts the instance in state, whatever its handlers say, with patch (loosely
// typed, as decoded from JSON) merged over its context field by field, at now. The state is
// entered as a transition enters it: the state left is left (its timers cancelled, its groups'
// running children sent their on_exit), the state's timers are armed, its children started and its
// task computed, and reaching a final state sends a child's on_final. The transition's event is
// RepairEvent and its payload is payload, as given (the caller records the reason there).
func (l Limits) Enter(def *Definition, snap Snapshot, state string, patch, payload map[string]any, now time.Time) (*Transition, error) {
	st := def.States[state]
	if st == nil {
		return nil, &UnknownStateError{Definition: def.Name, State: state, States: def.StateOrder}
	}
	merged, _ := schema.Encode(snap.Context).(map[string]any)
	if merged == nil {
		merged = map[string]any{}
	}
	for k, v := range patch {
		merged[k] = v
	}
	typed, err := def.Context.Decode(merged, "", schema.Options{Required: true})
	if err != nil {
		return nil, &InvalidContextError{Err: err}
	}
	after := typed.(map[string]any)
	afterJSON, err := schema.CheckContext(after)
	if err != nil {
		return nil, &InvalidContextError{Err: err}
	}
	t := &Transition{Event: RepairEvent, Payload: payload, From: snap.State, To: state, ContextBefore: snap.Context,
		ContextAfter: after, ContextAfterJSON: afterJSON, Final: st.Final, At: now}
	if from := def.States[snap.State]; from != nil {
		t.Exit = exits(from)
		for _, timer := range from.Timers {
			t.Cancel = append(t.Cancel, timer.Event)
		}
	}
	entered := snap
	entered.State, entered.Context, entered.EnteredAt = state, after, now
	vars := entered.vars(now)
	vars.Budget = l.Budget
	scope := guards.NewScope(vars)
	if t.Arm, err = def.timers(entered, l, scope); err != nil {
		return nil, &ExpressionError{State: state, Event: RepairEvent, Where: "timer at", Err: err}
	}
	task, err := def.task(entered, l, scope)
	if err != nil {
		return nil, &ExpressionError{State: state, Event: RepairEvent, Where: "task", Err: err}
	}
	t.Task = &task
	if t.Start, err = starts(st, snap.Depth, vars, scope); err != nil {
		return nil, &ExpressionError{State: state, Event: RepairEvent, Where: "children", Err: err}
	}
	if t.Final {
		t.Sent = finalMessage(snap, state, after)
	}
	return t, nil
}
