package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Tasks (docs/definitions.md, "Tasks"): the work list of a caller, and reassignment.

// Caller is who calls the API, for the answers that depend on it beyond the role the server
// checked: the work list and reassignment.
type Caller struct {
	Name   string
	Groups []string
	Write  bool // may send events: the write or admin role
	Admin  bool // may reassign any instance
	// Anyone: the server authenticates nobody, so every caller may act as anyone (as an admin
	// may): the work list holds every assigned instance.
	Anyone bool
}

// actor is the caller as the engine sees it.
func (c Caller) actor() machine.Actor {
	groups := c.Groups
	if groups == nil {
		groups = []string{}
	}
	return machine.Actor{Name: c.Name, Groups: groups, Kind: machine.ActorUser}
}

// names are the assignees that name the caller: its name and each of its groups.
func (c Caller) names() []string {
	var out []string
	if c.Name != "" {
		out = append(out, c.Name)
	}
	for _, g := range c.Groups {
		out = append(out, machine.GroupPrefix+g)
	}
	return out
}

// WorklistRequest is GET /v1/worklist.
type WorklistRequest struct {
	Caller Caller
	After  string // `next` of the previous page
	Limit  int
}

// WorkItem is one instance of a work list.
type WorkItem struct {
	Instance Instance   `json:"instance" validate:"required"`
	DueAt    *time.Time `json:"due_at,omitempty" format:"date-time"` // absent when the task has no date
	Overdue  bool       `json:"overdue" validate:"required"`         // due_at has passed
	// Events are those the caller may send now: the state's events with a branch that allows it
	// (none for a read key).
	Events []string `json:"events" validate:"required"`
}

// Worklist returns a page of the running instances whose assignees name the caller or one of its
// groups, oldest due date first (those without one last), then by id.
func (s *Service) Worklist(ctx context.Context, req WorklistRequest) (Page[WorkItem], error) {
	after, err := parseWorkCursor(req.After)
	if err != nil {
		return Page[WorkItem]{}, err
	}
	names := req.Caller.names()
	if len(names) == 0 && !req.Caller.Anyone {
		return Page[WorkItem]{Items: []WorkItem{}}, nil
	}
	now := s.now()
	page, err := readPage(pageSpec[persistence.InstanceRow, WorkItem]{
		limit: req.Limit,
		fetch: func(last *persistence.InstanceRow, n, maxBytes int) ([]persistence.InstanceRow, error) {
			from := after
			if last != nil {
				from = persistence.WorklistCursor{DueAt: last.DueAt, ID: last.ID}
			}
			return persistence.Worklist(ctx, s.db, persistence.WorklistParams{Names: names, Anyone: req.Caller.Anyone,
				After: from, Limit: n, MaxBytes: maxBytes})
		},
		size: persistence.InstanceRow.Bytes,
		item: func(r persistence.InstanceRow) (WorkItem, error) {
			l, err := s.load(r, r.ID, nil)
			if err != nil {
				return WorkItem{}, err
			}
			inst, err := toInstance(l.def, l.row)
			if err != nil {
				return WorkItem{}, err
			}
			events := []string{}
			if req.Caller.Write {
				events = l.def.Offered(r.State, req.Caller.actor())
			}
			return WorkItem{Instance: inst, DueAt: inst.DueAt, Overdue: taskOf(r).Overdue(now), Events: events}, nil
		},
		key: func(w WorkItem) string {
			due := ""
			if w.DueAt != nil {
				due = w.DueAt.UTC().Format(time.RFC3339Nano)
			}
			return due + "|" + w.Instance.ID
		},
	})
	return page, s.dbError(err)
}

// parseWorkCursor reads a work list's `next`: the last item's due date (empty for none), "|", its id.
func parseWorkCursor(s string) (persistence.WorklistCursor, error) {
	if s == "" {
		return persistence.WorklistCursor{}, nil
	}
	due, id, ok := strings.Cut(s, "|")
	if !ok || id == "" {
		return persistence.WorklistCursor{}, &BadRequestError{"after: not the next of a work list page"}
	}
	var c persistence.WorklistCursor
	if due != "" {
		t, err := time.Parse(time.RFC3339Nano, due)
		if err != nil {
			return persistence.WorklistCursor{}, &BadRequestError{"after: not the next of a work list page"}
		}
		c.DueAt = t
	}
	c.ID = id
	return c, nil
}

// MaxReasonLength bounds the reason of a reassignment, in characters.
const MaxReasonLength = 1000

// AssignRequest is POST /v1/instances/{id}/assign.
type AssignRequest struct {
	// To replaces the assignees: user names, and "group:NAME" for every member of a group.
	To     []string `json:"to" validate:"required"`
	Reason string   `json:"reason,omitempty" maxLength:"1000"` // why, for the history
	// Set by the server.
	InstanceID string `json:"-"`
	Caller     Caller `json:"-"`
	RequestID  string `json:"-"`
}

// AssignForbiddenError: the caller is neither an admin nor one of the instance's assignees.
type AssignForbiddenError struct {
	InstanceID string
	Assignees  []string
}

func (e *AssignForbiddenError) Error() string {
	who := "nobody"
	if len(e.Assignees) > 0 {
		who = strings.Join(e.Assignees, ", ")
	}
	return fmt.Sprintf("only an admin or one of its assignees (%s) may reassign instance %q", who, e.InstanceID)
}

// Code is the error code.
func (e *AssignForbiddenError) Code() string { return code.Forbidden }

// checkReason checks the reason an operator gives: at most MaxReasonLength characters, no control
// character but a line break; required: not empty.
func checkReason(reason string, required bool) error {
	switch {
	case required && strings.TrimSpace(reason) == "":
		return &BadRequestError{"reason is required: say why, for the history"}
	case utf8.RuneCountInString(reason) > MaxReasonLength:
		return &BadRequestError{fmt.Sprintf("reason is longer than %d characters", MaxReasonLength)}
	case !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
		return &BadRequestError{"reason contains a control character other than a line break"}
	}
	return nil
}

// assignEvent is the event name of a reassignment's audit row (its source says assign).
const assignEvent = "assign"

// Assign replaces the assignees of a running instance until it leaves its state, with an audit row
// (source assign, event "assign", the payload {to, reason}, the caller as actor). The caller must
// be an admin or one of the current assignees (by name or group).
func (s *Service) Assign(ctx context.Context, req AssignRequest) (Instance, error) {
	to, err := machine.Assignees(req.To)
	switch {
	case err != nil:
		return Instance{}, &BadRequestError{"to: " + err.Error()}
	case len(to) == 0:
		return Instance{}, &BadRequestError{"to names nobody: give at least one user name or group:NAME"}
	}
	if err := checkReason(req.Reason, false); err != nil {
		return Instance{}, err
	}
	payload, _ := json.Marshal(struct { // strings always encode
		To     []string `json:"to"`
		Reason string   `json:"reason,omitempty"`
	}{to, req.Reason})
	var next persistence.InstanceRow
	var def *machine.Definition
	var seq int64 // the audit row's, once the assignment is being written
	err = s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		row, err := persistence.InstanceGetForUpdate(ctx, tx, req.InstanceID)
		l, err := s.load(row, req.InstanceID, err)
		if err != nil {
			return err
		}
		if l.row.Final {
			inst, _ := toInstance(l.def, l.row)
			return &EventError{Err: &machine.InstanceFinalError{State: l.row.State, Event: assignEvent}, Instance: inst}
		}
		if !req.Caller.Admin && !req.Caller.Anyone && !taskOf(l.row).Assigned(req.Caller.actor()) {
			return &AssignForbiddenError{InstanceID: l.row.ID, Assignees: l.row.Assignees}
		}
		now := s.now()
		r := audit.Row{InstanceID: l.row.ID, Seq: l.row.Revision + 1, Event: assignEvent, From: l.row.State, To: l.row.State,
			Guards: []byte("[]"), Payload: payload, ContextBefore: l.row.Context, ContextAfter: l.row.Context,
			Source: audit.SourceAssign, RequestID: req.RequestID, DefinitionVersion: l.row.Version, At: now,
			Actor: req.Caller.Name, ActorKind: machine.ActorUser}
		seq = r.Seq
		if err := audit.Assign(ctx, tx, to, r); err != nil {
			return err
		}
		next, def = l.row, l.def
		next.Assignees, next.Revision, next.UpdatedAt = to, r.Seq, now
		return nil
	})
	if err := s.settleChange(ctx, req.InstanceID, assignEvent, req.RequestID, seq, err); err != nil { // outcome.go
		return Instance{}, s.dbError(err)
	}
	s.cache.put(next)
	return toInstance(def, next)
}

// taskOf is a stored instance's task as the engine has it.
func taskOf(r persistence.InstanceRow) machine.Task {
	return machine.Task{Assignees: r.Assignees, DueAt: r.DueAt}
}
