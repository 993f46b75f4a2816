package machine

import (
	"fmt"
	"strings"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/source"
)

// UnknownEventError: the definition has no event of that name in any state.
type UnknownEventError struct {
	Event string
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("unknown event %q: no state of the definition handles it", e.Event)
}

// Code is the error code.
func (e *UnknownEventError) Code() string { return code.UnknownEvent }

// InvalidTransitionError: the current state does not handle the event.
type InvalidTransitionError struct {
	State, Event string
	Handled      []string // the events the state handles
}

func (e *InvalidTransitionError) Error() string {
	if len(e.Handled) == 0 {
		return fmt.Sprintf("state %q does not handle event %q", e.State, e.Event)
	}
	return fmt.Sprintf("state %q does not handle event %q (it handles %s)", e.State, e.Event, strings.Join(e.Handled, ", "))
}

// Code is the error code.
func (e *InvalidTransitionError) Code() string { return code.InvalidTransition }

// InstanceFinalError: the instance is in a final state.
type InstanceFinalError struct {
	State, Event string
}

func (e *InstanceFinalError) Error() string {
	return fmt.Sprintf("the instance is in final state %q and takes no events (got %q)", e.State, e.Event)
}

// Code is the error code.
func (e *InstanceFinalError) Code() string { return code.InstanceFinal }

// Blocker is one branch that was not taken because its guard did not hold.
type Blocker struct {
	To      string `json:"to" validate:"required"`
	Guard   string `json:"guard" validate:"required"`
	Message string `json:"message" validate:"required"`
}

// GuardRejectedError: the state handles the event, but no branch's guard holds.
type GuardRejectedError struct {
	State, Event string
	Blockers     []Blocker // one per branch, in order
}

func (e *GuardRejectedError) Error() string {
	msgs := make([]string, 0, len(e.Blockers))
	for _, b := range e.Blockers {
		if b.Message != "" {
			msgs = append(msgs, b.Message)
		} else {
			msgs = append(msgs, fmt.Sprintf("%s (to %s)", b.Guard, b.To))
		}
	}
	return fmt.Sprintf("event %q in state %q: no guard holds: %s", e.Event, e.State, strings.Join(msgs, "; "))
}

// Code is the error code.
func (e *GuardRejectedError) Code() string { return code.GuardRejected }

// InvalidPayloadError: the payload does not match the event's schema.
type InvalidPayloadError struct {
	Event string
	Err   error
}

func (e *InvalidPayloadError) Error() string {
	return fmt.Sprintf("invalid payload for event %q: %v", e.Event, e.Err)
}

// Code is the error code.
func (e *InvalidPayloadError) Code() string { return code.InvalidPayload }

func (e *InvalidPayloadError) Unwrap() error { return e.Err }

// InvalidContextError: a context given at creation does not match the schema.
type InvalidContextError struct {
	Err error
}

func (e *InvalidContextError) Error() string { return fmt.Sprintf("invalid context: %v", e.Err) }

// Code is the error code.
func (e *InvalidContextError) Code() string { return code.InvalidContext }

func (e *InvalidContextError) Unwrap() error { return e.Err }

// ExpressionError: an expression failed when evaluated. Where says which ("guard of branch 1",
// "set paid_at", "timer at").
type ExpressionError struct {
	State, Event, Where string
	Err                 error
}

func (e *ExpressionError) Error() string {
	if e.Event == "" { // a new instance entering its initial state
		return fmt.Sprintf("entering the initial state %q: %s: %v", e.State, e.Where, e.Err)
	}
	return fmt.Sprintf("event %q in state %q: %s: %v", e.Event, e.State, e.Where, e.Err)
}

// Code is the error code.
func (e *ExpressionError) Code() string { return code.ExpressionFailed }

func (e *ExpressionError) Unwrap() error { return e.Err }

// InvalidDefinitionError is a definition that fails validation. It lists every problem with
// file:line:col.
type InvalidDefinitionError struct {
	Diagnostics source.Diagnostics
}

func (e *InvalidDefinitionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid definition: %d error(s)", e.Diagnostics.Errors())
	for _, d := range e.Diagnostics {
		if d.Severity == source.SevError {
			b.WriteString("\n" + d.String())
		}
	}
	return b.String()
}

// Code is the error code.
func (e *InvalidDefinitionError) Code() string { return code.InvalidDefinition }
