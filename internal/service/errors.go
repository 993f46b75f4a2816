package service

import (
	"fmt"

	"github.com/fsmd-io/fsmd/internal/code"
)

// Errors of the service, in addition to the engine's (machine package). Each has a Code of
// definitions.md §4, or fsmd's own where the contract has none; the HTTP layer maps codes to statuses
// in one table.

// NotFoundError: no such definition, version or instance.
type NotFoundError struct {
	What, Key string // "instance", "i-1"
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("no %s %q", e.What, e.Key) }

// Code is the error code.
func (e *NotFoundError) Code() string { return code.NotFound }

// VersionConflictError: If-Match names another revision than the current one.
type VersionConflictError struct {
	IfMatch  int64
	Instance Instance
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("If-Match names revision %d, the instance is at revision %d", e.IfMatch, e.Instance.Revision)
}

// Code is the error code.
func (e *VersionConflictError) Code() string { return code.VersionConflict }

// IdempotencyMismatchError: an Idempotency-Key was reused with a different request.
type IdempotencyMismatchError struct {
	Key string
}

func (e *IdempotencyMismatchError) Error() string {
	return fmt.Sprintf("Idempotency-Key %q was used before with a different request", e.Key)
}

// Code is the error code.
func (e *IdempotencyMismatchError) Code() string { return code.IdempotencyMismatch }

// InstanceExistsError: a client-chosen id exists already and the request differs from its creation.
type InstanceExistsError struct {
	Instance Instance
}

func (e *InstanceExistsError) Error() string {
	return fmt.Sprintf("instance %q exists already, created with another request", e.Instance.ID)
}

// Code is the error code.
func (e *InstanceExistsError) Code() string { return code.InstanceExists }

// EventError is an event the engine refused, with the instance as it is (for problem+json's
// `instance`). Its code is the engine error's.
type EventError struct {
	Err      error
	Instance Instance
}

func (e *EventError) Error() string { return e.Err.Error() }
func (e *EventError) Unwrap() error { return e.Err }
