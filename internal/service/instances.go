package service

import (
	"context"
	"errors"
	"strconv"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
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
	snap, err := s.limits.Begin(def, machine.Snapshot{ID: id, Version: row.Version, Context: req.Context}, now)
	if err != nil {
		return Instance{}, false, err
	}
	// The initial state's children start with the instance (children.go), at its revision 0.
	var children []persistence.InstanceRow
	var childArms [][]persistence.Arm
	var groups []byte
	if len(snap.Start) > 0 {
		g, err := s.startChildren(&children, &childArms, parentOf{id: id}, snap.Start, now)
		if err != nil {
			return Instance{}, false, &machine.ExpressionError{State: snap.State, Where: "children", Err: err}
		}
		groups = mustJSON(g)
	}
	ctxJSON, err := encodeContext(snap.Context)
	if err != nil {
		return Instance{}, false, err
	}
	createHash := requestHash(map[string]any{"definition": req.Definition, "id": req.ID, "context": orEmpty(req.Context)})
	inst := persistence.InstanceRow{ID: id, Definition: def.Name, Version: row.Version, State: snap.State, Context: ctxJSON,
		Final: def.Final(snap.State), CreateHash: createHash, CreatedAt: now, UpdatedAt: now, EnteredAt: now, Children: groups,
		Task: taskRow(snap.Task)}
	insert := func(ctx context.Context) error {
		return s.db.WithTx(ctx, func(tx *persistence.Tx) error {
			if err := persistence.InstanceInsert(ctx, tx, inst); err != nil {
				return err
			}
			if err := persistence.TimersReplace(ctx, tx, id, false, 0, arms(snap.Arm)); err != nil {
				return err
			}
			return persistence.ChildrenInsert(ctx, tx, children, childArms)
		})
	}
	err = insert(ctx)
	uncertain := errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err)
	if uncertain {
		// The COMMIT may have applied without its answer (outcome.go): inserting the same row again
		// on a new connection settles it, as the key is the id: a conflict with this request's own
		// row means it was created.
		err = s.retryUncertain(ctx, "instance", id, err, insert)
	}
	if errors.Is(err, persistence.ErrKeyExists) { // keys.go
		return Instance{}, false, s.keyConflict(ctx, err, append([]persistence.InstanceRow{inst}, children...))
	}
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
			return api, uncertain, nil // created by this request, when its own first try was lost
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
	if inst.Children, err = s.childrenOf(ctx, l); err != nil {
		return Instance{}, err
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

// ListChildren returns a page of the children an instance started (every group's, or f.Group's;
// of every entry of their states), in id order. NotFoundError when there is no instance id.
func (s *Service) ListChildren(ctx context.Context, id string, f InstanceFilter) (Page[Instance], error) {
	if _, err := persistence.InstanceGet(ctx, s.db, id); err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return Page[Instance]{}, &NotFoundError{What: "instance", Key: id}
		}
		return Page[Instance]{}, s.dbError(err)
	}
	f.Parent = id
	return s.ListInstances(ctx, f)
}

// ListInstances returns a page of instances in id order.
func (s *Service) ListInstances(ctx context.Context, f InstanceFilter) (Page[Instance], error) {
	now := s.now()                   // one time for every read of the page
	filters, err := s.findFilters(f) // find.go
	if err != nil {
		return Page[Instance]{}, err
	}
	page, err := readPage(pageSpec[persistence.InstanceRow, Instance]{
		limit: f.Limit,
		fetch: func(last *persistence.InstanceRow, n, maxBytes int) ([]persistence.InstanceRow, error) {
			after := f.After
			if last != nil {
				after = last.ID
			}
			n = ctxBatch(filters, f.Limit, n) // find.go
			p := persistence.InstanceListParams{Definition: f.Definition, State: f.State, Version: f.Version, Parent: f.Parent,
				Group: f.Group, Assignee: f.Assignee, Suspended: f.Suspended, After: after, Limit: n, MaxBytes: maxBytes,
				Ctx: filters}
			if f.Overdue {
				p.OverdueAt = now
			}
			return persistence.InstanceList(ctx, s.db, p)
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

// Explain says what an event would do now, changing nothing.
func (s *Service) Explain(ctx context.Context, id string, req SendEvent) (Explanation, error) {
	event, payload := req.Event, req.Payload
	l, err := s.instance(ctx, s.db, id)
	if err != nil {
		return Explanation{}, err
	}
	snap, err := snapshot(l.def, l.row)
	if err != nil {
		return Explanation{}, err
	}
	if len(l.def.Groups) > 0 { // what its expressions would see of its children
		stored, err := storedGroups(l.row)
		if err != nil {
			return Explanation{}, err
		}
		if snap.Children, err = s.family(ctx, l, event, stored, ""); err != nil {
			return Explanation{}, s.dbError(err)
		}
	}
	x := s.limits.ExplainAs(l.def, snap, req.actor(), event, payload, s.now())
	out := Explanation{Event: event, State: l.row.State, Branches: []BranchOutcome{}}
	for _, b := range x.Branches {
		o := BranchOutcome{To: b.To, Guard: b.Guard, Message: b.Message, Taken: b.Taken, Allowed: b.Allowed}
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
