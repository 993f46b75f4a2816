package service

import (
	"time"

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
	snap, err := snapshot(l.def, l.row)
	if err != nil {
		return decision{err: err}
	}
	t, err := s.limits.Fire(l.def, snap, req.Event, req.Payload, now)
	if err != nil {
		api, aerr := toInstance(l.def, l.row)
		if aerr != nil {
			return decision{err: aerr}
		}
		return decision{err: &EventError{Err: err, Instance: api}}
	}
	return decision{transition: t}
}
