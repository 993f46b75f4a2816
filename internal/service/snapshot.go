package service

import (
	"context"
	"errors"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// loaded is an instance row with its definition version.
type loaded struct {
	row persistence.InstanceRow
	def *machine.Definition
}

func (s *Service) instance(ctx context.Context, ex persistence.Executor, id string) (loaded, error) {
	row, err := persistence.InstanceGet(ctx, ex, id)
	return s.load(row, id, err)
}

func (s *Service) load(row persistence.InstanceRow, id string, err error) (loaded, error) {
	if errors.Is(err, persistence.ErrNotFound) {
		return loaded{}, &NotFoundError{What: "instance", Key: id}
	}
	if err != nil {
		return loaded{}, s.dbError(err)
	}
	def, _, err := s.reg.get(row.Definition, row.Version)
	if err != nil {
		return loaded{}, err
	}
	return loaded{row: row, def: def}, nil
}

// eventSnapshot is what an event is decided on: the instance (cached: its row from the cache, not
// read), or an answer found without deciding (a replayed Idempotency-Key, or its mismatch).
type eventSnapshot struct {
	l        loaded
	cached   bool
	answer   *EventResult
	replayed bool
}

// eventSnapshot reads what req is decided on: the cached row when useCache and the cache has one
// (the key is then not looked up: a taken key fails the write, and the next read finds it, unless
// the database says a failed write costs more than the lookup), else the instance and the earlier
// answer to its Idempotency-Key.
func (s *Service) eventSnapshot(ctx context.Context, req SendEvent, hash string, useCache bool) (eventSnapshot, error) {
	// A keyed event on a database where a failed write is dear looks its key up first.
	if useCache && (req.IdempotencyKey == "" || !s.db.LookUpKeysFirst()) {
		if row, ok := s.cache.get(req.InstanceID); ok {
			if l, err := s.load(row, req.InstanceID, nil); err == nil {
				return eventSnapshot{l: l, cached: true}, nil
			}
		}
	}
	l, err := s.instance(ctx, s.db, req.InstanceID)
	if err != nil {
		return eventSnapshot{}, err
	}
	if req.IdempotencyKey == "" {
		return eventSnapshot{l: l}, nil
	}
	prev, err := audit.ByIdempotencyKey(ctx, s.db, req.InstanceID, req.IdempotencyKey)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return eventSnapshot{l: l}, nil
	case err != nil:
		return eventSnapshot{}, err
	case prev.RequestHash != hash:
		return eventSnapshot{}, &IdempotencyMismatchError{Key: req.IdempotencyKey}
	}
	res, err := s.replay(ctx, l, prev)
	if err != nil {
		return eventSnapshot{}, err
	}
	return eventSnapshot{l: l, answer: &res, replayed: true}, nil
}

// answered is the answer of a snapshot that settled the event without a decision, or err.
func (snap eventSnapshot) answered(err error) (EventResult, bool, error) {
	if err != nil {
		return EventResult{}, false, err
	}
	return *snap.answer, snap.replayed, nil
}

// remember caches row, committed data of instance id, or forgets the instance when there is no
// such row: after a failed write the cached row may be out of date.
func (s *Service) remember(id string, row persistence.InstanceRow) {
	if row.ID == "" {
		s.cache.drop(id)
		return
	}
	s.cache.put(row)
}
