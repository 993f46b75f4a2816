package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// messageRows are the rows of the messages a transition of sender (its seq in the history) sends:
// one per target, in the order sent, each with an id of its own (docs/definitions.md, `send`).
func messageRows(sender string, seq int64, sent []machine.Message, now time.Time) ([]persistence.MessageRow, error) {
	rows := make([]persistence.MessageRow, len(sent))
	for i, m := range sent {
		payload, err := json.Marshal(schema.Encode(orEmpty(m.Payload)))
		if err != nil {
			return nil, err
		}
		rows[i] = persistence.MessageRow{ID: ident.New(now), Sender: sender, SenderSeq: seq, Target: m.To, Event: m.Event, ChildFinal: m.ChildFinal,
			Payload: payload, CreatedAt: now}
	}
	return rows, nil
}

// Messages between instances are delivered after the commit that wrote them, by a dispatcher in
// every process (RunMessages), each through its target's event path, exactly once: as for timers,
// no lock is held while a message's event is decided, and the outcome is written on the condition
// that the target has not moved since, with the message's deletion, in one transaction; of several
// processes deciding the same message, only the first to commit writes it.

// MessageOptions configure the dispatcher of RunMessages.
type MessageOptions struct {
	Poll  time.Duration // how often it looks for messages when there were none: 200 ms when 0
	Batch int           // the pairs (sender, target) read per round, and the messages delivered of each: 100 when 0
}

func (o MessageOptions) withDefaults() MessageOptions {
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	return o
}

// wake is a signal that coalesces: the dispatcher waits on it as well as on its poll, and the
// commits that write messages give it.
type wake struct {
	once sync.Once
	c    chan struct{}
}

func (w *wake) ch() chan struct{} {
	w.once.Do(func() { w.c = make(chan struct{}, 1) })
	return w.c
}

func (w *wake) signal() {
	select {
	case w.ch() <- struct{}{}:
	default:
	}
}

// RunMessages delivers messages until ctx ends: every fsmd process runs one. A round reads up to
// Batch due messages (each the first of its (sender, target) pair) and delivers, per pair, that one
// and those after it (DeliverDue); a full round is followed by another at once, else by a pause of
// Poll, cut short by a commit of this process that sends messages.
func (s *Service) RunMessages(ctx context.Context, o MessageOptions) {
	o = o.withDefaults()
	s.poll(ctx, "delivering messages", o.Poll, time.Minute, o.Batch, s.messageWake.ch(),
		func(ctx context.Context) (int, error) { return s.DeliverDue(ctx, o) })
}

// DeliverDue is one round of RunMessages: it returns how many pairs had a due message, or Batch
// (a full round: RunMessages goes on at once) when a target had more messages than a round
// delivers to it. The due messages are grouped by target, and each target's delivered by one
// worker, messageWorkers targets at a time, in one transaction (messages_batch.go): the first
// message of each of its pairs, or, for a target of one pair, up to Batch of the pair's, in order.
func (s *Service) DeliverDue(ctx context.Context, o MessageOptions) (int, error) {
	o = o.withDefaults()
	rows, err := persistence.MessagesDue(ctx, s.db, o.Batch)
	if err != nil {
		return 0, err
	}
	// The pairs of one target are delivered together (messages_batch.go); a target's only pair,
	// with the pair's next messages after it.
	var targets [][]persistence.MessageRow
	at := map[string]int{}
	for _, m := range rows {
		i, ok := at[m.Target]
		if !ok {
			i, at[m.Target] = len(targets), len(targets)
			targets = append(targets, nil)
		}
		targets[i] = append(targets[i], m)
	}
	var more atomic.Bool
	err = round(targets, messageWorkers, func(ms []persistence.MessageRow) error {
		full := false
		if len(ms) == 1 { // the target's only pair: its run of pending messages, in order
			run, err := persistence.MessagesOfPair(ctx, s.db, ms[0].Sender, ms[0].Target, o.Batch)
			if err != nil {
				return err
			}
			if len(run) == 0 || run[0].ID != ms[0].ID { // delivered meanwhile, by another process
				return nil
			}
			ms, full = run, len(run) == o.Batch
		}
		if len(ms) == 1 {
			return s.deliver(ctx, ms[0])
		}
		done, err := s.deliverTo(ctx, ms)
		if full || done < len(ms) {
			more.Store(true)
		}
		return err
	})
	if more.Load() {
		return max(len(rows), o.Batch), err
	}
	return len(rows), err
}

// messageWorkers is how many targets a round delivers to at once.
const messageWorkers = 4

// deliver delivers one message through its target's event path (source message, request id the
// message's id; guards apply), in the target's turn: the transition with the message's deletion; a
// refusal (any event error) is dropped, with a row in the target's history that says why; a
// message to an instance that does not exist is dead. An error is the database's or the process's:
// the round stops, and the next tries again; a failure of the message's own that is not a refusal
// (its target's definition version is not registered here) leaves it pending for the next round.
func (s *Service) deliver(ctx context.Context, m persistence.MessageRow) error {
	release, err := s.turns.take(ctx, m.Target)
	if err != nil {
		return err
	}
	defer release()
	defer s.cache.drop(m.Target) // the cached row is behind what was written
	for i := range maxDecisions {
		if i > 0 { // the target moved on since it was read, or the message was delivered by another process
			if cur, ok, err := persistence.MessageNext(ctx, s.db, m.Sender, m.Target); err != nil || !ok || cur.ID != m.ID {
				return err
			}
		}
		now := s.now()
		row, err := persistence.InstanceGet(ctx, s.db, m.Target)
		if errors.Is(err, persistence.ErrNotFound) {
			err = persistence.MessageKill(ctx, s.db, m.ID, fmt.Sprintf("%s: no instance has id %q", code.NotFound, m.Target), now)
			if err == nil {
				s.log.Warn("a message to an instance that does not exist is dead", slog.String("message", m.ID),
					slog.String("sender", m.Sender), slog.String("target", m.Target), slog.String("event", m.Event))
			}
			if errors.Is(err, persistence.ErrConflict) {
				return nil // another process found it first
			}
			return err
		}
		if err != nil {
			return err
		}
		if row.Suspended {
			return nil // it waits, pending, until its target is resumed (MessagesDue leaves it out meanwhile)
		}
		l, err := s.load(row, row.ID, nil)
		if err != nil {
			s.log.Warn("a message could not be delivered; trying again", slog.String("message", m.ID),
				slog.String("target", m.Target), slog.Any("error", err))
			return nil
		}
		req := SendEvent{InstanceID: m.Target, Event: m.Event, RequestID: m.ID, source: audit.SourceMessage, sender: finalFrom(m), from: m.Sender}
		tr, refusal := s.decideMessage(ctx, l, m, now) // no lock is held
		if refusal != nil && code.Of(refusal) == "" {
			err = refusal
		} else {
			err = s.db.WithTx(ctx, func(tx *persistence.Tx) error {
				if err := persistence.MessageDelete(ctx, tx, m.ID); err != nil {
					return err
				}
				if refusal != nil {
					_, err := s.drop(ctx, tx, l, m.Event, m.Payload, req, refusal, now)
					return err
				}
				_, _, err := s.write(ctx, tx, l, tr, req, "", now)
				return err
			})
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, persistence.ErrConflict):
			continue // decide again on a fresh read
		case errors.Is(err, persistence.ErrUnavailable) || ctx.Err() != nil:
			return err
		}
		s.log.Warn("a message could not be delivered; trying again", slog.String("message", m.ID),
			slog.String("target", m.Target), slog.Any("error", err))
		return nil
	}
	return nil // moved on at every read: the next round sees it again
}

// decideMessage decides a message's event on its target like any other event: the transition, or
// why it is refused (an error without a code is not a refusal but a failure).
func (s *Service) decideMessage(ctx context.Context, l loaded, m persistence.MessageRow, now time.Time) (*move, error) {
	payload, err := decodeStored(m.Payload)
	if err != nil {
		return nil, err
	}
	return s.fireOn(ctx, l, SendEvent{Event: m.Event, Payload: payload, source: audit.SourceMessage, sender: finalFrom(m), from: m.Sender}, now)
}

// DeadMessage is a message that could not be delivered, as GET /v1/messages/dead shows it.
type DeadMessage struct {
	ID        string    `json:"id" example:"06gztt7dq6c6js8q438gca5qj0" validate:"required"` // the message id (the request_id of its delivery)
	Sender    string    `json:"sender" example:"trip-1" validate:"required"`                 // the instance that sent it
	SenderSeq int64     `json:"sender_seq" example:"4" validate:"required"`                  // the transition that sent it, in the sender's history
	Target    string    `json:"target" example:"flight-9" validate:"required"`               // the id it was sent to
	Event     string    `json:"event" example:"cancel" validate:"required"`
	Payload   any       `json:"payload" swaggertype:"object" validate:"required"`
	Reason    string    `json:"reason" example:"not_found: no instance has id \"flight-9\"" validate:"required"` // why it is dead
	CreatedAt time.Time `json:"created_at" validate:"required" format:"date-time"`                               // when it was sent
	DeadAt    time.Time `json:"dead_at" validate:"required" format:"date-time"`                                  // when it was found dead
}

// DeadMessageFilter selects a page of dead messages.
type DeadMessageFilter struct {
	After string // the last id of the previous page
	Limit int
}

// ListDeadMessages returns a page of the dead messages, in id order (the order they were sent).
func (s *Service) ListDeadMessages(ctx context.Context, f DeadMessageFilter) (Page[DeadMessage], error) {
	page, err := readPage(pageSpec[persistence.MessageRow, DeadMessage]{
		limit: f.Limit,
		fetch: func(last *persistence.MessageRow, n, maxBytes int) ([]persistence.MessageRow, error) {
			after := f.After
			if last != nil {
				after = last.ID
			}
			return persistence.MessageListDead(ctx, s.db, persistence.MessageListParams{After: after, Limit: n, MaxBytes: maxBytes})
		},
		size: persistence.MessageRow.Bytes,
		item: toDeadMessage,
		key:  func(d DeadMessage) string { return d.ID },
	})
	return page, s.dbError(err)
}

func toDeadMessage(r persistence.MessageRow) (DeadMessage, error) {
	payload, err := decodeStored(r.Payload)
	if err != nil {
		return DeadMessage{}, err
	}
	return DeadMessage{ID: r.ID, Sender: r.Sender, SenderSeq: r.SenderSeq, Target: r.Target, Event: r.Event,
		Payload: orEmpty(payload), Reason: r.Reason, CreatedAt: r.CreatedAt, DeadAt: r.DeadAt}, nil
}

// RedriveDeadMessage makes a dead message pending again: the dispatchers deliver it after the
// pending messages of its pair sent before it (when its target exists by then; else it is dead
// again). NotFoundError when no dead message has that id (it was delivered, re-driven already, or
// never was).
func (s *Service) RedriveDeadMessage(ctx context.Context, id string) (RedriveResult, error) {
	// In a transaction, not a statement of its own: database/sql sends a statement again on a new
	// connection after a broken one, and the re-drive sent again would find its own work done (404).
	redrive := func(ctx context.Context) error {
		return s.db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.MessageRedrive(ctx, tx, id) })
	}
	err := redrive(ctx)
	if errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err) {
		// The COMMIT may have applied without its answer (outcome.go): re-driving again on a new
		// connection settles it, and a message no longer dead then was re-driven.
		if err = s.retryUncertain(ctx, "dead message", id, err, redrive); errors.Is(err, persistence.ErrNotFound) {
			err = nil
		}
	}
	if errors.Is(err, persistence.ErrNotFound) {
		return RedriveResult{}, &NotFoundError{What: "dead message", Key: id}
	}
	if err != nil {
		return RedriveResult{}, s.dbError(err)
	}
	s.messageWake.signal()
	return RedriveResult{Redriven: 1}, nil
}
