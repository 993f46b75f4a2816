package service

import (
	"encoding/json"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// The types of the API (docs/api.md). Contexts and payloads are in their JSON form here
// (times as RFC 3339 text, durations in Go syntax): schema.Encode of the typed values.
//
// Their tags other than json are read by swag only, for the API document (`make openapi`), and
// checked by nothing at run time: validate:"required" marks a field every answer has (or a body
// must have), format:"date-time" a time, extensions:"x-nullable" a field that may be null, and
// enums, minimum and maxLength the values the server takes or sends.

// Instance is an instance as the API shows it.
type Instance struct {
	ID         string         `json:"id" validate:"required"`
	Definition string         `json:"definition" validate:"required"`
	Version    int            `json:"version" validate:"required"`
	State      string         `json:"state" validate:"required"`
	Context    map[string]any `json:"context" validate:"required"`
	Final      bool           `json:"final" validate:"required"`
	Revision   int64          `json:"revision" validate:"required"`
	CreatedAt  time.Time      `json:"created_at" validate:"required" format:"date-time"`
	UpdatedAt  time.Time      `json:"updated_at" validate:"required" format:"date-time"`
	EnteredAt  time.Time      `json:"entered_at" validate:"required" format:"date-time"`
	Events     []string       `json:"events" validate:"required"` // the events the current state handles
	// Parent is the instance that started this one as a child; absent for an instance created
	// through the API.
	Parent *ParentRef `json:"parent,omitempty"`
	// Children are the child groups of the current entry of its state, by group: GET
	// /v1/instances/{id} only.
	Children map[string]ChildGroupCounts `json:"children,omitempty"`
	// Timers are the pending timers of the current state, by due time: GET /v1/instances/{id} only
	// (absent from the other answers).
	Timers []PendingTimer `json:"timers,omitzero"`
	// Assignees and DueAt are the task of the current state (its `assign` and `due`, or a later
	// POST /v1/instances/{id}/assign): user names and "group:NAME"s; absent when it has none.
	Assignees []string   `json:"assignees,omitempty"`
	DueAt     *time.Time `json:"due_at,omitempty" format:"date-time"`
	// Suspended: an operator suspended it (events are refused with instance_suspended until it is
	// resumed); Terminated: an operator ended it where it was (it is final). Absent when false.
	Suspended  bool `json:"suspended,omitempty"`
	Terminated bool `json:"terminated,omitempty"`
}

// ParentRef is a child's parent: its id, the group that started the child, and the child's index
// in it.
type ParentRef struct {
	ID    string `json:"id" example:"trip-1" validate:"required"`
	Group string `json:"group" example:"legs" validate:"required"`
	Index int    `json:"index" example:"0" validate:"required"`
}

// ChildGroupCounts are one child group's children: how many were started, run, and ended.
type ChildGroupCounts struct {
	Total   int `json:"total" validate:"required"`
	Running int `json:"running" validate:"required"`
	Final   int `json:"final" validate:"required"`
}

// PendingTimer is an armed timer of an instance: its event fires at due_at.
type PendingTimer struct {
	Event     string    `json:"event" validate:"required"`
	DueAt     time.Time `json:"due_at" validate:"required" format:"date-time"`
	Attempts  int       `json:"attempts,omitempty"`                      // failed attempts to fire it so far
	LastError string    `json:"last_error,omitempty"`                    // the last failure
	NextTryAt time.Time `json:"next_try_at,omitzero" format:"date-time"` // when it is tried again, after a failure
}

// Transition is an accepted event as the API shows it.
type Transition struct {
	Seq           int64                 `json:"seq" validate:"required"`
	Event         string                `json:"event" validate:"required"`
	From          string                `json:"from" validate:"required"`
	To            string                `json:"to" validate:"required"`
	Branch        int                   `json:"branch" validate:"required"`
	Guards        []machine.GuardResult `json:"guards" validate:"required"`
	Payload       map[string]any        `json:"payload" validate:"required"`
	ContextBefore map[string]any        `json:"context_before" validate:"required"`
	ContextAfter  map[string]any        `json:"context_after" validate:"required"`
	At            time.Time             `json:"at" validate:"required" format:"date-time"`
}

// EventResult is the answer to an accepted event.
type EventResult struct {
	Instance   Instance   `json:"instance" validate:"required"`
	Transition Transition `json:"transition" validate:"required"`
}

// CreateInstance is the body of POST /v1/instances.
type CreateInstance struct {
	Definition string         `json:"definition" validate:"required" minLength:"1" maxLength:"200"`
	ID         string         `json:"id,omitempty" maxLength:"200"`
	Context    map[string]any `json:"context,omitempty" extensions:"x-nullable"`
}

// SendEvent is POST /v1/instances/{id}/events: its body and headers.
type SendEvent struct {
	InstanceID     string         `json:"-"`
	Event          string         `json:"event" validate:"required" minLength:"1" maxLength:"200"`
	Payload        map[string]any `json:"payload,omitempty" extensions:"x-nullable"`
	IdempotencyKey string         `json:"-"` // Idempotency-Key; "" for none
	IfMatch        *int64         `json:"-"` // If-Match: the revision the client saw; nil for none
	RequestID      string         `json:"-"`
	Actor          string         `json:"-"` // the name of the key or token that sent it; "" without authentication
	Groups         []string       `json:"-"` // its groups

	source string // audit.SourceAPI (""), audit.SourceTimer or audit.SourceMessage
	sender string // the child whose on_final this is (a message marked ChildFinal); "" otherwise
	from   string // the instance that sent the message (source message)
}

// Explanation is what an event would do now, with no side effect.
type Explanation struct {
	Event    string          `json:"event" validate:"required"`
	State    string          `json:"state" validate:"required"`
	Branches []BranchOutcome `json:"branches" validate:"required"` // every branch of the handler, each guard evaluated
	To       string          `json:"to,omitempty"`
	Context  map[string]any  `json:"context,omitempty"` // the context after, when accepted
	Error    *ErrorInfo      `json:"error,omitempty"`   // why it would be refused
}

// BranchOutcome is one branch of an explanation.
type BranchOutcome struct {
	To      string `json:"to" validate:"required"`
	Guard   string `json:"guard,omitempty"`
	Message string `json:"message,omitempty"`
	Result  *bool  `json:"result,omitempty"` // nil for an unguarded branch
	Taken   bool   `json:"taken" validate:"required"`
	Allowed bool   `json:"allowed" validate:"required"` // the caller may take it (the branch's allow)
}

// ErrorInfo is an error code and its text.
type ErrorInfo struct {
	Code   string `json:"code" validate:"required"`
	Detail string `json:"detail" validate:"required"`
}

// HistoryEntry is one row of an instance's audit log.
type HistoryEntry struct {
	Seq               int64          `json:"seq" validate:"required"`
	Event             string         `json:"event" validate:"required"`
	From              string         `json:"from" validate:"required"`
	To                string         `json:"to" validate:"required"`
	Payload           map[string]any `json:"payload" validate:"required"`
	ContextBefore     map[string]any `json:"context_before" validate:"required"`
	ContextAfter      map[string]any `json:"context_after" validate:"required"`
	Source            string         `json:"source" validate:"required" enums:"api,timer,migration,message,assign,admin,repair,bulk"` // audit.Source*
	RequestID         string         `json:"request_id" validate:"required"`
	IdempotencyKey    string         `json:"idempotency_key" validate:"required"`
	DefinitionVersion int            `json:"definition_version" validate:"required"`
	FromVersion       int            `json:"from_version,omitempty"` // source migration: the version it came from
	// Dropped (source timer or message only): the timer's or the message's event was refused, and
	// why ("guard_rejected: ..."); nothing but the revision changed.
	Dropped string `json:"dropped,omitempty"`
	// Actor is the name of who sent the event: the key or token (source api, with authentication),
	// the sending instance (source message).
	Actor string `json:"actor,omitempty"`
	// ActorKind is the actor's kind: user, timer, message, migration or system.
	ActorKind string    `json:"actor_kind" validate:"required" enums:"user,timer,message,migration,system"`
	At        time.Time `json:"at" validate:"required" format:"date-time"`
}

// Page is a page of a list, in key order; Next is the key to pass as `after` for the next page, ""
// on the last page. A page holds at most its limit of items and at most MaxPageBytes of JSON
// (page.go).
type Page[T any] struct {
	Items []T    `json:"items" validate:"required"`
	Next  string `json:"next,omitempty"`

	raw []json.RawMessage // the items' JSON, as readPage measured them
}

// InstanceFilter selects instances for GET /v1/instances.
type InstanceFilter struct {
	Definition string
	State      string
	Version    int            // 0 for any
	Parent     string         // only the children of this instance ("" for any)
	Group      string         // with Parent: only the children of this group
	Assignee   string         // only the instances whose assignees name it: a user name, or group:NAME ("" for any)
	Overdue    bool           // only the running instances past their due date
	Ctx        []CtxCondition // ctx.<path>[op]=value filters, all of which must hold; they need Definition (find.go)
	Suspended  bool           // only the suspended instances
	After      string
	Limit      int
}

// DefinitionSummary is one entry of GET /v1/definitions.
type DefinitionSummary struct {
	Name        string `json:"name" validate:"required"`
	Version     int    `json:"version" validate:"required"` // the latest
	Description string `json:"description" validate:"required"`
	Running     int64  `json:"running" validate:"required"` // instances not in a final state, every version
	// Keys are the latest version's `keys` (dotted paths): what an instance of it may be found by
	// (POST /v1/definitions/{name}/events, the console's search); absent when it has none.
	Keys []string `json:"keys,omitempty"`
}

// DefinitionVersion is one stored version of a definition.
type DefinitionVersion struct {
	Name        string   `json:"name" validate:"required"`
	Version     int      `json:"version" validate:"required"`
	Description string   `json:"description" validate:"required"`
	Hash        string   `json:"hash" validate:"required"` // sha256 of the source, hex
	Source      string   `json:"source" validate:"required"`
	States      []State  `json:"states" validate:"required"`
	Events      []string `json:"events" validate:"required"`
	// Payloads gives each event of the definition (those its states handle and those it declares)
	// its payload's schema as JSON Schema: an object that takes the declared fields, and no field
	// for an event without a declared payload.
	Payloads  map[string]any `json:"payloads" validate:"required" swaggertype:"object"`
	CreatedAt time.Time      `json:"created_at" validate:"required" format:"date-time"`
	// Keys and Index are the version's `keys` and `index` (dotted paths to context fields), absent
	// when it has none (docs/operators.md, Find and Correlate).
	Keys  []string `json:"keys,omitempty"`
	Index []string `json:"index,omitempty"`
	// RunningByVersion counts the definition's running instances (not in a final state) per version
	// they run on, in version order, leaving out versions with none. Only GET /v1/definitions/{name}
	// has it (as [] when nothing runs); the answers about one stored version leave it out. Entries
	// of versions older than Version are the instances not migrated: stranded, or waiting for a
	// migration (policy manual, or one still running).
	RunningByVersion []RunningCount `json:"running_by_version,omitzero"`
}

// RunningCount is how many running instances of a definition run on one of its versions.
type RunningCount struct {
	Version int   `json:"version" validate:"required"`
	Count   int64 `json:"count" validate:"required"`
}

// State is a state of a definition version.
type State struct {
	Name        string   `json:"name" validate:"required"`
	Description string   `json:"description,omitempty"`
	Final       bool     `json:"final" validate:"required"`
	Events      []string `json:"events" validate:"required"`
	// Branches are the branches of the state's handlers, event by event in file order, each
	// handler's in order: where each leads and who may take it, for a client (the console) that
	// offers a caller only the events it may send.
	Branches []StateBranch `json:"branches" validate:"required"`
}

// StateBranch is one branch of a state's handler for an event.
type StateBranch struct {
	Event string `json:"event" validate:"required"`
	To    string `json:"to" validate:"required"` // the state it leads to: the state itself for a branch without `to`
	// Allow lists the groups whose users may take it (docs/definitions.md, "Actors"); absent when
	// every actor may.
	Allow []string `json:"allow,omitempty"`
}

// PutResult is the answer to PUT /v1/definitions/{name}.
type PutResult struct {
	Definition DefinitionVersion `json:"definition" validate:"required"`
	Created    bool              `json:"created" validate:"required"` // false when the content was already registered
	// Warnings never refuse a version: the validation's (the graph), and migrate rules for states
	// that no older version has. The same content always gets the same warnings; an empty list when none.
	Warnings []source.Diagnostic `json:"warnings" validate:"required"`
}

// ReloadResult is the answer to POST /v1/reload: every definition of the folder, by name.
type ReloadResult struct {
	Definitions []Reloaded          `json:"definitions" validate:"required"`
	Warnings    []source.Diagnostic `json:"warnings" validate:"required"` // every file's, as in PutResult; an empty list when none
}

// Reloaded is one definition of a reload: the version its file's content is registered as.
type Reloaded struct {
	Name    string `json:"name" validate:"required"`
	Version int    `json:"version" validate:"required"`
	Created bool   `json:"created" validate:"required"` // false when the content was already registered
}

// InvalidDefinition carries the diagnostics of a definition that fails validation.
type InvalidDefinition = machine.InvalidDefinitionError

// Diagnostics of a definition.
type Diagnostics = source.Diagnostics

// MigrationRequest is the body of POST /v1/definitions/{name}/migrations and .../migrations/plan.
type MigrationRequest struct {
	ToVersion int              `json:"to_version,omitempty" minimum:"0"` // 0 or absent: the latest version
	Filter    *MigrationFilter `json:"filter,omitempty"`

	auto bool // started by fsmd for policy auto, not asked for: not recorded when nothing is left to move
}

// MigrationFilter narrows a migration to the running instances of one older version and/or one
// state (fsmd's reading of api.md's `filter`).
type MigrationFilter struct {
	Version int    `json:"version,omitempty" minimum:"0"`
	State   string `json:"state,omitempty"`
}
