package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// SendEvent handles an event: answer a replayed Idempotency-Key with its first answer, check
// If-Match, fire, and write the instance's update together with its audit row. It is the event
// path's one policy; each step is a file of its own (doc.go draws the path):
//
//  1. take the instance's turn (turns.go): the events of one instance in this process go one at
//     a time, each decided on the instance as the one before left it;
//  2. read what to decide on (snapshot.go): the instance's cached row when there is one, else a
//     plain read with the Idempotency-Key's earlier answer, if any;
//  3. decide (decide.go): If-Match, then the engine, with no database lock held (an event's
//     expressions have a time budget, and a slow one must not delay other instances);
//  4. write conditionally (write.go): the update and its audit row apply only if the instance is
//     still at the revision decided on (persistence.InstanceAdvance: one statement on PostgreSQL,
//     a short transaction of its own on SQLite);
//  5. answer (answer.go), from the values in hand or, for a replay, from the audit row.
//
// Retries, all here: when the write finds the instance moved on (another process, a timer or a
// migration wrote first), or when the key of the cached decision is taken, the event is decided
// again on a fresh read, with a short jittered pause from the second read on; after maxDecisions
// reads that each lost the race, the event is answered 503 unavailable, having written nothing.
// A write whose outcome is not plain (the connection broke during it, or the move it lost to may
// be its own) is first resolved from the audit row (outcome.go): applied, it is answered as
// written; not applied, it is decided again; unresolved, it is 503 outcome_unknown.
// A refusal decided on the cached row is never answered from it: a read must find the instance at
// that revision first (then the refusal stands without deciding again, which may take the budget).
func (s *Service) SendEvent(ctx context.Context, req SendEvent) (EventResult, bool, error) {
	// The hash tells a replay of an Idempotency-Key from another request under it: only keyed
	// requests are ever compared, so only they pay for it (an encoding of the payload).
	hash := ""
	if req.IdempotencyKey != "" {
		hash = requestHash(map[string]any{"event": req.Event, "payload": orEmpty(req.Payload)})
	}
	res, replayed, err := s.sendEvent(ctx, req, hash)
	if err != nil {
		s.countRejection(req, err) // stats: an engine refusal counts in its hour (stats.go)
		return EventResult{}, false, s.dbError(err)
	}
	return res, replayed, nil
}

// maxDecisions is how many fresh reads an event is decided on before it gives up to a writer that
// keeps coming first (the turns leave only other processes, timers and migrations).
const maxDecisions = 8

func (s *Service) sendEvent(ctx context.Context, req SendEvent, hash string) (EventResult, bool, error) {
	release, err := s.turns.take(ctx, req.InstanceID)
	if err != nil {
		return EventResult{}, false, err
	}
	defer release()
	var refused *cachedRefusal
	for read := 0; read < maxDecisions; {
		snap, err := s.eventSnapshot(ctx, req, hash, read == 0 && refused == nil)
		if err != nil || snap.answer != nil {
			return snap.answered(err)
		}
		if !snap.cached {
			read++
		}
		now := s.now()
		var t decision
		if refused != nil && refused.revision == snap.l.row.Revision {
			t.err = refused.err // the instance is where the refusal was decided
		} else {
			t = s.decide(ctx, snap.l, req, now)
		}
		switch {
		case t.err != nil && snap.cached:
			refused = &cachedRefusal{revision: snap.l.row.Revision, err: t.err}
			continue
		case t.err != nil:
			s.remember(req.InstanceID, snap.l.row)
			return EventResult{}, false, t.err
		}
		res, next, err := s.write(ctx, s.db, snap.l, t.transition, req, hash, now)
		s.remember(req.InstanceID, next)
		if err == nil || !(errors.Is(err, persistence.ErrConflict) || errors.Is(err, persistence.ErrUnavailable)) {
			return res, false, err
		}
		// The write did not say whether it applied (outcome.go): find out before answering.
		out, err := s.eventOutcome(ctx, req, snap.l.row.Revision+1, err)
		if err != nil {
			return EventResult{}, false, err
		}
		if out.applied {
			s.afterResolved(snap.l, out.row)
			res, err := s.replay(ctx, snap.l, out.row) // its answer, from its audit row
			return res, false, err
		}
		if read > 0 {
			if err := pause(ctx, read); err != nil {
				return EventResult{}, false, err
			}
		}
	}
	return EventResult{}, false, &UnavailableError{Err: fmt.Errorf("instance %q was changed by another writer at each of %d tries; nothing was written",
		req.InstanceID, maxDecisions)}
}

// cachedRefusal is an event the instance's cached row refused, at that row's revision.
type cachedRefusal struct {
	revision int64
	err      error
}

// pause waits before the next read after the given number of lost races: about 1 ms, then twice
// as long each time, drawn at random between half and all of it, so that writers racing for one
// instance spread out.
func pause(ctx context.Context, lost int) error {
	d := time.Millisecond << min(lost-1, 6)
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
