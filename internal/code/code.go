// Package code is the one catalogue of fsmd's error codes: the `code` of every problem the API
// answers, of every refusal the engine and the transition tables report, and of what the CLI
// prints. Each error type of fsmd carries one of these through a Code() method; Of reads it. The
// HTTP status of each code is in one table too, the server's (internal/server/problem.go).
//
// A client branches on the code, never on the text of a detail: a code, once given, keeps its
// meaning.
package code

import "errors"

// The refusals of an event or a request by the rules of a definition (docs/definitions.md).
const (
	UnknownEvent      = "unknown_event"      // the definition has no such event in any state
	InvalidTransition = "invalid_transition" // the instance's state does not handle the event
	GuardRejected     = "guard_rejected"     // every branch's guard was false
	// TransitionForbidden: the state handles the event, but no branch's `allow` names a group of
	// the actor's.
	TransitionForbidden = "transition_forbidden"
	InstanceFinal       = "instance_final"     // the instance is in a final state
	InstanceSuspended   = "instance_suspended" // an operator suspended the instance: it takes no event until resumed
	InvalidPayload      = "invalid_payload"    // the payload does not fit the event's schema
	InvalidContext      = "invalid_context"    // the context does not fit the definition's schema
	InvalidDefinition   = "invalid_definition" // a definition that does not validate
	// ExpressionFailed: an expression that compiled failed when evaluated (an index out of range,
	// the memory or time budget exceeded, a value its field refuses). The definition is at fault,
	// and the instance is left as it was.
	ExpressionFailed = "expression_failed"
)

// The refusals of a request by the state of the service (docs/api.md).
const (
	NotFound            = "not_found"            // no such instance, definition, version, migration or dead letter
	VersionConflict     = "version_conflict"     // If-Match names another revision than the instance's
	IdempotencyMismatch = "idempotency_mismatch" // an Idempotency-Key reused with another request
	InstanceExists      = "instance_exists"      // a client-chosen id taken by another instance
	MigrationRunning    = "migration_running"    // a migration of the definition is running already
	KeyExists           = "key_exists"           // another running instance of the definition has the key value (its `keys`)
	BulkRunning         = "bulk_running"         // a bulk of the definition is running already
	UnknownState        = "unknown_state"        // a repair names a state its definition does not declare
)

// The refusals of the HTTP layer, before the service is asked (or when it cannot answer).
const (
	InvalidRequest       = "invalid_request"        // malformed JSON, unknown fields, bad ids, query values or headers
	BodyTooLarge         = "body_too_large"         // over the body limit
	UnsupportedMediaType = "unsupported_media_type" // a body of another content type, or one a web page may send
	MethodNotAllowed     = "method_not_allowed"     // the path exists, the method does not
	Unauthorized         = "unauthorized"           // no key, or not a key of this server
	Forbidden            = "forbidden"              // the key's role may not do this
	TooManyRequests      = "too_many_requests"      // too many failed authentications from the client
	Unavailable          = "unavailable"            // the database does not answer, or the service is not ready: nothing was written
	OutcomeUnknown       = "outcome_unknown"        // a write's connection broke and its outcome could not be read back
	Internal             = "internal_error"         // a fault of fsmd's: the real error is only in the log
)

// Of returns the code an error carries (the first Code() in its chain), or "" when it has none.
func Of(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}
