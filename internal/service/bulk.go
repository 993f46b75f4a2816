package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Bulks (docs/operators.md, "Bulk"): one event, or one action (suspend, resume, terminate), for
// every running instance of a definition that matches a filter. The plan is a dry run: it decides
// the event on each instance as the event path would, and counts the outcomes. The run applies it
// in batches of instances in id order, each instance through the event path (or the operator's
// action) with the bulk's id as request id (and Idempotency-Key), and writes each batch's
// progress after its instances: a run resumed after a crash starts after the last batch written,
// and an instance of the batch it redoes is answered from its audit row, never sent the event twice.

// The actions a bulk may apply instead of an event.
const (
	BulkSuspend   = "suspend"
	BulkResume    = "resume"
	BulkTerminate = "terminate"
)

// BulkFilter selects the running instances of a bulk's definition.
type BulkFilter struct {
	State   string `json:"state,omitempty" maxLength:"200"`
	Version int    `json:"version,omitempty" minimum:"1"`
	// Ctx filters on context fields as GET /v1/instances's ctx. parameters do: a path, with [gt],
	// [gte], [lt] or [lte] for a range, and the value.
	Ctx map[string]any `json:"ctx,omitempty" swaggertype:"object"`
}

// BulkRequest is POST /v1/definitions/{name}/bulk and its plan: an event (and its payload) or an
// action, for the instances the filter selects.
type BulkRequest struct {
	Filter  BulkFilter     `json:"filter"`
	Event   string         `json:"event,omitempty" maxLength:"200"`
	Payload map[string]any `json:"payload,omitempty" extensions:"x-nullable"`
	Action  string         `json:"action,omitempty" enums:"suspend,resume,terminate"`
	Reason  string         `json:"reason,omitempty" maxLength:"1000"` // for the history; required with suspend and terminate
	// Set by the server.
	Definition string `json:"-"`
	Caller     Caller `json:"-"`
}

// BulkOutcome counts the instances of one state that one outcome had: the state the event took
// them to, or the code it was refused with.
type BulkOutcome struct {
	FromState string   `json:"from_state" validate:"required"`
	ToState   string   `json:"to_state,omitempty"`
	Code      string   `json:"code,omitempty"`
	Count     int64    `json:"count" validate:"required"`
	Sample    []string `json:"sample" validate:"required"` // the smallest ids, at most 5
}

// BulkPlan is what a bulk would do now.
type BulkPlan struct {
	Total    int64         `json:"total" validate:"required"`
	Outcomes []BulkOutcome `json:"outcomes" validate:"required"`
}

// Bulk is a bulk's state: POST /v1/definitions/{name}/bulk, GET /v1/bulk/{id}.
type Bulk struct {
	ID         string        `json:"id" validate:"required"`
	Definition string        `json:"definition" validate:"required"`
	Status     string        `json:"status" validate:"required" enums:"running,done,cancelled,failed"`
	Total      int64         `json:"total" validate:"required"` // the instances that matched when it started
	Applied    int64         `json:"applied" validate:"required"`
	Refused    int64         `json:"refused" validate:"required"`
	Outcomes   []BulkOutcome `json:"outcomes" validate:"required"`
	Request    BulkRequest   `json:"request" validate:"required"`
	Error      string        `json:"error,omitempty"` // failed: why
	CreatedAt  time.Time     `json:"created_at" validate:"required" format:"date-time"`
	UpdatedAt  time.Time     `json:"updated_at" validate:"required" format:"date-time"`
	FinishedAt *time.Time    `json:"finished_at,omitempty" format:"date-time"`
}

// BulkRunningError: the definition has a running bulk already.
type BulkRunningError struct{ Definition string }

func (e *BulkRunningError) Error() string {
	return fmt.Sprintf("a bulk of %s is running already: wait for it, or cancel it (POST /v1/bulk/{id}/cancel)", e.Definition)
}

// Code is the error code.
func (e *BulkRunningError) Code() string { return code.BulkRunning }

// bulkBatch is how many instances a batch of a run takes; bulkWorkers how many of them at once.
const (
	bulkBatch   = 1000
	bulkWorkers = 4
	bulkSample  = 5
)

// check validates req against its definition and types its filter.
func (s *Service) checkBulk(req BulkRequest) (*machine.Definition, persistence.InstanceListParams, error) {
	def, _, err := s.reg.get(req.Definition, 0)
	if err != nil {
		return nil, persistence.InstanceListParams{}, err
	}
	switch {
	case req.Event == "" && req.Action == "":
		return nil, persistence.InstanceListParams{}, &BadRequestError{"give event (and payload) or action (suspend, resume or terminate)"}
	case req.Event != "" && req.Action != "":
		return nil, persistence.InstanceListParams{}, &BadRequestError{"give event or action, not both"}
	case req.Action != "" && !slices.Contains([]string{BulkSuspend, BulkResume, BulkTerminate}, req.Action):
		return nil, persistence.InstanceListParams{}, &BadRequestError{fmt.Sprintf("action %q: the actions are suspend, resume and terminate", req.Action)}
	case req.Action != "" && len(req.Payload) > 0:
		return nil, persistence.InstanceListParams{}, &BadRequestError{"an action takes no payload"}
	case req.Event != "" && !def.KnownEvent(req.Event):
		return nil, persistence.InstanceListParams{}, &machine.UnknownEventError{Event: req.Event}
	case req.Filter.Version < 0:
		return nil, persistence.InstanceListParams{}, &BadRequestError{"filter.version: versions are 1 or more"}
	}
	if err := checkReason(req.Reason, req.Action == BulkSuspend || req.Action == BulkTerminate); err != nil {
		return nil, persistence.InstanceListParams{}, err
	}
	if req.Filter.State != "" {
		if err := ident.Check("filter.state", req.Filter.State); err != nil {
			return nil, persistence.InstanceListParams{}, &BadRequestError{err.Error()}
		}
	}
	conds := make([]CtxCondition, 0, len(req.Filter.Ctx))
	for _, key := range slices.Sorted(maps.Keys(req.Filter.Ctx)) {
		path, op, _ := strings.Cut(strings.TrimSuffix(key, "]"), "[")
		var value string
		switch v := req.Filter.Ctx[key].(type) {
		case string:
			value = v
		case json.Number: // the server decodes numbers exactly
			value = v.String()
		case float64:
			value = strconv.FormatFloat(v, 'f', -1, 64) // 1000000, not 1e+06
		case bool:
			value = strconv.FormatBool(v)
		default:
			return nil, persistence.InstanceListParams{}, &BadRequestError{fmt.Sprintf("filter.ctx.%s: want a string, a number or a boolean", key)}
		}
		conds = append(conds, CtxCondition{Param: "filter.ctx." + key, Path: path, Op: op, Value: value})
	}
	filters, err := ctxFilters(def, conds)
	if err != nil {
		return nil, persistence.InstanceListParams{}, err
	}
	return def, persistence.InstanceListParams{Definition: def.Name, State: req.Filter.State, Version: req.Filter.Version,
		Ctx: filters, Running: true}, nil
}

// outcomeKey is one row of a bulk's outcomes.
type outcomeKey struct{ from, to, code string }

// bulkTally counts a bulk's outcomes.
type bulkTally struct {
	mu      sync.Mutex
	byKey   map[outcomeKey]*BulkOutcome
	applied int64
	refused int64
}

func newBulkTally(outcomes []BulkOutcome) *bulkTally {
	t := &bulkTally{byKey: map[outcomeKey]*BulkOutcome{}}
	for _, o := range outcomes {
		o := o
		t.byKey[outcomeKey{o.FromState, o.ToState, o.Code}] = &o
	}
	return t
}

func (t *bulkTally) add(id string, k outcomeKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.byKey[k]
	if o == nil {
		o = &BulkOutcome{FromState: k.from, ToState: k.to, Code: k.code, Sample: []string{}}
		t.byKey[k] = o
	}
	o.Count++
	// The smallest ids, whatever order the workers add them in: a plan and its run show the same.
	if i, _ := slices.BinarySearch(o.Sample, id); i < bulkSample {
		o.Sample = slices.Insert(o.Sample, i, id)
		o.Sample = o.Sample[:min(len(o.Sample), bulkSample)]
	}
	if k.code == "" {
		t.applied++
	} else {
		t.refused++
	}
}

// list is the outcomes by from state, then to state, then code.
func (t *bulkTally) list() []BulkOutcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]BulkOutcome, 0, len(t.byKey))
	for _, o := range t.byKey {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b BulkOutcome) int {
		return cmp.Or(strings.Compare(a.FromState, b.FromState), strings.Compare(a.ToState, b.ToState), strings.Compare(a.Code, b.Code))
	})
	return out
}

// PlanBulk is the dry run of req: the matching running instances, each decided as the run would
// (the event through the engine, guards and payload included, as its caller; an action by the
// instance's flags), counted by outcome. It writes nothing.
func (s *Service) PlanBulk(ctx context.Context, req BulkRequest) (BulkPlan, error) {
	_, params, err := s.checkBulk(req)
	if err != nil {
		return BulkPlan{}, err
	}
	t := newBulkTally(nil)
	var total int64
	now := s.now()
	params.Limit = 1000
	for {
		rows, err := persistence.InstanceList(ctx, s.db, params)
		if err != nil {
			return BulkPlan{}, s.dbError(err)
		}
		if len(rows) > 0 {
			params.After = rows[len(rows)-1].ID // before round shuffles them
		}
		err = round(rows, bulkWorkers, func(row persistence.InstanceRow) error {
			k, err := s.planOne(ctx, row, req, now)
			if err == nil {
				t.add(row.ID, k)
			}
			return err
		})
		if err != nil {
			return BulkPlan{}, s.dbError(err)
		}
		total += int64(len(rows))
		if len(rows) < params.Limit {
			break
		}
	}
	return BulkPlan{Total: total, Outcomes: t.list()}, nil
}

// planOne is what req would do to the instance row.
func (s *Service) planOne(ctx context.Context, row persistence.InstanceRow, req BulkRequest, now time.Time) (outcomeKey, error) {
	k := outcomeKey{from: row.State}
	switch req.Action {
	case BulkSuspend:
		if row.Suspended {
			k.code = code.InstanceSuspended
		}
	case BulkResume:
		if !row.Suspended {
			k.code = notSuspended
		}
	case BulkTerminate:
	default:
		l, err := s.load(row, row.ID, nil)
		if err != nil {
			return k, err
		}
		d := s.decide(ctx, l, bulkEvent(req, row.ID, ""), now)
		if d.err != nil {
			if k.code = code.Of(d.err); k.code == "" {
				return k, d.err
			}
			return k, nil
		}
		k.to = d.transition.To
		return k, nil
	}
	if k.code == "" {
		k.to = row.State
	}
	return k, nil
}

// notSuspended is the outcome of resume for an instance that is not suspended.
const notSuspended = "not_suspended"

// bulkEvent is the event a bulk sends to the instance id.
func bulkEvent(req BulkRequest, id, bulkID string) SendEvent {
	ev := SendEvent{InstanceID: id, Event: req.Event, Payload: req.Payload, Actor: req.Caller.Name, Groups: req.Caller.Groups,
		RequestID: bulkID, source: audit.SourceBulk}
	if bulkID != "" {
		ev.IdempotencyKey = "bulk " + bulkID
	}
	return ev
}

// StartBulk starts running req: its id, status running and total. A definition runs one bulk
// at a time (BulkRunningError). RunBulks runs it; a process that ends before it is done leaves it
// to the next RunBulks of any process.
func (s *Service) StartBulk(ctx context.Context, req BulkRequest) (Bulk, error) {
	def, params, err := s.checkBulk(req)
	if err != nil {
		return Bulk{}, err
	}
	total, err := persistence.InstanceCount(ctx, s.db, params)
	if err != nil {
		return Bulk{}, s.dbError(err)
	}
	now := s.now()
	body, err := json.Marshal(req)
	if err != nil {
		return Bulk{}, err
	}
	row := persistence.BulkRow{ID: ident.New(now), Definition: def.Name, Request: body, Total: total, Actor: req.Caller.Name}
	row.CreatedAt, row.UpdatedAt = now, now
	// Inserting the same row again settles a statement whose answer was lost (outcome.go).
	err = s.settled(ctx, "bulk", row.ID, func(ctx context.Context) error { return persistence.BulkInsert(ctx, s.db, row) })
	if errors.Is(err, persistence.ErrConflict) {
		// A conflict with a bulk of this (new) id is this one: its statement sent again, by
		// database/sql on a new connection after a broken one, or above.
		if _, gerr := persistence.BulkGet(ctx, s.db, row.ID); gerr == nil {
			err = nil
		}
	}
	if err != nil {
		if errors.Is(err, persistence.ErrConflict) {
			return Bulk{}, &BulkRunningError{Definition: def.Name}
		}
		return Bulk{}, s.dbError(err)
	}
	s.bulkWake.signal()
	row.Status = "running"
	return bulkOf(row)
}

// GetBulk returns a bulk.
func (s *Service) GetBulk(ctx context.Context, id string) (Bulk, error) {
	row, err := persistence.BulkGet(ctx, s.db, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return Bulk{}, &NotFoundError{What: "bulk", Key: id}
	}
	if err != nil {
		return Bulk{}, s.dbError(err)
	}
	return bulkOf(row)
}

// ListBulks returns a page of a definition's bulks, newest first: the running one, if any, and
// those that ended.
func (s *Service) ListBulks(ctx context.Context, name, after string, limit int) (Page[Bulk], error) {
	if len(s.reg.all(name)) == 0 {
		return Page[Bulk]{}, &NotFoundError{What: "definition", Key: name}
	}
	page, err := readPage(pageSpec[persistence.BulkRow, Bulk]{
		limit: limit,
		fetch: func(last *persistence.BulkRow, n, maxBytes int) ([]persistence.BulkRow, error) {
			if last != nil {
				after = last.ID
			}
			return persistence.BulkList(ctx, s.db, persistence.BulkListParams{Definition: name, After: after, Limit: n, MaxBytes: maxBytes})
		},
		size: persistence.BulkRow.Bytes,
		item: bulkOf,
		key:  func(b Bulk) string { return b.ID },
	})
	return page, s.dbError(err)
}

// CancelBulk stops a running bulk after the batch it is doing: the instances done stay done. A
// bulk that is not running is answered as it is.
func (s *Service) CancelBulk(ctx context.Context, id string) (Bulk, error) {
	if _, err := s.GetBulk(ctx, id); err != nil {
		return Bulk{}, err
	}
	// It applies only to a running bulk: sent again after its answer was lost (outcome.go), it
	// settles, and the bulk is answered as it then is.
	err := s.settled(ctx, "bulk", id, func(ctx context.Context) error {
		_, err := persistence.BulkFinish(ctx, s.db, id, "cancelled", "", s.now())
		return err
	})
	if err != nil {
		return Bulk{}, s.dbError(err)
	}
	return s.GetBulk(ctx, id)
}

func bulkOf(row persistence.BulkRow) (Bulk, error) {
	b := Bulk{ID: row.ID, Definition: row.Definition, Status: row.Status, Total: row.Total, Applied: row.Applied, Refused: row.Refused,
		Error: row.Error, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt, Outcomes: []BulkOutcome{}}
	if !row.FinishedAt.IsZero() {
		at := row.FinishedAt
		b.FinishedAt = &at
	}
	if err := json.Unmarshal(row.Request, &b.Request); err != nil {
		return Bulk{}, fmt.Errorf("bulk %s: its stored request is corrupt: %w", row.ID, err)
	}
	b.Request.Definition = row.Definition
	if len(row.Outcomes) > 0 {
		if err := json.Unmarshal(row.Outcomes, &b.Outcomes); err != nil {
			return Bulk{}, fmt.Errorf("bulk %s: its stored outcomes are corrupt: %w", row.ID, err)
		}
	}
	return b, nil
}

// RunBulks runs the running bulks until ctx ends: every fsmd process runs one, and a bulk left
// running by a process that ended is taken up by the others. A round does one batch of each
// running bulk; a round that did any is followed by another at once, else by a pause of poll.
func (s *Service) RunBulks(ctx context.Context, poll time.Duration) {
	if poll <= 0 {
		poll = time.Second
	}
	s.poll(ctx, "running bulks", poll, time.Minute, 1, s.bulkWake.ch(), s.BulkRound)
}

// BulkRound does the next batch of each running bulk: it returns how many batches it did.
func (s *Service) BulkRound(ctx context.Context) (int, error) {
	bulks, err := persistence.BulksRunning(ctx, s.db)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, row := range bulks {
		did, err := s.bulkBatch(ctx, row)
		if err != nil {
			return done, err
		}
		if did {
			done++
		}
	}
	return done, nil
}

// bulkBatch does the batch of instances after the bulk's cursor and records it; at the end of the
// instances, it ends the bulk (done). It reports whether it did anything.
func (s *Service) bulkBatch(ctx context.Context, row persistence.BulkRow) (bool, error) {
	b, err := bulkOf(row)
	if err != nil {
		_, ferr := persistence.BulkFinish(ctx, s.db, row.ID, "failed", err.Error(), s.now())
		return false, ferr
	}
	req := b.Request
	req.Caller = Caller{Name: row.Actor, Admin: true, Write: true}
	_, params, err := s.checkBulk(req)
	if err != nil { // the definition changed under it (a ctx filter on a field it no longer has)
		_, ferr := persistence.BulkFinish(ctx, s.db, row.ID, "failed", err.Error(), s.now())
		return false, ferr
	}
	params.After, params.Limit = row.Cursor, bulkBatch
	if row.Pending != "" {
		// A batch done again after a crash: its instances that match no more because the bulk
		// moved them are taken too (they have its row), and answered from their rows.
		params.TouchedBy, params.UpTo = row.ID, row.Pending
	}
	rows, err := persistence.InstanceList(ctx, s.db, params)
	if err != nil {
		return false, err
	}
	if len(rows) == 0 {
		_, err := persistence.BulkFinish(ctx, s.db, row.ID, "done", "", s.now())
		return true, err
	}
	if row.Pending == "" {
		if ok, err := persistence.BulkMark(ctx, s.db, row.ID, row.Cursor, rows[len(rows)-1].ID); err != nil || !ok {
			return false, err // cancelled, or another process is at it
		}
	}
	last := rows[len(rows)-1].ID // before round shuffles them
	// The instances of a batch done again after a crash that have a row of the bulk: one query for
	// the batch, and they are counted from their rows, never sent the event again.
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	done, err := persistence.TransitionsWithRequestID(ctx, s.db, row.ID, ids)
	if err != nil {
		return false, err
	}
	t := newBulkTally(b.Outcomes)
	applied0, refused0 := t.applied, t.refused
	slow := rows
	if req.Event != "" {
		if slow, err = s.bulkFast(ctx, rows, done, req, row.ID, t); err != nil {
			s.log.Warn("a bulk's batch failed; trying again", slog.String("bulk", row.ID), slog.Any("error", err))
			return false, nil
		}
	}
	err = round(slow, bulkWorkers, func(inst persistence.InstanceRow) error {
		k, err := s.applyOne(ctx, inst, done, req, row.ID)
		if err == nil {
			t.add(inst.ID, k)
		}
		return err
	})
	if err != nil {
		s.log.Warn("a bulk's batch failed; trying again", slog.String("bulk", row.ID), slog.Any("error", err))
		return false, nil // the batch is done again by the next round: its instances done are answered from their rows
	}
	outcomes, _ := json.Marshal(t.list())
	_, err = persistence.BulkAdvance(ctx, s.db, persistence.BulkProgress{ID: row.ID, From: row.Cursor, To: last,
		Applied: t.applied - applied0, Refused: t.refused - refused0, Outcomes: outcomes, At: s.now()})
	return true, err
}

// bulkFast applies a bulk's event to the instances of a batch whose transition is plain (no
// webhook, message, child or exit: the engine's decision and its audit row are all it writes) in
// one transaction of a few set-based statements (persistence.AdvanceBatch), and counts the
// refusals (which write nothing, as the event path's do): the run's speed is then the database's
// set-based writes, not a round trip per instance. It returns the instances left to the event
// path: those with other effects, and all of them when the batch's write finds one that moved
// meanwhile (an API event came first), so that each is decided again on its own. The instances
// done already (done: their row of the bulk) are counted from it.
func (s *Service) bulkFast(ctx context.Context, rows []persistence.InstanceRow, done map[string]persistence.TransitionRow, req BulkRequest,
	id string, t *bulkTally) ([]persistence.InstanceRow, error) {
	hash := requestHash(map[string]any{"event": req.Event, "payload": orEmpty(req.Payload)})
	now := s.now()
	type fast struct {
		l    loaded
		m    *move
		key  outcomeKey
		item persistence.Advance
		next persistence.InstanceRow
	}
	decided := make([]*fast, len(rows))
	var mu sync.Mutex
	var slow []persistence.InstanceRow
	index := make(map[string]int, len(rows))
	for i, r := range rows {
		index[r.ID] = i
	}
	err := round(slices.Clone(rows), bulkWorkers, func(inst persistence.InstanceRow) error {
		if prev, ok := done[inst.ID]; ok {
			decided[index[inst.ID]] = &fast{key: outcomeKey{from: prev.From, to: prev.To}}
			return nil
		}
		l, err := s.load(inst, inst.ID, nil)
		if err != nil {
			return err
		}
		ev := bulkEvent(req, inst.ID, id)
		d := s.decide(ctx, l, ev, now)
		switch {
		case d.err != nil && code.Of(d.err) != "":
			decided[index[inst.ID]] = &fast{key: outcomeKey{from: inst.State, code: code.Of(d.err)}}
			return nil
		case d.err != nil:
			return d.err
		}
		m := d.transition
		if len(m.Sent) > 0 || len(m.Start) > 0 || len(m.Exit) > 0 || m.groups != nil || len(l.def.Notify) > 0 {
			mu.Lock()
			slow = append(slow, inst)
			mu.Unlock()
			return nil
		}
		r, next, err := prepare(l, m, ev, hash, now)
		if err != nil {
			return err
		}
		decided[index[inst.ID]] = &fast{l: l, m: m, key: outcomeKey{from: m.From, to: m.To},
			item: persistence.Advance{Update: updateOf(l, m, next, now), Row: r}, next: next}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var items []persistence.Advance
	for _, f := range decided {
		if f != nil && f.m != nil {
			items = append(items, f.item)
		}
	}
	err = s.db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.AdvanceBatch(ctx, tx, items) })
	if errors.Is(err, persistence.ErrConflict) || errors.Is(err, persistence.ErrKeyExists) {
		return rows, nil // one moved, or a key is taken: each on its own, through the event path
	}
	if err != nil {
		return nil, err
	}
	for i, f := range decided {
		if f == nil { // left to the event path
			continue
		}
		if f.m != nil { // written: as write does once it commits
			s.cache.drop(f.next.ID)
			s.countTransition(f.l.row.Definition, f.m.From, f.m.To, f.m.Event, f.l.row.EnteredAt, now)
		}
		t.add(rows[i].ID, f.key)
	}
	return slow, nil
}

// applyOne applies req to one instance as the bulk id: the event through the event path, or the
// action; an instance that has a row of this bulk already (done: a batch done again after a
// crash) is counted from it, not sent the event again.
func (s *Service) applyOne(ctx context.Context, inst persistence.InstanceRow, done map[string]persistence.TransitionRow, req BulkRequest,
	id string) (outcomeKey, error) {
	if prev, ok := done[inst.ID]; ok {
		return outcomeKey{from: prev.From, to: prev.To}, nil
	}
	k := outcomeKey{from: inst.State}
	if req.Action != "" {
		ar := AdminRequest{Reason: req.Reason, InstanceID: inst.ID, Caller: req.Caller, RequestID: id, source: audit.SourceBulk}
		var err error
		var out Instance
		switch req.Action {
		case BulkSuspend:
			if inst.Suspended {
				k.code = code.InstanceSuspended
				return k, nil
			}
			out, err = s.Suspend(ctx, ar)
		case BulkResume:
			if !inst.Suspended {
				k.code = notSuspended
				return k, nil
			}
			out, err = s.Resume(ctx, ar)
		case BulkTerminate:
			out, err = s.Terminate(ctx, ar)
		}
		if err != nil {
			if k.code = code.Of(err); k.code == "" || k.code == code.Unavailable {
				return k, err
			}
			return k, nil
		}
		k.to = out.State
		return k, nil
	}
	res, _, err := s.SendEvent(ctx, bulkEvent(req, inst.ID, id))
	if err != nil {
		if k.code = code.Of(err); k.code == "" || k.code == code.Unavailable || k.code == code.OutcomeUnknown {
			return k, err
		}
		return k, nil
	}
	k.from, k.to = res.Transition.From, res.Transition.To
	return k, nil
}
