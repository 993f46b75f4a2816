package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TimerOptions configure the scheduler of RunTimers.
type TimerOptions struct {
	Poll    time.Duration // how often it looks for due timers when there were none: 200 ms when 0
	Batch   int           // instances claimed per transaction: 100 when 0
	Backoff time.Duration // the first pause before a timer that failed to fire is tried again: 1 s when 0
	MaxWait time.Duration // the longest such pause, and after a failed round: 1 min when 0
}

func (o TimerOptions) withDefaults() TimerOptions {
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Minute
	}
	return o
}

// RunTimers fires due timers until ctx ends: every fsmd process runs one. A round claims the
// instances of up to Batch due timers (on PostgreSQL skipping those another process holds) and
// fires, per instance, its earliest due timer through the event path, in one transaction; a full
// round is followed by another at once, else by a pause of Poll.
func (s *Service) RunTimers(ctx context.Context, o TimerOptions) {
	o = o.withDefaults()
	failures := 0
	for ctx.Err() == nil {
		n, err := s.FireDue(ctx, o)
		wait := o.Poll
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = min(o.Poll<<min(failures, 10), o.MaxWait)
			s.log.Error("firing due timers", slog.Any("error", err), slog.Duration("retry_in", wait))
		case err == nil && n == o.Batch:
			failures = 0
			continue // there may be more
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// FireDue is one round of RunTimers: it returns how many instances it claimed.
func (s *Service) FireDue(ctx context.Context, o TimerOptions) (int, error) {
	o = o.withDefaults()
	var claimed []string
	err := s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		now := s.now()
		rows, err := persistence.TimersClaim(ctx, tx, now, o.Batch)
		if err != nil {
			return err
		}
		claimed = claimed[:0]
		for _, row := range rows {
			claimed = append(claimed, row.ID)
			if err := s.fireFirst(ctx, tx, row, now, o); err != nil {
				return err
			}
		}
		return nil
	})
	for _, id := range claimed { // the cached rows are behind what was written
		s.cache.drop(id)
	}
	return len(claimed), err
}

// fireFirst fires the earliest due timer of a claimed instance (the later ones wait for it: the
// timers of an instance fire in deadline order). A failure other than the database's is the timer's:
// its work is undone (a savepoint) and it is put off with backoff.
func (s *Service) fireFirst(ctx context.Context, tx *persistence.Tx, row persistence.InstanceRow, now time.Time, o TimerOptions) error {
	due, err := persistence.TimersDue(ctx, tx, row.ID, now)
	if err != nil || len(due) == 0 {
		return err
	}
	t := due[0]
	if t.NextTryAt.After(now) {
		return nil // put off after a failure: it keeps its place
	}
	if err := persistence.Savepoint(ctx, tx, "timer"); err != nil {
		return err
	}
	ferr := s.fire(ctx, tx, row, t, now)
	if ferr == nil {
		s.timerFired(tx, row.Definition, t.DueAt, now)
		return persistence.ReleaseSavepoint(ctx, tx, "timer")
	}
	if errors.Is(ferr, persistence.ErrUnavailable) || ctx.Err() != nil {
		return ferr // the database or the process: the whole round is tried again
	}
	if err := persistence.RollbackToSavepoint(ctx, tx, "timer"); err != nil {
		return errors.Join(ferr, err)
	}
	wait := min(o.Backoff<<min(t.Attempts, 20), o.MaxWait)
	wait = wait/2 + rand.N(wait/2+1) // jitter, so that failing timers do not come back together
	s.log.Warn("a timer failed to fire; trying again", slog.String("instance", row.ID), slog.String("event", t.Event),
		slog.Int("attempts", t.Attempts+1), slog.Duration("retry_in", wait), slog.Any("error", ferr))
	return persistence.TimerRetry(ctx, tx, t, now.Add(wait), ferr.Error())
}

// fire handles a timer's event on its instance like any other event (guards apply), with the audit
// source timer. An event the state refuses (a guard, a state that no longer handles it after a
// migration) is not retried: the timer is dropped, and its audit row says why.
func (s *Service) fire(ctx context.Context, tx *persistence.Tx, row persistence.InstanceRow, t persistence.Timer, now time.Time) error {
	l, err := s.load(row, row.ID, nil)
	if err != nil {
		return err
	}
	snap, err := snapshot(l.def, l.row)
	if err != nil {
		return err
	}
	req := SendEvent{InstanceID: row.ID, Event: t.Event, RequestID: fmt.Sprintf("timer %d/%d", t.Revision, t.Idx), source: audit.SourceTimer}
	tr, err := s.limits.Fire(l.def, snap, t.Event, nil, now)
	if err != nil {
		if machine.CodeOf(err) == "" {
			return err
		}
		if err := s.drop(ctx, tx, l, t, req, err, now); err != nil {
			return err
		}
	} else if _, _, err := s.apply(ctx, tx, l, tr, req, "", now); err != nil {
		return err
	}
	// Leaving or re-entering the state deleted its timers already; a transition that kept them
	// (none does today) must not fire this one again.
	return persistence.TimerDelete(ctx, tx, t)
}

// drop records a timer whose event was refused: an audit row with the reason, and the instance's
// revision bumped (its pending timers changed); its state, context and entered_at stay.
func (s *Service) drop(ctx context.Context, tx *persistence.Tx, l loaded, t persistence.Timer, req SendEvent, why error, now time.Time) error {
	rev := l.row.Revision + 1
	row := audit.Row{InstanceID: l.row.ID, Seq: rev, Event: t.Event, From: l.row.State, To: l.row.State, Branch: -1,
		Guards: []byte("[]"), Payload: []byte("{}"), ContextBefore: l.row.Context, ContextAfter: l.row.Context,
		Source: audit.SourceTimer, RequestID: req.RequestID, DefinitionVersion: l.row.Version, At: now,
		Dropped: machine.CodeOf(why) + ": " + why.Error()}
	u := persistence.InstanceUpdateParams{ID: l.row.ID, ExpectRevision: l.row.Revision, Version: l.row.Version,
		State: l.row.State, Context: l.row.Context, Revision: rev, Final: l.row.Final, UpdatedAt: now, EnteredAt: l.row.EnteredAt}
	s.log.Info("a timer's event was refused: dropped", slog.String("instance", l.row.ID), slog.String("event", t.Event),
		slog.String("reason", row.Dropped))
	return audit.AppendWithUpdate(ctx, tx, u, row)
}
