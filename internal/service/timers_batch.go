package service

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// FireDue is one round of RunTimers: it returns how many instances had a due timer.
//
// The round fires a batch set-based, as a migration or a bulk moves instances: it claims the
// instances of up to Batch due timers and reads their due timers (two queries), decides the event
// of each instance's earliest due timer with the engine (timerWorkers at a time), and writes the
// batch's firings — the instances' updates, their audit rows, the timers fired deleted, those of
// the states left cancelled and of the states entered armed, the outbox rows and the messages — in
// one transaction of a statement each (persistence.TimersFire), each firing on the condition that
// its instance has not moved since it was read.
//
// Exactly once across processes: on PostgreSQL the claim locks the batch's instances in the
// transaction that writes it (FOR UPDATE SKIP LOCKED: the schedulers of other processes take the
// next due instances instead of waiting), so nothing moves them between the read and the write;
// the locks are held while the batch is decided, which timerBatchDecide bounds. On SQLite, whose
// one writer would otherwise be held, the batch is read and decided without a transaction and
// written in one; an instance that moved meanwhile is not written. Either way a write that finds its
// instance moved writes nothing of it.
//
// The single path (fireFirst: the instance's turn, its own read and write, up to maxDecisions
// tries, backoff on a failure) fires what the batch does not: the instances that moved meanwhile,
// those of definitions with child groups (their decision reads the children), a timer whose
// decision fails (a definition version this process does not have, a context that does not fit it:
// the single path decides it again and puts it off), those left once the batch's decisions took
// timerBatchDecide, and all of a batch whose write failed on a key (key_exists) or a conflict.
func (s *Service) FireDue(ctx context.Context, o TimerOptions) (int, error) {
	o = o.withDefaults()
	b, err := s.fireBatch(ctx, o)
	if err != nil {
		return b.claimed, err
	}
	err = round(b.slow, timerWorkers, func(r slowTimer) error {
		defer s.cache.drop(r.row.ID) // the cached row is behind what was written
		return s.fireFirst(ctx, r.row, o, r.stale)
	})
	return b.claimed, err
}

// timerBatchDecide bounds the time a batch's decisions take: on PostgreSQL its instances are locked
// meanwhile. The instances not decided by then go to the single path, decided without a lock.
const timerBatchDecide = 250 * time.Millisecond

// timerBatch is a round's batch: what it claimed, decided and wrote.
type timerBatch struct {
	claimed int
	firings []persistence.TimerFiring
	fired   []batchFired // firings[i]'s, for what follows its commit
	holds   []string     // suspended instances whose timers are held
	slow    []slowTimer  // for the single path
}

// batchFired is a firing's decision, kept for what follows its commit.
type batchFired struct {
	l   loaded
	f   firing
	due time.Time
}

// slowTimer is an instance left to the single path; stale when it moved since row was read.
type slowTimer struct {
	row   persistence.InstanceRow
	stale bool
}

// fireBatch claims, decides and writes one batch (FireDue): on PostgreSQL all in one transaction,
// on SQLite the write alone. It returns the instances left to the single path.
func (s *Service) fireBatch(ctx context.Context, o TimerOptions) (timerBatch, error) {
	var b timerBatch
	if s.db.Dialect == persistence.Postgres {
		err := s.db.WithTx(ctx, func(tx *persistence.Tx) error {
			now := s.now()
			due, err := persistence.TimersClaimDue(ctx, tx, now, o.Batch)
			if err != nil {
				return err
			}
			b = s.decideBatch(ctx, due, now) // afresh on a retried attempt
			return s.writeBatch(ctx, tx, &b)
		})
		return b, s.batchFailed(&b, err)
	}
	now := s.now()
	due, err := persistence.TimersClaimDue(ctx, s.db, now, o.Batch)
	if err != nil {
		return b, err
	}
	b = s.decideBatch(ctx, due, now)
	if len(b.firings) == 0 && len(b.holds) == 0 {
		return b, nil
	}
	slow := b.slow
	err = s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		b.slow = slices.Clone(slow) // afresh on a retried attempt
		return s.writeBatch(ctx, tx, &b)
	})
	return b, s.batchFailed(&b, err)
}

// batchFailed is the error of a batch's transaction: none when it failed on a conflict or a key,
// whose instances then all go to the single path, each decided again on its own.
func (s *Service) batchFailed(b *timerBatch, err error) error {
	if !errors.Is(err, persistence.ErrConflict) && !errors.Is(err, persistence.ErrKeyExists) {
		return err
	}
	for _, f := range b.fired {
		b.slow = append(b.slow, slowTimer{row: f.l.row, stale: true})
	}
	b.firings, b.fired = nil, nil
	return nil
}

// decideBatch decides the earliest due timer of each instance of due, as fireFirst does, with one
// now: a firing (a transition or a drop), a hold (the instance is suspended), nothing (its earliest
// due timer is put off after a failure, or it has none left: fired meanwhile), or the single path.
func (s *Service) decideBatch(ctx context.Context, due []persistence.TimedInstance, now time.Time) timerBatch {
	b := timerBatch{claimed: len(due)}
	type decided struct {
		hold, slow bool
		fired      *batchFired
		item       persistence.TimerFiring
	}
	out := make([]decided, len(due))
	idx := make([]int, len(due))
	for i := range idx {
		idx[i] = i
	}
	start := time.Now()
	_ = round(idx, timerWorkers, func(i int) error {
		d := due[i]
		switch {
		case len(d.Due) == 0 || d.Due[0].NextTryAt.After(now):
		case d.Row.Suspended:
			out[i].hold = true
		case time.Since(start) > timerBatchDecide:
			out[i].slow = true
		default:
			fired, item, ok := s.decideTimer(ctx, d.Row, d.Due[0], now)
			out[i] = decided{slow: !ok, fired: &fired, item: item}
		}
		return nil
	})
	for i, d := range out {
		switch {
		case d.hold:
			b.holds = append(b.holds, due[i].Row.ID)
		case d.slow:
			b.slow = append(b.slow, slowTimer{row: due[i].Row})
		case d.fired != nil:
			b.firings = append(b.firings, d.item)
			b.fired = append(b.fired, *d.fired)
		}
	}
	return b
}

// decideTimer decides the timer t of the instance row for a batch: its firing, and what it writes.
// Not ok when the single path is to fire it instead: the instance's definition has child groups,
// or the decision failed (fireFirst decides it again, and puts it off).
func (s *Service) decideTimer(ctx context.Context, row persistence.InstanceRow, t persistence.Timer, now time.Time) (batchFired,
	persistence.TimerFiring, bool) {
	l, err := s.load(row, row.ID, nil)
	if err != nil || len(l.def.Groups) > 0 {
		return batchFired{}, persistence.TimerFiring{}, false
	}
	f, err := s.fireLoaded(ctx, l, t, now)
	if err != nil {
		return batchFired{}, persistence.TimerFiring{}, false
	}
	item := persistence.TimerFiring{Timer: t}
	if m := f.tr; m != nil {
		if len(m.children) > 0 || m.groups != nil {
			return batchFired{}, persistence.TimerFiring{}, false
		}
		r, next, err := prepare(l, m, f.req, "", now)
		if err != nil {
			return batchFired{}, persistence.TimerFiring{}, false
		}
		item.Update, item.Row = updateOf(l, m, next, now), r
		if err := withEffects(l, m, r, &item.Update, now); err != nil {
			return batchFired{}, persistence.TimerFiring{}, false
		}
	} else {
		r, next := s.dropRow(l, t.Event, nil, f.req, f.refusal, now)
		item.Update, item.Row = dropUpdate(l, next, now), r
		if item.Update.Children != nil {
			return batchFired{}, persistence.TimerFiring{}, false
		}
	}
	return batchFired{l: l, f: f, due: t.DueAt}, item, true
}

// writeBatch writes a batch's firings and holds in tx (persistence.TimersFire), and has what follows
// each firing's commit done once tx commits: the cached row dropped, the timer's lag observed, and
// for a transition what follows its write (afterWrite). The instances that moved meanwhile go to
// the single path.
func (s *Service) writeBatch(ctx context.Context, tx *persistence.Tx, b *timerBatch) error {
	if err := persistence.TimersHoldMany(ctx, tx, b.holds); err != nil {
		return err
	}
	moved, err := persistence.TimersFire(ctx, tx, b.firings)
	if err != nil {
		return err
	}
	gone := make(map[string]bool, len(moved))
	for _, id := range moved {
		gone[id] = true
	}
	for i, f := range b.fired {
		id := f.l.row.ID
		if gone[id] {
			b.slow = append(b.slow, slowTimer{row: f.l.row, stale: true})
			continue
		}
		tx.AfterCommit(func() { s.cache.drop(id) })
		s.timerFired(tx, f.l.row.Definition, f.due, b.firings[i].Row.At)
		if f.f.tr != nil {
			s.afterWrite(tx, f.l, f.f.tr.Transition, b.firings[i].Update, b.firings[i].Row.At)
		}
	}
	return nil
}
