package service

import (
	"context"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/machine"

	"github.com/fsmd-io/fsmd/internal/code"
)

// actor is who sends req: a user for an API event (its key's or token's name and groups), else the
// kind of its source; a message's actor is named by its sender's id.
func (req SendEvent) actor() machine.Actor {
	switch req.source {
	case audit.SourceTimer:
		return machine.Actor{Kind: machine.ActorTimer, Groups: []string{}}
	case audit.SourceMessage:
		return machine.Actor{Name: req.from, Kind: machine.ActorMessage, Groups: []string{}}
	}
	groups := req.Groups
	if groups == nil {
		groups = []string{}
	}
	return machine.Actor{Name: req.Actor, Groups: groups, Kind: machine.ActorUser}
}

// decision is what an event does to an instance: its transition, or its refusal as the API answers
// it (err).
type decision struct {
	transition *move
	err        error
}

// decide checks If-Match and fires the event on the instance through the engine, under the event's
// time budget (s.limits), with no database lock held.
func (s *Service) decide(ctx context.Context, l loaded, req SendEvent, now time.Time) decision {
	if req.IfMatch != nil && *req.IfMatch != l.row.Revision {
		api, err := toInstance(l.def, l.row)
		if err != nil {
			return decision{err: err}
		}
		return decision{err: &VersionConflictError{IfMatch: *req.IfMatch, Instance: api}}
	}
	t, err := s.fireOn(ctx, l, req, now)
	if err != nil && code.Of(err) == "" {
		return decision{err: err} // the stored instance does not fit its version: no refusal of the event's
	}
	if err != nil {
		api, aerr := toInstance(l.def, l.row)
		if aerr != nil {
			return decision{err: aerr}
		}
		return decision{err: &EventError{Err: err, Instance: api}}
	}
	return decision{transition: t}
}

// fireOn fires event on the instance as stored, through the engine under the event's time budget: the
// one way an API event, a timer's and a message's are decided. An error with a code is the engine's
// refusal; one without is the stored instance's (its context does not fit its version).
//
// A message from a child (sender) may be its group's on_final; the children's counts are read
// when the handler's expressions see them (children.go), and the children a transition starts are
// built with it.
func (s *Service) fireOn(ctx context.Context, l loaded, req SendEvent, now time.Time) (*move, error) {
	event, payload, sender := req.Event, req.Payload, req.sender
	switch {
	case l.row.Terminated: // final in a state that is not
		return nil, &machine.InstanceFinalError{State: l.row.State, Event: event}
	case l.row.Suspended:
		return nil, &InstanceSuspendedError{ID: l.row.ID, Event: event}
	}
	snap, err := snapshot(l.def, l.row)
	if err != nil {
		return nil, err
	}
	var stored map[string]groupCount
	bump := ""
	if len(l.def.Groups) > 0 {
		if stored, err = storedGroups(l.row); err != nil {
			return nil, err
		}
		bump = counted(l, stored, event, sender)
		if snap.Children, err = s.family(ctx, l, event, stored, bump); err != nil {
			return nil, err
		}
	}
	t, err := s.limits.FireAs(l.def, snap, req.actor(), event, payload, now)
	if err != nil {
		return nil, err
	}
	if len(l.def.Groups) == 0 && len(t.Start) == 0 {
		return &move{Transition: t}, nil
	}
	return s.complete(ctx, l, t, stored, bump, now)
}
