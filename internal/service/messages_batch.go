package service

import (
	"context"
	"errors"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// A target that many instances send to (a parent its children's on_final, a collector), or that
// one instance sends many messages, would get them one transaction each, no faster than the
// database commits for one row. deliverTo delivers several of a target's messages in one
// transaction instead: it decides them one after the other, each on the instance as the one
// before left it, with no transaction open (as every event is decided), then writes them all,
// on the condition that the instance has not moved since it was read and that every message is
// still pending. The outcome is the one of delivering them one after the other: exactly once, each
// pair in order, refusals dropped, with one commit.

// batchHold bounds the time a batch decides for: the messages decided by then are written, the
// rest wait for the next round. (Deciding is the engine's work, microseconds for a usual
// definition.)
const batchHold = 50 * time.Millisecond

// deliverTo delivers the first of ms, and as many after it as batchHold allows, all to one target,
// in one transaction: the first pending messages of several pairs, or the first pending messages
// of one pair in its order. It returns how many it delivered. When the batch cannot be written as
// a whole (the target does not exist, moved on meanwhile, a message was taken by another process,
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
	// One by one, each the first pending of its pair when it is delivered: a message of a pair's
	// run only once the one before it is settled (deliver may leave one pending).
	done = 0
	for i, m := range ms {
		if i > 0 && m.Sender == ms[i-1].Sender {
			next, ok, err := persistence.MessageNext(ctx, s.db, m.Sender, m.Target)
			if err != nil || !ok || next.ID != m.ID {
				return done, err
			}
		}
		if err := s.deliver(ctx, m); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

// decided is one message of a batch as it was decided: its transition or its refusal, on the
// instance as before it.
type decided struct {
	m       persistence.MessageRow
	before  loaded
	req     SendEvent
	tr      *move // nil for a refusal
	refusal error
	row     audit.Row               // its audit row
	after   persistence.InstanceRow // the instance after it
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
	l, err := s.instance(ctx, s.db, target)
	if err != nil {
		return 0, err
	}
	if l.row.Suspended {
		return 0, nil // they wait, pending, until the target is resumed
	}
	// Decide, with no transaction open: each message on the row the one before leaves (prepare
	// and dropRow make it without writing).
	var batch []decided
	began := time.Now()
	for _, m := range ms {
		if len(batch) > 0 && time.Since(began) > batchHold {
			break
		}
		d := decided{m: m, before: l, req: SendEvent{InstanceID: target, Event: m.Event, RequestID: m.ID,
			source: audit.SourceMessage, sender: finalFrom(m), from: m.Sender}}
		d.tr, d.refusal = s.decideMessage(ctx, l, m, now)
		if d.refusal != nil && code.Of(d.refusal) == "" {
			return 0, d.refusal
		}
		if d.refusal != nil {
			d.tr = nil
			d.row, d.after = s.dropRow(l, m.Event, m.Payload, d.req, d.refusal, now)
		} else if d.row, d.after, err = prepare(l, d.tr, d.req, "", now); err != nil {
			return 0, err
		}
		batch = append(batch, d)
		l.row = d.after
	}
	// Write: every message's deletion first, all or none, then the instance (the order deliver
	// takes them in, so that no two transactions wait on each other). Stays and refusals change
	// only the instance's row and its history: consecutive ones are written together (flush); a
	// transition with other effects is written on its own, after those before it.
	err = s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		ids := make([]string, len(batch))
		for i, d := range batch {
			ids[i] = d.m.ID
		}
		if err := persistence.MessagesDelete(ctx, tx, ids); err != nil {
			return err
		}
		var run []decided // quiet ones not written yet
		flush := func() error {
			if len(run) == 0 {
				return nil
			}
			rows := make([]audit.Row, len(run))
			for i, d := range run {
				rows[i] = d.row
			}
			after := run[len(run)-1].after
			u := persistence.InstanceUpdateParams{ID: after.ID, Definition: after.Definition, ExpectRevision: run[0].before.row.Revision, Version: after.Version,
				State: after.State, Context: after.Context, Revision: after.Revision, Final: after.Final, UpdatedAt: now,
				EnteredAt: after.EnteredAt, Children: after.Children, Stays: stays(run[0].before.row, after)}
			run = nil
			return audit.AppendMany(ctx, tx, u, rows, nil)
		}
		for _, d := range batch {
			if d.tr == nil || quiet(d.before, d.tr) {
				run = append(run, d)
				continue
			}
			if err := flush(); err != nil {
				return err
			}
			if _, _, err := s.write(ctx, tx, d.before, d.tr, d.req, "", now); err != nil {
				return err
			}
		}
		return flush()
	})
	if err != nil {
		return 0, err
	}
	return len(batch), nil
}

// quiet reports whether a transition of l changes nothing but the instance's row and its history:
// a stay that sends nothing, starts nothing, and notifies no webhook.
func quiet(l loaded, m *move) bool {
	return m.Stayed && len(m.Sent) == 0 && len(m.children) == 0 && len(l.def.Notified(m.Transition)) == 0
}
