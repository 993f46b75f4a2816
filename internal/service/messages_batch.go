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
// batch is rolled back and its messages are delivered one by one (errSlowBatch). Deciding is the
// engine's work, microseconds for a usual definition and bounded by the event's time budget; the
// batch holds the instance's row and its messages meanwhile.
const batchHold = 100 * time.Millisecond

// errSlowBatch: a batch took longer than batchHold to decide.
var errSlowBatch = errors.New("a batch of messages took too long to decide: delivered one by one")

// deliverTo delivers ms, all to one target, in one transaction, in order: the first pending
// messages of several pairs, or the first pending messages of one pair in its order. It returns how many it delivered. When the batch cannot be written as a
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
	// One by one, each the first pending of its pair: of a pair's run only the first (deliver may
	// leave it pending, and the rest must wait for it); the next round goes on.
	seen := map[string]bool{}
	done = 0
	for _, m := range ms {
		if seen[m.Sender] {
			break
		}
		seen[m.Sender] = true
		if err := s.deliver(ctx, m); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
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
		// Every message of the batch first, all or none (another process may have taken one), and
		// then the instance: the order deliver takes them in, so that no two transactions wait on
		// each other.
		if err := persistence.MessagesDelete(ctx, tx, ids(ms)); err != nil {
			return err
		}
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
		)
		flush := func() error {
			if len(rows) == 0 {
				return nil
			}
			u := persistence.InstanceUpdateParams{ID: l.row.ID, ExpectRevision: first.Revision, Version: l.row.Version,
				State: l.row.State, Context: l.row.Context, Revision: l.row.Revision, Final: l.row.Final, UpdatedAt: now,
				EnteredAt: l.row.EnteredAt, Children: l.row.Children}
			err := audit.AppendMany(ctx, tx, u, rows, nil)
			rows = nil
			return err
		}
		began := time.Now()
		for _, m := range ms {
			if time.Since(began) > batchHold {
				return errSlowBatch
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
				if _, l.row, err = s.write(ctx, tx, l, tr, req, "", now); err != nil {
					return err
				}
				first = l.row
				done++
				continue
			}
			rows = append(rows, row)
			l.row = next
			done++
		}
		return flush()
	})
	return done, err
}

func ids(ms []persistence.MessageRow) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// quiet reports whether a transition of l changes nothing but the instance's row and its history:
// a stay that sends nothing, starts nothing, and notifies no webhook.
func quiet(l loaded, m *move) bool {
	return m.Stayed && len(m.Sent) == 0 && len(m.children) == 0 && len(l.def.Notified(m.Transition)) == 0
}
