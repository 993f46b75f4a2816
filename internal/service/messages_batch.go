package service

import (
	"context"
	"errors"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// A target that many instances send to (a parent its children's on_final, a collector) has as many
// pairs, each with a first message due: delivered one transaction each, they would go no faster
// than the database commits for one row. deliverTo delivers the due messages of several pairs to
// one target in one transaction instead, each on the instance as the one before left it; the
// outcome is the same as delivering them one after the other (exactly once, each pair in order,
// refusals dropped), with one commit.

// batchHold bounds the time a batch keeps its transaction open while it decides: past it the
// batch commits what it has, and the rest waits for the next round. (Deciding is the engine's
// work, bounded by the event's time budget; the batch holds the instance's row meanwhile.)
const batchHold = 50 * time.Millisecond

// deliverTo delivers ms, each the first pending message of its pair and all to one target, in one
// transaction, in order. It returns how many it delivered. When the batch cannot be written as a
// whole (the target does not exist, moved on meanwhile, a message was taken by another process,
// a decision failed without a refusal), nothing of it is, and deliverTo delivers the messages one
// by one as deliver does, which settles each case.
func (s *Service) deliverTo(ctx context.Context, ms []persistence.MessageRow) (int, error) {
	done, err := s.deliverBatch(ctx, ms)
	if err == nil {
		return done, nil
	}
	if errors.Is(err, persistence.ErrUnavailable) || ctx.Err() != nil {
		return 0, err
	}
	for _, m := range ms {
		if err := s.deliver(ctx, m); err != nil {
			return 0, err
		}
	}
	return len(ms), nil
}

func (s *Service) deliverBatch(ctx context.Context, ms []persistence.MessageRow) (int, error) {
	target := ms[0].Target
	release, err := s.turns.take(ctx, target)
	if err != nil {
		return 0, err
	}
	defer release()
	defer s.cache.drop(target) // the cached row is behind what was written
	now := s.now()
	done := 0
	err = s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		done = 0
		row, err := persistence.InstanceGet(ctx, tx, target)
		if err != nil {
			return err
		}
		l, err := s.load(row, row.ID, nil)
		if err != nil {
			return err
		}
		// Stays and refusals change only the instance's row and its history: they are written
		// together, from the row before the first to the row after the last (flush); a
		// transition with other effects is written on its own, after those before it.
		var (
			first = l.row
			rows  []audit.Row
			ids   []string
		)
		flush := func() error {
			if len(rows) == 0 {
				return nil
			}
			u := persistence.InstanceUpdateParams{ID: l.row.ID, ExpectRevision: first.Revision, Version: l.row.Version,
				State: l.row.State, Context: l.row.Context, Revision: l.row.Revision, Final: l.row.Final, UpdatedAt: now,
				EnteredAt: l.row.EnteredAt, Children: l.row.Children}
			err := audit.AppendMany(ctx, tx, u, rows, ids)
			rows, ids = nil, nil
			return err
		}
		began := time.Now()
		for _, m := range ms {
			if done > 0 && time.Since(began) > batchHold {
				break
			}
			req := SendEvent{InstanceID: target, Event: m.Event, RequestID: m.ID, source: audit.SourceMessage, sender: finalFrom(m), from: m.Sender}
			tr, refusal := s.decideMessage(ctx, l, m, now)
			if refusal != nil && code.Of(refusal) == "" {
				return refusal
			}
			var (
				row  audit.Row
				next persistence.InstanceRow
			)
			switch {
			case refusal != nil:
				row, next = s.dropRow(l, m.Event, m.Payload, req, refusal, now)
			case quiet(l, tr):
				if row, next, err = prepare(l, tr, req, "", now); err != nil {
					return err
				}
			default:
				if err := flush(); err != nil {
					return err
				}
				if err := persistence.MessageDelete(ctx, tx, m.ID); err != nil {
					return err
				}
				if _, l.row, err = s.write(ctx, tx, l, tr, req, "", now); err != nil {
					return err
				}
				first = l.row
				done++
				continue
			}
			rows, ids = append(rows, row), append(ids, m.ID)
			l.row = next
			done++
		}
		return flush()
	})
	return done, err
}

// quiet reports whether a transition of l changes nothing but the instance's row and its history:
// a stay that sends nothing, starts nothing, and notifies no webhook.
func quiet(l loaded, m *move) bool {
	return m.Stayed && len(m.Sent) == 0 && len(m.children) == 0 && len(l.def.Notified(m.Transition)) == 0
}
