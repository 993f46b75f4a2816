package service

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// CheckID refuses an instance id that breaks ident.Check's rule.
func CheckID(id string) error {
	if err := ident.Check("the id", id); err != nil {
		return &BadRequestError{err.Error()}
	}
	return nil
}

// BadRequestError is a request the API cannot take as it is (400, invalid_request).
type BadRequestError struct{ Detail string }

func (e *BadRequestError) Error() string { return e.Detail }

// Code is fsmd's own error code for it.
func (e *BadRequestError) Code() string { return code.InvalidRequest }

// CreateInstance creates an instance of the latest version of a definition in its initial state.
// With a client-chosen id that exists already, the same request is answered with the instance
// (created false) and another request with InstanceExistsError.
func (s *Service) CreateInstance(ctx context.Context, req CreateInstance) (Instance, bool, error) {
	def, row, err := s.reg.get(req.Definition, 0)
	if err != nil {
		return Instance{}, false, err
	}
	now := s.now()
	id := req.ID
	if id == "" {
		id = ident.New(now)
	} else if err := CheckID(id); err != nil {
		return Instance{}, false, err
	}
	snap, due, err := s.limits.Start(def, id, row.Version, req.Context, now)
	if err != nil {
		return Instance{}, false, err
	}
	ctxJSON, err := encodeContext(snap.Context)
	if err != nil {
		return Instance{}, false, err
	}
	createHash := requestHash(map[string]any{"definition": req.Definition, "id": req.ID, "context": orEmpty(req.Context)})
	inst := persistence.InstanceRow{ID: id, Definition: def.Name, Version: row.Version, State: snap.State, Context: ctxJSON,
		Final: def.Final(snap.State), CreateHash: createHash, CreatedAt: now, UpdatedAt: now, EnteredAt: now}
	err = s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		if err := persistence.InstanceInsert(ctx, tx, inst); err != nil {
			return err
		}
		return persistence.TimersReplace(ctx, tx, id, false, 0, arms(due))
	})
	if errors.Is(err, persistence.ErrConflict) {
		existing, err := s.instance(ctx, s.db, id)
		if err != nil {
			return Instance{}, false, err
		}
		api, err := toInstance(existing.def, existing.row)
		if err != nil {
			return Instance{}, false, err
		}
		if existing.row.CreateHash == createHash {
			return api, false, nil
		}
		return Instance{}, false, &InstanceExistsError{Instance: api}
	}
	if err != nil {
		return Instance{}, false, s.dbError(err)
	}
	s.cache.put(inst)
	api, err := toInstance(def, inst)
	return api, true, err
}

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

// GetInstance returns an instance.
func (s *Service) GetInstance(ctx context.Context, id string) (Instance, error) {
	l, err := s.instance(ctx, s.db, id)
	if err != nil {
		return Instance{}, err
	}
	s.cache.put(l.row)
	inst, err := toInstance(l.def, l.row)
	if err != nil {
		return Instance{}, err
	}
	timers, err := persistence.TimersOf(ctx, s.db, id)
	if err != nil {
		return Instance{}, s.dbError(err)
	}
	inst.Timers = make([]PendingTimer, len(timers))
	for i, t := range timers {
		inst.Timers[i] = PendingTimer{Event: t.Event, DueAt: t.DueAt, Attempts: t.Attempts, LastError: t.LastError}
		if t.Attempts > 0 {
			inst.Timers[i].NextTryAt = t.NextTryAt
		}
	}
	return inst, nil
}

// ListInstances returns a page of instances in id order.
func (s *Service) ListInstances(ctx context.Context, f InstanceFilter) (Page[Instance], error) {
	page, err := readPage(pageSpec[persistence.InstanceRow, Instance]{
		limit: f.Limit,
		fetch: func(last *persistence.InstanceRow, n, maxBytes int) ([]persistence.InstanceRow, error) {
			after := f.After
			if last != nil {
				after = last.ID
			}
			return persistence.InstanceList(ctx, s.db, persistence.InstanceListParams{Definition: f.Definition,
				State: f.State, Version: f.Version, After: after, Limit: n, MaxBytes: maxBytes})
		},
		size: persistence.InstanceRow.Bytes,
		item: func(r persistence.InstanceRow) (Instance, error) {
			l, err := s.load(r, r.ID, nil)
			if err != nil {
				return Instance{}, err
			}
			return toInstance(l.def, l.row)
		},
		key: func(i Instance) string { return i.ID },
	})
	return page, s.dbError(err)
}

// SendEvent handles an event: answer a replayed Idempotency-Key with its first answer, check
// If-Match, fire, and write the instance's update together with its audit row.
//
// The retry policy, in one place. No database lock is held while an event's expressions are
// evaluated (they have a time budget, s.limits, but a slow event must not delay the events of other
// instances meanwhile):
//
//  1. The events of one instance take turns in this process (turns.go), so that they do not decide
//     on the same read and then all but one decide again.
//  2. PostgreSQL first decides on the instance's cached row and writes the transition in one
//     statement that applies only if the instance is still at the revision decided on
//     (audit.AppendWithUpdate), its own transaction: one round trip. A refusal (If-Match, a guard,
//     an unknown event) is never answered from the cache, only once a read finds the instance at
//     the revision it was decided on (then it is not decided again: a decision may take the budget).
//  3. Then, on both databases, up to maxDecisions times: a plain read, the decision, and the same
//     conditional write (on SQLite in a short transaction of its own: the write lock is held for
//     the write, not for the decision). When another writer moved the instance in between, the
//     write changes nothing and the event is decided again on a fresh read. With the turns, that
//     writer is another process (PostgreSQL), the timer scheduler or a migration.
//  4. Past that, the locked path: a transaction that locks the instance (SELECT ... FOR UPDATE;
//     SQLite's write lock), decides and writes, so that the event is never lost to a writer that
//     keeps coming first. It is kept as the last resort for PostgreSQL's processes, which the turns
//     do not serialize: the row lock delays only that instance's events, which would wait anyway,
//     and the budget bounds how long. On SQLite only a timer or a migration moving the instance
//     during each of the decisions leads there: in practice never.
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

// maxDecisions is how many times an event is decided on a plain read before the locked path.
const maxDecisions = 3

func (s *Service) sendEvent(ctx context.Context, req SendEvent, hash string) (EventResult, bool, error) {
	release, err := s.turns.take(ctx, req.InstanceID)
	if err != nil {
		return EventResult{}, false, err
	}
	defer release()
	var refused *staleRefusal
	if s.db.Dialect == persistence.Postgres {
		if row, ok := s.cache.get(req.InstanceID); ok {
			res, err := s.sendCached(ctx, row, req, hash)
			if !errors.Is(err, errStale) {
				return res, false, err
			}
			errors.As(err, &refused)
		}
	}
	for range maxDecisions {
		res, replayed, row, err := s.attempt(ctx, s.db, req, hash, refused)
		if !errors.Is(err, persistence.ErrConflict) {
			s.remember(req.InstanceID, row)
			return res, replayed, err
		}
	}
	var (
		res      EventResult
		replayed bool
		row      persistence.InstanceRow
	)
	err = s.db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
		res, replayed, row, err = s.attempt(ctx, tx, req, hash, refused)
		return err
	})
	if err != nil { // the row may be one the commit did not keep
		row = persistence.InstanceRow{}
	}
	s.remember(req.InstanceID, row)
	return res, replayed, err
}

// arms are the timers to arm for the engine's deadlines.
func arms(due []machine.Due) []persistence.Arm {
	out := make([]persistence.Arm, len(due))
	for i, d := range due {
		out[i] = persistence.Arm{Event: d.Event, DueAt: d.At}
	}
	return out
}

// errStale: an event decided on the cache is to be decided again on a read.
var errStale = errors.New("the cached instance is to be read again")

// staleRefusal is errStale for an event the cached revision refused: a read that finds the
// instance still at that revision answers the refusal without deciding again (a decision may take
// the whole time budget).
type staleRefusal struct {
	revision int64
	err      error
}

func (e *staleRefusal) Error() string        { return errStale.Error() + ": " + e.err.Error() }
func (e *staleRefusal) Is(target error) bool { return target == errStale }

// sendCached decides an event on the instance's cached row and writes an acceptance on the
// condition that the instance is still at that revision; an Idempotency-Key is not looked up, the
// write fails when it is taken. errStale for anything else: a refusal, a write that did not apply.
func (s *Service) sendCached(ctx context.Context, row persistence.InstanceRow, req SendEvent, hash string) (EventResult, error) {
	l, err := s.load(row, req.InstanceID, nil)
	if err != nil {
		return EventResult{}, errStale
	}
	now := s.now()
	t, err := s.decide(l, req, now)
	if err != nil {
		return EventResult{}, &staleRefusal{revision: row.Revision, err: err}
	}
	res, next, err := s.apply(ctx, s.db, l, t, req, hash, now)
	s.remember(req.InstanceID, next)
	if errors.Is(err, persistence.ErrConflict) {
		return EventResult{}, errStale
	}
	return res, err
}

// remember caches row, committed data of instance id (from attempt), or forgets the instance when
// there is no such row: after a failed write the cached row may be out of date.
func (s *Service) remember(id string, row persistence.InstanceRow) {
	if row.ID == "" {
		s.cache.drop(id)
		return
	}
	s.cache.put(row)
}

// attempt is one attempt at an event, reading the instance through ex: a transaction (the instance
// is locked first) or the database (nothing is locked; the write applies only if the instance has
// not moved: persistence.ErrConflict when it has). It returns the instance's row as written, or as
// read when nothing was written, for the cache: none when a write failed. A refusal decided on the
// cache is the answer when the instance is still at its revision.
func (s *Service) attempt(ctx context.Context, ex persistence.Executor, req SendEvent, hash string, refused *staleRefusal) (EventResult, bool, persistence.InstanceRow, error) {
	var row persistence.InstanceRow
	var err error
	if tx, ok := ex.(*persistence.Tx); ok {
		row, err = persistence.InstanceGetForUpdate(ctx, tx, req.InstanceID)
	} else {
		row, err = persistence.InstanceGet(ctx, ex, req.InstanceID)
	}
	l, err := s.load(row, req.InstanceID, err)
	if err != nil {
		return EventResult{}, false, persistence.InstanceRow{}, err
	}
	if req.IdempotencyKey != "" {
		prev, err := audit.ByIdempotencyKey(ctx, ex, req.InstanceID, req.IdempotencyKey)
		switch {
		case err == nil && prev.RequestHash != hash:
			return EventResult{}, false, l.row, &IdempotencyMismatchError{Key: req.IdempotencyKey}
		case err == nil:
			res, replayed, err := s.replay(l, prev)
			return res, replayed, l.row, err
		case !errors.Is(err, persistence.ErrNotFound):
			return EventResult{}, false, persistence.InstanceRow{}, err
		}
	}
	if refused != nil && refused.revision == l.row.Revision {
		return EventResult{}, false, l.row, refused.err
	}
	now := s.now()
	t, err := s.decide(l, req, now)
	if err != nil {
		return EventResult{}, false, l.row, err
	}
	res, next, err := s.apply(ctx, ex, l, t, req, hash, now)
	if err != nil {
		return EventResult{}, false, persistence.InstanceRow{}, err
	}
	return res, false, next, nil
}

// decide checks If-Match and fires the event on the instance: the transition, or the refusal as the
// API answers it.
func (s *Service) decide(l loaded, req SendEvent, now time.Time) (*machine.Transition, error) {
	if req.IfMatch != nil && *req.IfMatch != l.row.Revision {
		api, err := toInstance(l.def, l.row)
		if err != nil {
			return nil, err
		}
		return nil, &VersionConflictError{IfMatch: *req.IfMatch, Instance: api}
	}
	snap, err := snapshot(l.def, l.row)
	if err != nil {
		return nil, err
	}
	t, err := s.limits.Fire(l.def, snap, req.Event, req.Payload, now)
	if err != nil {
		api, aerr := toInstance(l.def, l.row)
		if aerr != nil {
			return nil, aerr
		}
		return nil, &EventError{Err: err, Instance: api}
	}
	return t, nil
}

// apply writes an accepted transition: the instance and its audit row, with the same now.
func (s *Service) apply(ctx context.Context, ex persistence.Executor, l loaded, t *machine.Transition, req SendEvent, hash string, now time.Time) (EventResult, persistence.InstanceRow, error) {
	rev := l.row.Revision + 1
	row, err := encodeTransition(l, t, rev)
	if err != nil {
		return EventResult{}, persistence.InstanceRow{}, err
	}
	row.Source, row.RequestID, row.IdempotencyKey, row.RequestHash, row.At = cmp.Or(req.source, audit.SourceAPI), req.RequestID, req.IdempotencyKey, hash, now
	row.Actor = req.Actor

	next := l.row
	next.State, next.Context, next.Revision, next.Final, next.UpdatedAt, next.EnteredAt = t.To, row.ContextAfter, rev, t.Final, now, now
	update := persistence.InstanceUpdateParams{ID: next.ID, ExpectRevision: l.row.Revision,
		Version: next.Version, State: next.State, Context: next.Context, Revision: rev, Final: next.Final,
		UpdatedAt: now, EnteredAt: now}
	if len(t.Cancel) > 0 || len(t.Arm) > 0 { // the timers change with the transition, in its statement
		update.Timers = &persistence.TimerChange{Cancel: len(t.Cancel) > 0, Arms: arms(t.Arm)}
	}
	// The webhooks it notifies get their outbox rows with it, in its statement (or transaction).
	if len(l.def.Notify) > 0 {
		var err error
		update.Outbox, err = outbox.Rows(outbox.RowsParams{Definition: l.def, Version: l.row.Version, InstanceID: l.row.ID, Seq: rev,
			Source: row.Source, Transition: t, Now: now,
			PayloadJSON: row.Payload, ContextBeforeJSON: row.ContextBefore, ContextAfterJSON: row.ContextAfter})
		if err != nil {
			return EventResult{}, persistence.InstanceRow{}, err
		}
	}
	if err := s.advance(ctx, ex, update, row); err != nil {
		return EventResult{}, persistence.InstanceRow{}, err
	}
	// stats: the transition counts once committed, with its time in the state left (stats.go)
	countIt := func() { s.countTransition(l.row.Definition, t.From, t.To, t.Event, l.row.EnteredAt, now) }
	if tx, ok := ex.(*persistence.Tx); ok {
		tx.AfterCommit(countIt)
	} else {
		countIt()
	}
	if len(update.Outbox) > 0 { // the local dispatcher delivers them without waiting for its poll
		if tx, ok := ex.(*persistence.Tx); ok {
			tx.AfterCommit(s.wakeOutbox)
		} else {
			s.wakeOutbox()
		}
	}
	// The answer is built from the values in hand rather than by decoding what was just encoded, in
	// the canonical form a replay reads back (decodeJSON), so both are the same bytes.
	after := canonicalNumbers(encodeMap(t.ContextAfter)).(map[string]any)
	inst := instanceOf(l.def, next, after)
	guards := t.Guards
	if guards == nil {
		guards = []machine.GuardResult{}
	}
	tr := Transition{Seq: rev, Event: t.Event, From: t.From, To: t.To, Branch: t.Branch, Guards: guards,
		Payload:       canonicalNumbers(encodeMap(t.Payload)).(map[string]any),
		ContextBefore: canonicalNumbers(encodeMap(t.ContextBefore)).(map[string]any),
		ContextAfter:  after, At: now}
	return EventResult{Instance: inst, Transition: tr}, next, nil
}

// advance writes a transition with its instance's update, on the condition that the instance is at
// u.ExpectRevision (audit.AppendWithUpdate), in ex when it is a transaction. On the database, it is
// one statement on PostgreSQL, its own transaction, and on SQLite, which cannot update in a WITH
// clause, a short transaction of its own: SQLite's write lock is held for the write only.
func (s *Service) advance(ctx context.Context, ex persistence.Executor, u persistence.InstanceUpdateParams, r audit.Row) error {
	if _, inTx := ex.(*persistence.Tx); inTx || s.db.Dialect == persistence.Postgres {
		return audit.AppendWithUpdate(ctx, ex, u, r)
	}
	return s.db.WithTx(ctx, func(tx *persistence.Tx) error { return audit.AppendWithUpdate(ctx, tx, u, r) })
}

// replay rebuilds the first answer to an idempotency key from its audit row: the instance as that
// transition left it, and the transition.
func (s *Service) replay(l loaded, prev audit.Row) (EventResult, bool, error) {
	def, _, err := s.reg.get(l.row.Definition, prev.DefinitionVersion)
	if err != nil {
		return EventResult{}, false, err
	}
	then := l.row
	then.Version, then.State, then.Context, then.Revision = prev.DefinitionVersion, prev.To, prev.ContextAfter, prev.Seq
	then.Final, then.UpdatedAt, then.EnteredAt = def.Final(prev.To), prev.At, prev.At
	inst, err := toInstance(def, then)
	if err != nil {
		return EventResult{}, false, err
	}
	tr, err := toTransition(prev)
	return EventResult{Instance: inst, Transition: tr}, true, err
}

// Explain says what an event would do now, changing nothing.
func (s *Service) Explain(ctx context.Context, id, event string, payload map[string]any) (Explanation, error) {
	l, err := s.instance(ctx, s.db, id)
	if err != nil {
		return Explanation{}, err
	}
	snap, err := snapshot(l.def, l.row)
	if err != nil {
		return Explanation{}, err
	}
	x := s.limits.Explain(l.def, snap, event, payload, s.now())
	out := Explanation{Event: event, State: l.row.State, Branches: []BranchOutcome{}}
	for _, b := range x.Branches {
		o := BranchOutcome{To: b.To, Guard: b.Guard, Message: b.Message, Taken: b.Taken}
		if b.Guard != "" {
			r := b.Result && b.Err == nil
			o.Result = &r
		}
		out.Branches = append(out.Branches, o)
	}
	if x.Transition != nil {
		out.To = x.Transition.To
		out.Context = encodeMap(x.Transition.ContextAfter)
	}
	if x.Err != nil {
		out.Error = &ErrorInfo{Code: code.Of(x.Err), Detail: x.Err.Error()}
	}
	return out, nil
}

// History returns a page of an instance's audit log, oldest first.
func (s *Service) History(ctx context.Context, id string, afterSeq int64, limit int) (Page[HistoryEntry], error) {
	if _, err := s.instance(ctx, s.db, id); err != nil {
		return Page[HistoryEntry]{}, err
	}
	page, err := readPage(pageSpec[audit.Row, HistoryEntry]{
		limit: limit,
		fetch: func(last *audit.Row, n, maxBytes int) ([]audit.Row, error) {
			after := afterSeq
			if last != nil {
				after = last.Seq
			}
			return audit.History(ctx, s.db, id, after, n, maxBytes)
		},
		size: audit.Row.Bytes,
		item: toHistory,
		key:  func(e HistoryEntry) string { return strconv.FormatInt(e.Seq, 10) },
	})
	return page, s.dbError(err)
}
