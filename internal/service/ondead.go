package service

import (
	"context"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// A webhook's on_dead (docs/definitions.md, "Notify"): when one of its deliveries is dead, the
// outbox's dispatcher writes, with the dead letter, a message from the instance to itself that
// sends the on_dead event (outbox.OnDeadMessage); RunMessages delivers it like any other message.
// The dispatcher reads the webhook's on_dead in the version the delivery was built from
// (Definition), and wakes the message dispatcher after the commit (WakeMessages).

// Definition returns a loaded version of a definition. A version this process has not loaded (one
// another process registered since) is looked for among the stored ones first. NotFoundError when
// there is no such version, or it no longer validates.
func (s *Service) Definition(ctx context.Context, name string, version int) (*machine.Definition, error) {
	def, _, err := s.reg.get(name, version)
	if err == nil || !s.ready.Load() {
		return def, err
	}
	if err := s.loadStored(ctx); err != nil {
		return nil, err
	}
	def, _, err = s.reg.get(name, version)
	return def, err
}

// WakeMessages makes RunMessages look for due messages now rather than at its next poll. It never
// blocks.
func (s *Service) WakeMessages() { s.messageWake.signal() }
