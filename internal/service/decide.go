package service

import (
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// decision is what an event does to an instance: its transition, or its refusal as the API answers
// it (err).
type decision struct {
	transition *machine.Transition
	err        error
}

// decide checks If-Match and fires the event on the instance through the engine, under the event's
// time budget (s.limits), with no database lock held.
func (s *Service) decide(l loaded, req SendEvent, now time.Time) decision {
	if req.IfMatch != nil && *req.IfMatch != l.row.Revision {
		api, err := toInstance(l.def, l.row)
		if err != nil {
			return decision{err: err}
		}
		return decision{err: &VersionConflictError{IfMatch: *req.IfMatch, Instance: api}}
	}
	t, err := s.fireOn(l, req.Event, req.Payload, now)
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
func (s *Service) fireOn(l loaded, event string, payload map[string]any, now time.Time) (*machine.Transition, error) {
	snap, err := snapshot(l.def, l.row)
	if err != nil {
		return nil, err
	}
	return s.limits.Fire(l.def, snap, event, payload, now)
}
