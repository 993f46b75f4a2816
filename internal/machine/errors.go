package machine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fsmd-io/fsmd/internal/source"
)

// Error codes of definitions.md §4, shared by the engine, the transition tables, the CLI and the API.
const (
	CodeUnknownEvent        = "unknown_event"
	CodeInvalidTransition   = "invalid_transition"
	CodeGuardRejected       = "guard_rejected"
	CodeInstanceFinal       = "instance_final"
	CodeInvalidPayload      = "invalid_payload"
	CodeInvalidContext      = "invalid_context"
	CodeNotFound            = "not_found"
	CodeVersionConflict     = "version_conflict"
	CodeIdempotencyMismatch = "idempotency_mismatch"
	CodeInvalidDefinition   = "invalid_definition"
	// CodeExpressionFailed is fsmd's own: an expression that compiled failed when evaluated (an index
	// out of range, the memory budget exceeded, a value its field refuses). The definition is at fault,
	// and the instance is left as it was.
	CodeExpressionFailed = "expression_failed"
)

// CodeOf returns the error code of err, or "" when it carries none.
func CodeOf(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}

// UnknownEventError: the definition has no event of that name in any state.
type UnknownEventError struct {
	Event string
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("unknown event %q: no state of the definition handles it", e.Event)
}

// Code is the error code.
func (e *UnknownEventError) Code() string { return CodeUnknownEvent }

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
func (e *InvalidTransitionError) Code() string { return CodeInvalidTransition }

// InstanceFinalError: the instance is in a final state.
type InstanceFinalError struct {
	State, Event string
}

func (e *InstanceFinalError) Error() string {
	return fmt.Sprintf("the instance is in final state %q and takes no events (got %q)", e.State, e.Event)
}

// Code is the error code.
func (e *InstanceFinalError) Code() string { return CodeInstanceFinal }

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
func (e *GuardRejectedError) Code() string { return CodeGuardRejected }

// InvalidPayloadError: the payload does not match the event's schema.
type InvalidPayloadError struct {
	Event string
	Err   error
}

func (e *InvalidPayloadError) Error() string {
	return fmt.Sprintf("invalid payload for event %q: %v", e.Event, e.Err)
}

// Code is the error code.
func (e *InvalidPayloadError) Code() string { return CodeInvalidPayload }

func (e *InvalidPayloadError) Unwrap() error { return e.Err }

// InvalidContextError: a context given at creation does not match the schema.
type InvalidContextError struct {
	Err error
}

func (e *InvalidContextError) Error() string { return fmt.Sprintf("invalid context: %v", e.Err) }

// Code is the error code.
func (e *InvalidContextError) Code() string { return CodeInvalidContext }

func (e *InvalidContextError) Unwrap() error { return e.Err }

// ExpressionError: an expression failed when evaluated. Where says which ("guard of branch 1",
// "set paid_at", "timer at").
type ExpressionError struct {
	State, Event, Where string
	Err                 error
}

func (e *ExpressionError) Error() string {
	return fmt.Sprintf("event %q in state %q: %s: %v", e.Event, e.State, e.Where, e.Err)
}

// Code is the error code.
func (e *ExpressionError) Code() string { return CodeExpressionFailed }

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
func (e *InvalidDefinitionError) Code() string { return CodeInvalidDefinition }
