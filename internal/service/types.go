package service

import (
	"encoding/json"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// The types of the API (../shared/spec/api.md). Contexts and payloads are in their JSON form here
// (times as RFC 3339 text, durations in Go syntax): schema.Encode of the typed values.

// Instance is an instance as the API shows it.
type Instance struct {
	ID         string         `json:"id"`
	Definition string         `json:"definition"`
	Version    int            `json:"version"`
	State      string         `json:"state"`
	Context    map[string]any `json:"context"`
	Final      bool           `json:"final"`
	Revision   int64          `json:"revision"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	EnteredAt  time.Time      `json:"entered_at"`
	Events     []string       `json:"events"` // the events the current state handles
	// Timers are the pending timers of the current state, by due time: GET /v1/instances/{id} only
	// (absent from the other answers).
	Timers []PendingTimer `json:"timers,omitzero"`
}

// PendingTimer is an armed timer of an instance: its event fires at due_at.
type PendingTimer struct {
	Event     string    `json:"event"`
	DueAt     time.Time `json:"due_at"`
	Attempts  int       `json:"attempts,omitempty"`   // failed attempts to fire it so far
	LastError string    `json:"last_error,omitempty"` // the last failure
	NextTryAt time.Time `json:"next_try_at,omitzero"` // when it is tried again, after a failure
}

// Transition is an accepted event as the API shows it.
type Transition struct {
	Seq           int64                 `json:"seq"`
	Event         string                `json:"event"`
	From          string                `json:"from"`
	To            string                `json:"to"`
	Branch        int                   `json:"branch"`
	Guards        []machine.GuardResult `json:"guards"`
	Payload       map[string]any        `json:"payload"`
	ContextBefore map[string]any        `json:"context_before"`
	ContextAfter  map[string]any        `json:"context_after"`
	At            time.Time             `json:"at"`
}

// EventResult is the answer to an accepted event.
type EventResult struct {
	Instance   Instance   `json:"instance"`
	Transition Transition `json:"transition"`
}

// CreateInstance is the body of POST /v1/instances.
type CreateInstance struct {
	Definition string         `json:"definition"`
	ID         string         `json:"id,omitempty"`
	Context    map[string]any `json:"context,omitempty"`
}

// SendEvent is POST /v1/instances/{id}/events: its body and headers.
type SendEvent struct {
	InstanceID     string         `json:"-"`
	Event          string         `json:"event"`
	Payload        map[string]any `json:"payload,omitempty"`
	IdempotencyKey string         `json:"-"` // Idempotency-Key; "" for none
	IfMatch        *int64         `json:"-"` // If-Match: the revision the client saw; nil for none
	RequestID      string         `json:"-"`
	Actor          string         `json:"-"` // the name of the API key that sent it; "" without keys

	source string // audit.SourceAPI ("") or audit.SourceTimer
}

// Explanation is what an event would do now, with no side effect.
type Explanation struct {
	Event    string          `json:"event"`
	State    string          `json:"state"`
	Branches []BranchOutcome `json:"branches"` // every branch of the handler, each guard evaluated
	To       string          `json:"to,omitempty"`
	Context  map[string]any  `json:"context,omitempty"` // the context after, when accepted
	Error    *ErrorInfo      `json:"error,omitempty"`   // why it would be refused
}

// BranchOutcome is one branch of an explanation.
type BranchOutcome struct {
	To      string `json:"to"`
	Guard   string `json:"guard,omitempty"`
	Message string `json:"message,omitempty"`
	Result  *bool  `json:"result,omitempty"` // nil for an unguarded branch
	Taken   bool   `json:"taken"`
}

// ErrorInfo is an error code and its text.
type ErrorInfo struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// HistoryEntry is one row of an instance's audit log.
type HistoryEntry struct {
	Seq               int64          `json:"seq"`
	Event             string         `json:"event"`
	From              string         `json:"from"`
	To                string         `json:"to"`
	Payload           map[string]any `json:"payload"`
	ContextBefore     map[string]any `json:"context_before"`
	ContextAfter      map[string]any `json:"context_after"`
	Source            string         `json:"source"` // api, timer, migration
	RequestID         string         `json:"request_id"`
	IdempotencyKey    string         `json:"idempotency_key"`
	DefinitionVersion int            `json:"definition_version"`
	FromVersion       int            `json:"from_version,omitempty"` // source migration: the version it came from
	// Dropped (source timer only): the timer's event was refused, and why ("guard_rejected: ...");
	// nothing but the revision changed.
	Dropped string `json:"dropped,omitempty"`
	// Actor is the name of the API key that sent the event (source api, when fsmd has keys).
	Actor string    `json:"actor,omitempty"`
	At    time.Time `json:"at"`
}

// Page is a page of a list, in key order; Next is the key to pass as `after` for the next page, ""
// on the last page. A page holds at most its limit of items and at most MaxPageBytes of JSON
// (page.go).
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`

	raw []json.RawMessage // the items' JSON, as readPage measured them
}

// InstanceFilter selects instances for GET /v1/instances.
type InstanceFilter struct {
	Definition string
	State      string
	Version    int // 0 for any
	After      string
	Limit      int
}

// DefinitionSummary is one entry of GET /v1/definitions.
type DefinitionSummary struct {
	Name        string `json:"name"`
	Version     int    `json:"version"` // the latest
	Description string `json:"description"`
	Running     int64  `json:"running"` // instances not in a final state, every version
}

// DefinitionVersion is one stored version of a definition.
type DefinitionVersion struct {
	Name        string    `json:"name"`
	Version     int       `json:"version"`
	Description string    `json:"description"`
	Hash        string    `json:"hash"` // sha256 of the source, hex
	Source      string    `json:"source"`
	States      []State   `json:"states"`
	Events      []string  `json:"events"`
	CreatedAt   time.Time `json:"created_at"`
	// RunningByVersion counts the definition's running instances (not in a final state) per version
	// they run on, in version order, leaving out versions with none. Only GET /v1/definitions/{name}
	// has it (as [] when nothing runs); the answers about one stored version leave it out. Entries
	// of versions older than Version are the instances not migrated: stranded, or waiting for a
	// migration (policy manual, or one still running).
	RunningByVersion []RunningCount `json:"running_by_version,omitzero"`
}

// RunningCount is how many running instances of a definition run on one of its versions.
type RunningCount struct {
	Version int   `json:"version"`
	Count   int64 `json:"count"`
}

// State is a state of a definition version.
type State struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Final       bool     `json:"final"`
	Events      []string `json:"events"`
}

// PutResult is the answer to PUT /v1/definitions/{name}.
type PutResult struct {
	Definition DefinitionVersion `json:"definition"`
	Created    bool              `json:"created"` // false when the content was already registered
	// Warnings never refuse a version: the validation's (the graph), and migrate rules for states
	// that no older version has. The same content always gets the same warnings; an empty list when none.
	Warnings []source.Diagnostic `json:"warnings"`
}

// ReloadResult is the answer to POST /v1/reload: every definition of the folder, by name.
type ReloadResult struct {
	Definitions []Reloaded          `json:"definitions"`
	Warnings    []source.Diagnostic `json:"warnings"` // every file's, as in PutResult; an empty list when none
}

// Reloaded is one definition of a reload: the version its file's content is registered as.
type Reloaded struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Created bool   `json:"created"` // false when the content was already registered
}

// InvalidDefinition carries the diagnostics of a definition that fails validation.
type InvalidDefinition = machine.InvalidDefinitionError

// Diagnostics of a definition.
type Diagnostics = source.Diagnostics

// MigrationRequest is the body of POST /v1/definitions/{name}/migrations and .../migrations/plan.
type MigrationRequest struct {
	ToVersion int              `json:"to_version,omitempty"` // 0 or absent: the latest version
	Filter    *MigrationFilter `json:"filter,omitempty"`
}

// MigrationFilter narrows a migration to the running instances of one older version and/or one
// state (fsmd's reading of api.md's `filter`).
type MigrationFilter struct {
	Version int    `json:"version,omitempty"`
	State   string `json:"state,omitempty"`
}
