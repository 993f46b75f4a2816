package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// What operators do to one instance (docs/operators.md): suspend it, resume it, terminate it,
// repair it. Each is audited: a row in the instance's history with the operator as actor and the
// reason in its payload.

// InstanceSuspendedError: the instance is suspended; it takes no event until resumed.
type InstanceSuspendedError struct {
	ID, Event string
}

func (e *InstanceSuspendedError) Error() string {
	return fmt.Sprintf("instance %q is suspended: it takes no event (%s) until an operator resumes it", e.ID, e.Event)
}

// Code is the error code.
func (e *InstanceSuspendedError) Code() string { return code.InstanceSuspended }

// AdminRequest is POST /v1/instances/{id}/suspend, /resume and /terminate.
type AdminRequest struct {
	Reason string `json:"reason,omitempty" maxLength:"1000"` // why, for the history (required to suspend and terminate)
	// Set by the server.
	InstanceID string `json:"-"`
	Caller     Caller `json:"-"`
	RequestID  string `json:"-"`

	source string // audit.SourceAdmin (""), or audit.SourceBulk for a bulk's action
}

// The events of the operators' audit rows (source admin).
const (
	suspendEvent   = "suspend"
	resumeEvent    = "resume"
	terminateEvent = "terminate"
)

// Suspend suspends a running instance: its events are refused (instance_suspended), its timers
// held, messages to it wait. Suspending a suspended instance changes nothing.
func (s *Service) Suspend(ctx context.Context, req AdminRequest) (Instance, error) {
	if err := checkReason(req.Reason, true); err != nil {
		return Instance{}, err
	}
	return s.setFlags(ctx, req, suspendEvent, func(tx *persistence.Tx, l loaded, u *persistence.AdminUpdate) (bool, error) {
		if l.row.Suspended {
			return false, nil
		}
		u.Suspended = true
		return true, persistence.TimersHold(ctx, tx, l.row.ID)
	})
}

// Resume resumes a suspended instance: its timers whose time passed fire (each once), the messages
// that waited are delivered. Resuming an instance that is not suspended changes nothing.
func (s *Service) Resume(ctx context.Context, req AdminRequest) (Instance, error) {
	if err := checkReason(req.Reason, false); err != nil {
		return Instance{}, err
	}
	inst, err := s.setFlags(ctx, req, resumeEvent, func(tx *persistence.Tx, l loaded, u *persistence.AdminUpdate) (bool, error) {
		if !l.row.Suspended {
			return false, nil
		}
		u.Suspended = false
		return true, persistence.TimersRelease(ctx, tx, l.row.ID)
	})
	if err == nil {
		s.messageWake.signal() // the messages that waited for it
	}
	return inst, err
}

// Terminate ends a running instance where it is: it becomes final (terminated), its timers are
// cancelled, its task cleared, and its running children are terminated with it, each audited. No
// on_final is sent to its parent: it did not reach a final state of its definition.
func (s *Service) Terminate(ctx context.Context, req AdminRequest) (Instance, error) {
	if err := checkReason(req.Reason, true); err != nil {
		return Instance{}, err
	}
	return s.setFlags(ctx, req, terminateEvent, func(tx *persistence.Tx, l loaded, u *persistence.AdminUpdate) (bool, error) {
		u.Final, u.Terminated, u.Suspended, u.ClearTask = true, true, false, true
		if err := persistence.TimersReplace(ctx, tx, l.row.ID, true, u.Revision, nil); err != nil {
			return false, err
		}
		return true, s.terminateChildren(ctx, tx, l.row.ID, req)
	})
}

// terminateChildren terminates the running children of parent, and theirs, in tx.
func (s *Service) terminateChildren(ctx context.Context, tx *persistence.Tx, parent string, req AdminRequest) error {
	kids, err := persistence.InstanceRunningChildren(ctx, tx, parent)
	if err != nil {
		return err
	}
	for _, k := range kids {
		child := req
		child.InstanceID, child.Reason = k.ID, fmt.Sprintf("its parent %s was terminated: %s", parent, req.Reason)
		u := persistence.AdminUpdate{ID: k.ID, ExpectRevision: k.Revision, Revision: k.Revision + 1, UpdatedAt: s.now(),
			Final: true, Terminated: true, ClearTask: true}
		if err := persistence.InstanceSetFlags(ctx, tx, u, adminRow(k, child, terminateEvent, u)); err != nil {
			return err
		}
		if err := persistence.TimersReplace(ctx, tx, k.ID, true, u.Revision, nil); err != nil {
			return err
		}
		if err := s.terminateChildren(ctx, tx, k.ID, req); err != nil {
			return err
		}
		s.cache.drop(k.ID)
	}
	return nil
}

// setFlags changes a running instance's flags in one transaction, with its row locked: change
// sets them on u and writes what goes with them, or says there is nothing to change (the
// instance is answered as it is).
func (s *Service) setFlags(ctx context.Context, req AdminRequest, event string,
	change func(tx *persistence.Tx, l loaded, u *persistence.AdminUpdate) (bool, error)) (Instance, error) {
	var next persistence.InstanceRow
	var def *machine.Definition
	var seq int64 // the audit row's, once the change is being written
	err := s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		row, err := persistence.InstanceGetForUpdate(ctx, tx, req.InstanceID)
		l, err := s.load(row, req.InstanceID, err)
		if err != nil {
			return err
		}
		next, def = l.row, l.def
		if l.row.Final {
			inst, _ := toInstance(l.def, l.row)
			return &EventError{Err: &machine.InstanceFinalError{State: l.row.State, Event: event}, Instance: inst}
		}
		now := s.now()
		u := persistence.AdminUpdate{ID: l.row.ID, ExpectRevision: l.row.Revision, Revision: l.row.Revision + 1, UpdatedAt: now,
			Suspended: l.row.Suspended, Terminated: l.row.Terminated, Final: l.row.Final}
		changed, err := change(tx, l, &u)
		if err != nil || !changed {
			return err
		}
		seq = u.Revision
		if err := persistence.InstanceSetFlags(ctx, tx, u, adminRow(l.row, req, event, u)); err != nil {
			return err
		}
		next.Suspended, next.Terminated, next.Final, next.Revision, next.UpdatedAt = u.Suspended, u.Terminated, u.Final, u.Revision, now
		if u.ClearTask {
			next.Task = persistence.Task{}
		}
		return nil
	})
	s.cache.drop(req.InstanceID)
	if err := s.settleChange(ctx, req.InstanceID, event, req.RequestID, seq, err); err != nil {
		return Instance{}, s.dbError(err)
	}
	return toInstance(def, next)
}

// adminRow is the audit row of an operator's change u of the instance row: source admin, the
// state unchanged, the reason in the payload, the operator as actor.
func adminRow(row persistence.InstanceRow, req AdminRequest, event string, u persistence.AdminUpdate) audit.Row {
	payload, _ := json.Marshal(struct { // a string always encodes
		Reason string `json:"reason,omitempty"`
	}{req.Reason})
	return audit.Row{InstanceID: row.ID, Seq: u.Revision, Event: event, From: row.State, To: row.State, Guards: []byte("[]"),
		Payload: payload, ContextBefore: row.Context, ContextAfter: row.Context, Source: cmp.Or(req.source, audit.SourceAdmin), RequestID: req.RequestID,
		DefinitionVersion: row.Version, At: u.UpdatedAt, Actor: req.Caller.Name, ActorKind: machine.ActorUser}
}

// RepairRequest is POST /v1/instances/{id}/repair.
type RepairRequest struct {
	State   string         `json:"state" validate:"required" minLength:"1" maxLength:"200"` // the state to put it in
	Context map[string]any `json:"context,omitempty" extensions:"x-nullable"`               // fields merged over its context
	Reason  string         `json:"reason" validate:"required" maxLength:"1000"`             // why, for the history
	// Set by the server.
	InstanceID string `json:"-"`
	Caller     Caller `json:"-"`
	RequestID  string `json:"-"`
}

// Repair puts a running instance in a state of its definition, entering it (machine.Enter: its
// timers armed, its children started, its task computed), with context merged over its own. The
// transition is written as an event's is, with source repair, event repair and the payload
// {state, context, reason}. UnknownStateError (422) for a state its version does not declare,
// InvalidContextError (422) for a context its schema refuses: nothing is written.
func (s *Service) Repair(ctx context.Context, req RepairRequest) (EventResult, error) {
	if err := checkReason(req.Reason, true); err != nil {
		return EventResult{}, err
	}
	release, err := s.turns.take(ctx, req.InstanceID)
	if err != nil {
		return EventResult{}, err
	}
	defer release()
	defer s.cache.drop(req.InstanceID)
	payload := map[string]any{"state": req.State, "reason": req.Reason}
	if len(req.Context) > 0 {
		payload["context"] = req.Context
	}
	ev := SendEvent{InstanceID: req.InstanceID, Event: machine.RepairEvent, RequestID: req.RequestID, Actor: req.Caller.Name,
		Groups: req.Caller.Groups, source: audit.SourceRepair}
	for range maxDecisions {
		l, err := s.instance(ctx, s.db, req.InstanceID)
		if err != nil {
			return EventResult{}, err
		}
		inst, err := toInstance(l.def, l.row)
		if err != nil {
			return EventResult{}, err
		}
		if l.row.Final {
			return EventResult{}, &EventError{Err: &machine.InstanceFinalError{State: l.row.State, Event: machine.RepairEvent}, Instance: inst}
		}
		snap, err := snapshot(l.def, l.row)
		if err != nil {
			return EventResult{}, err
		}
		now := s.now()
		t, err := s.limits.Enter(l.def, snap, req.State, req.Context, payload, now)
		if err != nil {
			return EventResult{}, &EventError{Err: err, Instance: inst}
		}
		var stored map[string]groupCount
		if len(l.def.Groups) > 0 {
			if stored, err = storedGroups(l.row); err != nil {
				return EventResult{}, err
			}
		}
		m, err := s.complete(ctx, l, t, stored, "", now)
		if err != nil {
			return EventResult{}, s.dbError(err)
		}
		res, _, err := s.write(ctx, s.db, l, m, ev, "", now)
		if errors.Is(err, persistence.ErrConflict) || (errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err)) {
			// The write did not say whether it applied (outcome.go): the instance moved on, maybe by
			// this write sent again on a new connection, or the connection broke once it was sent.
			out, err := s.eventOutcome(ctx, ev, l.row.Revision+1, err)
			switch {
			case err != nil:
				return EventResult{}, s.dbError(err)
			case out.applied:
				res, err := s.replay(ctx, l, out.row) // its answer, from its audit row
				return res, s.dbError(err)
			}
			continue // not written: decide again on a fresh read
		}
		return res, s.dbError(err)
	}
	return EventResult{}, &UnavailableError{Err: fmt.Errorf("instance %q was changed by another writer at each of %d tries; nothing was written",
		req.InstanceID, maxDecisions)}
}
