package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TimerOptions configure the scheduler of RunTimers.
type TimerOptions struct {
	Poll    time.Duration // how often it looks for due timers when there were none: 200 ms when 0
	Batch   int           // instances with due timers claimed per round: 1,000 (persistence.MaxTimerBatch, also the most) when 0
	Backoff time.Duration // the first pause before a timer that failed to fire is tried again: 1 s when 0
	MaxWait time.Duration // the longest such pause, and after a failed round: 1 min when 0
	// Rounds is how many rounds run at once on PostgreSQL, each a batch of its own (the claims
	// skip each other's instances): 2 when 0, at most 8. On SQLite one: batches are not locked.
	Rounds int
}

func (o TimerOptions) withDefaults() TimerOptions {
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Batch <= 0 || o.Batch > persistence.MaxTimerBatch {
		o.Batch = persistence.MaxTimerBatch
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Minute
	}
	if o.Rounds <= 0 {
		o.Rounds = 2
	}
	o.Rounds = min(o.Rounds, 8)
	return o
}

// RunTimers fires due timers until ctx ends: every fsmd process runs one. A round claims the
// instances of up to Batch due timers and fires, per instance, its earliest due timer, the batch
// set-based in one transaction (FireDue, timers_batch.go); a full round is followed by another at
// once, else by a pause of Poll.
func (s *Service) RunTimers(ctx context.Context, o TimerOptions) {
	o = o.withDefaults()
	rounds := o.Rounds
	if s.db.Dialect != persistence.Postgres {
		rounds = 1
	}
	var wg sync.WaitGroup
	for range rounds {
		wg.Go(func() {
			s.poll(ctx, "firing due timers", o.Poll, o.MaxWait, o.Batch, nil,
				func(ctx context.Context) (int, error) { return s.FireDue(ctx, o) })
		})
	}
	wg.Wait()
}

// timerWorkers is how many instances a round decides at once, and fires at once on the single
// path: their decisions and writes are independent, so round trips overlap, and timers that spend
// their time budget delay the others less.
const timerWorkers = 4

// fireFirst fires the earliest due timer of an instance, read as row (the later ones wait for it:
// the timers of an instance fire in deadline order), in the instance's turn. A failure other than
// the database's is the timer's: it is put off with backoff. An error is the database's or the
// process's: the round stops, and the next tries again.
//
// stale says that row is known to be behind (the instance moved since): it is read again first.
func (s *Service) fireFirst(ctx context.Context, row persistence.InstanceRow, o TimerOptions, stale bool) error {
	release, err := s.turns.take(ctx, row.ID)
	if err != nil {
		return err
	}
	defer release()
	for i := range maxDecisions {
		if i > 0 || stale { // the instance moved on since it was read
			row, err = persistence.InstanceGet(ctx, s.db, row.ID)
			if errors.Is(err, persistence.ErrNotFound) {
				return nil // gone with its timers
			}
			if err != nil {
				return err
			}
		}
		now := s.now()
		due, err := persistence.TimersDue(ctx, s.db, row.ID, now)
		if err != nil || len(due) == 0 {
			return err
		}
		t := due[0]
		if t.NextTryAt.After(now) {
			return nil // put off after a failure: it keeps its place
		}
		if row.Suspended { // suspended since its timers were last held (or armed by a migration): hold them
			return persistence.TimersHold(ctx, s.db, row.ID)
		}
		f, ferr := s.fire(ctx, row, t, now) // no lock is held
		if ferr == nil {
			ferr = s.writeFiring(ctx, f, t, now)
		}
		switch {
		case ferr == nil:
			return nil
		case errors.Is(ferr, persistence.ErrConflict):
			continue // decide again on a fresh read
		case errors.Is(ferr, persistence.ErrUnavailable) || ctx.Err() != nil:
			return ferr // the database or the process: the whole round is tried again
		}
		wait := min(o.Backoff<<min(t.Attempts, 20), o.MaxWait)
		wait = wait/2 + rand.N(wait/2+1) // jitter, so that failing timers do not come back together
		s.log.Warn("a timer failed to fire; trying again", slog.String("instance", row.ID), slog.String("event", t.Event),
			slog.Int("attempts", t.Attempts+1), slog.Duration("retry_in", wait), slog.Any("error", ferr))
		return persistence.TimerRetry(ctx, s.db, t, now.Add(wait), ferr.Error())
	}
	return nil // moved on at every read: the next round sees it again
}

// firing is what a timer's event was decided to do: a transition, or, when refused, the drop of
// the timer.
type firing struct {
	l       loaded
	req     SendEvent
	tr      *move // nil for a drop
	refusal error
}

// fire decides a timer's event on its instance like any other event (guards apply), with the audit
// source timer. An event the state refuses (a guard, a state that no longer handles it after a
// migration) is not retried: the timer is to be dropped, with an audit row that says why. An error
// is the timer's own failure.
func (s *Service) fire(ctx context.Context, row persistence.InstanceRow, t persistence.Timer, now time.Time) (firing, error) {
	l, err := s.load(row, row.ID, nil)
	if err != nil {
		return firing{}, err
	}
	return s.fireLoaded(ctx, l, t, now)
}

// fireLoaded is fire on the instance loaded.
func (s *Service) fireLoaded(ctx context.Context, l loaded, t persistence.Timer, now time.Time) (firing, error) {
	row := l.row
	f := firing{l: l, req: SendEvent{InstanceID: row.ID, Event: t.Event, RequestID: fmt.Sprintf("timer %d/%d", t.Revision, t.Idx),
		source: audit.SourceTimer}}
	var err error
	f.tr, err = s.fireOn(ctx, l, f.req, now)
	if err != nil {
		if code.Of(err) == "" {
			return firing{}, err
		}
		f.refusal = err
	}
	return f, nil
}

// writeFiring writes what a timer's event does, on the condition that the instance has not moved
// since it was decided, and the timer's deletion. A transition leaving the timer's state (every
// transition leaves its state) deletes the state's timers with its update: on PostgreSQL one
// statement; a drop, or a timer the state no longer declares, takes a transaction.
func (s *Service) writeFiring(ctx context.Context, f firing, t persistence.Timer, now time.Time) error {
	if f.tr != nil && len(f.tr.Cancel) > 0 {
		if _, _, err := s.write(ctx, s.db, f.l, f.tr, f.req, "", now); err != nil {
			return err
		}
		s.timerFired(s.db, f.l.row.Definition, t.DueAt, now)
		return nil
	}
	return s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		var err error
		if f.tr != nil {
			_, _, err = s.write(ctx, tx, f.l, f.tr, f.req, "", now)
		} else {
			_, err = s.drop(ctx, tx, f.l, t.Event, nil, f.req, f.refusal, now)
		}
		if err != nil {
			return err
		}
		if err := persistence.TimerDelete(ctx, tx, t); err != nil {
			return err
		}
		s.timerFired(tx, f.l.row.Definition, t.DueAt, now)
		return nil
	})
}

// drop records a timer's or a message's event that was refused (req.source says which): an audit
// row with the reason and the payload (nil: none), and the instance's revision bumped (its pending
// timers changed); its state, context and entered_at stay. It returns the instance's row as written.
func (s *Service) drop(ctx context.Context, tx *persistence.Tx, l loaded, event string, payload []byte, req SendEvent, why error,
	now time.Time) (persistence.InstanceRow, error) {
	row, next := s.dropRow(l, event, payload, req, why, now)
	if err := audit.AppendWithUpdate(ctx, tx, dropUpdate(l, next, now), row); err != nil {
		return persistence.InstanceRow{}, err
	}
	return next, nil
}

// dropUpdate is the update of l's instance to next by a drop: its revision, and its children's
// counts when the drop counted in a group.
func dropUpdate(l loaded, next persistence.InstanceRow, now time.Time) persistence.InstanceUpdateParams {
	u := persistence.InstanceUpdateParams{ID: l.row.ID, Definition: l.row.Definition, ExpectRevision: l.row.Revision, Version: l.row.Version,
		State: l.row.State, Context: l.row.Context, Revision: next.Revision, Final: l.row.Final, UpdatedAt: now, EnteredAt: l.row.EnteredAt, Stays: true}
	if !bytes.Equal(next.Children, l.row.Children) {
		u.Children = next.Children
	}
	return u
}

// dropRow makes the audit row of a refused event and the instance's row after it.
func (s *Service) dropRow(l loaded, event string, payload []byte, req SendEvent, why error, now time.Time) (audit.Row, persistence.InstanceRow) {
	rev := l.row.Revision + 1
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	row := audit.Row{InstanceID: l.row.ID, Seq: rev, Event: event, From: l.row.State, To: l.row.State, Branch: -1,
		Guards: []byte("[]"), Payload: payload, ContextBefore: l.row.Context, ContextAfter: l.row.Context,
		Source: req.source, RequestID: req.RequestID, DefinitionVersion: l.row.Version, At: now,
		Dropped: code.Of(why) + ": " + why.Error(), Actor: req.actor().Name, ActorKind: req.actor().Kind}
	next := l.row
	next.Revision, next.UpdatedAt = rev, now
	// A child's on_final counts in its group when it is refused too: the group has seen its outcome.
	if stored, err := storedGroups(l.row); err == nil && len(stored) > 0 {
		if g := counted(l, stored, event, req.sender); g != "" {
			e := stored[g]
			e.Final++
			stored[g] = e
			next.Children = mustJSON(stored)
		}
	}
	msg := "a timer's event was refused: dropped"
	if req.source == audit.SourceMessage {
		msg = "a message was refused: dropped"
	}
	s.log.Info(msg, slog.String("instance", l.row.ID), slog.String("event", event),
		slog.String("reason", row.Dropped))
	return row, next
}
