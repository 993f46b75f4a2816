package service

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// write writes an accepted transition t of the instance l, with the same now for the instance and
// its audit row, on the condition that the instance is still at the revision decided on: through
// ex, the database (the write is then its own transaction) or the caller's transaction (timers
// write a timer's deletion with it). persistence.ErrConflict when the instance moved on. It returns
// the answer and the instance's row as written; no row when the write failed.
//
// The children the transition starts are inserted with it, in one transaction.
func (s *Service) write(ctx context.Context, ex persistence.Executor, l loaded, m *move, req SendEvent, hash string,
	now time.Time) (EventResult, persistence.InstanceRow, error) {
	t := m.Transition
	row, next, err := prepare(l, m, req, hash, now)
	if err != nil {
		return EventResult{}, persistence.InstanceRow{}, err
	}
	update := updateOf(l, m, next, now)
	if err := withEffects(l, m, row, &update, now); err != nil {
		return EventResult{}, persistence.InstanceRow{}, err
	}
	if len(m.children) == 0 {
		err = s.appendWithUpdate(ctx, ex, update, row)
	} else {
		err = persistence.InTx(ctx, ex, func(tx *persistence.Tx) error {
			if err := audit.AppendWithUpdate(ctx, tx, update, row); err != nil {
				return err
			}
			return persistence.ChildrenInsert(ctx, tx, m.children, m.childArms)
		})
	}
	if errors.Is(err, persistence.ErrKeyExists) { // a key the transition's set, or a child, takes (keys.go)
		return EventResult{}, persistence.InstanceRow{}, s.keyConflict(ctx, err, append([]persistence.InstanceRow{next}, m.children...))
	}
	if err != nil {
		return EventResult{}, persistence.InstanceRow{}, err
	}
	s.afterWrite(ex, l, t, update, now)
	return answer(l, next, t, now), next, nil
}

// withEffects adds to the update of the transition m of l (its audit row r) what it writes besides:
// the outbox rows of the webhooks it notifies and the messages it sends (messages.go), written in its
// statement or transaction.
func withEffects(l loaded, m *move, r audit.Row, update *persistence.InstanceUpdateParams, now time.Time) error {
	t := m.Transition
	var err error
	if len(l.def.Notify) > 0 {
		update.Outbox, err = outbox.Rows(outbox.RowsParams{Definition: l.def, Version: l.row.Version, InstanceID: l.row.ID, Seq: update.Revision,
			Source: r.Source, Transition: t, Now: now,
			PayloadJSON: r.Payload, ContextBeforeJSON: r.ContextBefore, ContextAfterJSON: r.ContextAfter})
		if err != nil {
			return err
		}
	}
	if len(t.Sent) > 0 {
		if update.Messages, err = messageRows(l.row.ID, update.Revision, t.Sent, now); err != nil {
			return err
		}
	}
	return nil
}

// afterWrite is what follows the write of the transition t of l with update through ex, once it
// has committed: the transition counts in the stats, with its time in the state left (stats.go),
// and the local dispatchers deliver its webhooks and messages without waiting for their polls. A
// stay does not count: it neither leaves nor enters its state, whose time runs on.
func (s *Service) afterWrite(ex persistence.Executor, l loaded, t *machine.Transition, update persistence.InstanceUpdateParams, now time.Time) {
	if !t.Stayed {
		ex.AfterCommit(func() { s.countTransition(l.row.Definition, t.From, t.To, t.Event, l.row.EnteredAt, now) })
	}
	if len(update.Outbox) > 0 {
		ex.AfterCommit(s.wakeOutbox)
	}
	if len(update.Messages) > 0 {
		ex.AfterCommit(s.messageWake.signal)
	}
}

// afterResolved is afterWrite for an event's write whose commit was read back from its audit row r
// (outcome.go): its AfterCommit never ran, the commit having failed as far as the write could tell.
// The transition counts in the stats as it would have, and the dispatchers look for the webhooks
// and messages it may have queued rather than waiting for their polls.
func (s *Service) afterResolved(l loaded, r audit.Row) {
	if def, _, err := s.reg.get(l.row.Definition, r.DefinitionVersion); err == nil && !stayed(def, r) {
		s.countTransition(l.row.Definition, r.From, r.To, r.Event, l.row.EnteredAt, r.At)
	}
	s.wakeOutbox()
	s.messageWake.signal()
}

// appendWithUpdate writes u with its audit row r through ex: in the next group commit (group.go)
// when ex is the database and group commit is on, else as audit.AppendWithUpdate writes it (a
// caller's transaction is its own commit already).
func (s *Service) appendWithUpdate(ctx context.Context, ex persistence.Executor, u persistence.InstanceUpdateParams, r audit.Row) error {
	if db, ok := ex.(*persistence.DB); ok && s.group != nil && db == s.db {
		return s.group.advance(ctx, u, r)
	}
	return audit.AppendWithUpdate(ctx, ex, u, r)
}

// updateOf is the update of l's instance to next by the transition m, with its timers' change.
func updateOf(l loaded, m *move, next persistence.InstanceRow, now time.Time) persistence.InstanceUpdateParams {
	t := m.Transition
	update := persistence.InstanceUpdateParams{ID: next.ID, Definition: next.Definition, ExpectRevision: l.row.Revision,
		Version: next.Version, State: next.State, Context: next.Context, Revision: next.Revision, Final: next.Final,
		UpdatedAt: now, EnteredAt: next.EnteredAt, Children: m.groups, Stays: stays(l.row, next)}
	if t.Task != nil { // the state entered sets (or clears) the task; a stay keeps it
		update.Task = &next.Task
	}
	if len(t.Cancel) > 0 || len(t.Arm) > 0 { // the timers change with the transition, in its statement
		update.Timers = &persistence.TimerChange{Cancel: len(t.Cancel) > 0, Arms: arms(t.Arm)}
	}
	return update
}

// stays reports whether next keeps before's version, state and finality (persistence writes less).
func stays(before, next persistence.InstanceRow) bool {
	return before.Version == next.Version && before.State == next.State && before.Final == next.Final
}

// prepare makes the audit row of the transition m of l and the instance's row after it.
func prepare(l loaded, m *move, req SendEvent, hash string, now time.Time) (audit.Row, persistence.InstanceRow, error) {
	t := m.Transition
	rev := l.row.Revision + 1
	row, err := encodeTransition(l, t, rev)
	if err != nil {
		return audit.Row{}, persistence.InstanceRow{}, err
	}
	row.Source, row.RequestID, row.IdempotencyKey, row.RequestHash, row.At = cmp.Or(req.source, audit.SourceAPI), req.RequestID, req.IdempotencyKey, hash, now
	actor := req.actor()
	row.Actor, row.ActorKind = actor.Name, actor.Kind

	next := l.row
	next.State, next.Context, next.Revision, next.Final, next.UpdatedAt = t.To, row.ContextAfter, rev, t.Final, now
	if !t.Stayed { // a stay does not leave the state: it keeps the time it was entered (and its timers)
		next.EnteredAt = now
	}
	if m.groups != nil {
		next.Children = m.groups
	}
	if t.Task != nil {
		next.Task = taskRow(*t.Task)
	}
	return row, next, nil
}

// taskRow is the engine's task as stored.
func taskRow(t machine.Task) persistence.Task {
	return persistence.Task{Assignees: t.Assignees, DueAt: t.DueAt}
}

// arms are the timers to arm for the engine's deadlines.
func arms(due []machine.Due) []persistence.Arm {
	out := make([]persistence.Arm, len(due))
	for i, d := range due {
		out[i] = persistence.Arm{Event: d.Event, DueAt: ceilMicro(d.At)}
	}
	return out
}

// ceilMicro rounds t up to the microsecond, the precision both databases keep: a deadline stored
// truncated (an `at` expression's time may have nanoseconds) could be reached, and the timer fired
// with that `now`, up to a microsecond before the time the definition gave it.
func ceilMicro(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); !c.Equal(t) {
		return c.Add(time.Microsecond)
	}
	return t
}
