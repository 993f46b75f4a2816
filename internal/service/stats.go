package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Stats windows: the default is the last DefaultStatsWindow, the longest MaxStatsWindow.
const (
	DefaultStatsWindow = 24 * time.Hour
	MaxStatsWindow     = 366 * 24 * time.Hour
)

// StatsRequest asks for a definition's stats over a window; a zero Until is now, a zero Since is
// DefaultStatsWindow before Until.
type StatsRequest struct {
	Definition   string
	Since, Until time.Time
}

// Stats is what the audit log says of a definition's process over a window (every version): per
// state, per transition, per refused event.
type Stats struct {
	Definition string `json:"definition" validate:"required"`
	// Since and Until are the window counted, in whole hours (UTC): the window asked for, Since
	// rounded down to its hour and Until up.
	Since time.Time `json:"since" validate:"required" format:"date-time"`
	Until time.Time `json:"until" validate:"required" format:"date-time"`
	// States: every state of the latest version, in file order, then any other state the window
	// saw (of an older version), by name.
	States []StateStats `json:"states" validate:"required"`
	// Transitions: every (from, to, event) taken in the window, with its count, in that order.
	Transitions []TransitionStats `json:"transitions" validate:"required"`
	// Rejections: the events the engine refused in the window, by event, with the count per code.
	Rejections []EventRejections `json:"rejections" validate:"required"`
}

// StateStats is one state's stats.
type StateStats struct {
	State string `json:"state" validate:"required"`
	// Running is how many instances are in the state now, not final (whatever the window).
	Running int64 `json:"running" validate:"required"`
	// Overdue is how many of those are past the due date of the state's task now.
	Overdue int64 `json:"overdue" validate:"required"`
	// Entries: the transitions into the state in the window; Exits, those out of it.
	Entries int64 `json:"entries" validate:"required"`
	Exits   int64 `json:"exits" validate:"required"`
	// MedianMS and P95MS are the median and 95th percentile (nearest rank) of the time spent in the
	// state by the exits, in milliseconds to 2 significant digits; absent without exits.
	MedianMS *int64 `json:"median_ms,omitempty"`
	P95MS    *int64 `json:"p95_ms,omitempty"`
}

// TransitionStats is the number of transitions from a state to another by an event.
type TransitionStats struct {
	From  string `json:"from" validate:"required"`
	To    string `json:"to" validate:"required"`
	Event string `json:"event" validate:"required"`
	Count int64  `json:"count" validate:"required"`
}

// EventRejections is the number of times an event was refused, in all and by error code.
type EventRejections struct {
	Event  string           `json:"event" validate:"required"`
	Count  int64            `json:"count" validate:"required"`
	ByCode map[string]int64 `json:"by_code" validate:"required"`
}

// The times a stats window may name: none before the Unix epoch, none so late that the window's
// end, rounded up to its hour, would not be a time RFC 3339 can write (after the year 9999).
var (
	statsEarliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	statsLatest   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// ParseStatsTime reads a time of a stats window given as text (a query parameter, a flag), named
// name in errors ("query parameter since", "--since"): "" is none (the zero time, which
// StatsRequest takes as the default); any other value is an RFC 3339 time from statsEarliest to
// statsLatest, or a BadRequestError. The zero time itself (0001-01-01T00:00:00Z) is out of bounds,
// so that it is never taken silently for none.
func ParseStatsTime(name, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, &BadRequestError{fmt.Sprintf("%s must be a time in RFC 3339 (2026-01-02T15:04:05Z), got %q", name, value)}
	}
	if err := checkStatsTime(name, t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

func checkStatsTime(name string, t time.Time) error {
	if t.Before(statsEarliest) || t.After(statsLatest) {
		return &BadRequestError{fmt.Sprintf("%s must be from %s to %s, got %s", name, statsEarliest.Format(time.RFC3339),
			statsLatest.Format(time.RFC3339), t.Format(time.RFC3339Nano))}
	}
	return nil
}

// window checks and rounds a stats window: a zero Since or Until is its default, any other must
// be within statsEarliest and statsLatest.
func (s *Service) window(req StatsRequest) (since, until time.Time, err error) {
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"since", req.Since}, {"until", req.Until}} {
		if !t.t.IsZero() {
			if err := checkStatsTime(t.name, t.t); err != nil {
				return since, until, err
			}
		}
	}
	until = req.Until
	if until.IsZero() {
		until = s.now()
	}
	since = req.Since
	if since.IsZero() {
		since = until.Add(-DefaultStatsWindow)
	}
	switch {
	case !since.Before(until):
		return since, until, &BadRequestError{"the window is empty: since (" + since.UTC().Format(time.RFC3339) +
			") must be before until (" + until.UTC().Format(time.RFC3339) + ")"}
	case until.Sub(since) > MaxStatsWindow:
		return since, until, &BadRequestError{"the window is " + until.Sub(since).Round(time.Hour).String() +
			" long; the longest is 366 days"}
	}
	since = since.UTC().Truncate(time.Hour)
	if t := until.UTC().Truncate(time.Hour); t.Before(until) {
		until = t.Add(time.Hour)
	} else {
		until = t
	}
	return since, until, nil
}

// DefinitionStats returns the stats of a definition over a window, from the rollups of the audit
// log and the rejection counts.
func (s *Service) DefinitionStats(ctx context.Context, req StatsRequest) (Stats, error) {
	def, _, err := s.reg.get(req.Definition, 0)
	if err != nil {
		return Stats{}, err
	}
	since, until, err := s.window(req)
	if err != nil {
		return Stats{}, err
	}
	s.flushStats(ctx) // this process's counts first
	w := persistence.StatsWindow{Definition: def.Name, Since: since, Until: until}
	trs, err := persistence.StatsTransitions(ctx, s.db, w)
	if err != nil {
		return Stats{}, s.dbError(err)
	}
	rejs, err := persistence.StatsRejections(ctx, s.db, w)
	if err != nil {
		return Stats{}, s.dbError(err)
	}
	running, err := persistence.InstanceCountRunningByState(ctx, s.db, def.Name)
	if err != nil {
		return Stats{}, s.dbError(err)
	}
	overdue, err := persistence.InstanceCountOverdue(ctx, s.db, def.Name, s.now())
	if err != nil {
		return Stats{}, s.dbError(err)
	}
	return buildStats(def, since, until, trs, rejs, running, overdue), nil
}

// buildStats assembles the answer from the rows read.
func buildStats(def *machine.Definition, since, until time.Time, trs []persistence.TransitionStatsRow,
	rejs []persistence.RejectionStatsRow, running []persistence.StateCount, overdue []persistence.OverdueCount) Stats {
	out := Stats{Definition: def.Name, Since: since, Until: until,
		States: []StateStats{}, Transitions: []TransitionStats{}, Rejections: []EventRejections{}}
	states := map[string]*StateStats{}
	var extra []string
	state := func(name string) *StateStats {
		if st, ok := states[name]; ok {
			return st
		}
		st := &StateStats{State: name}
		states[name] = st
		if _, known := def.States[name]; !known {
			extra = append(extra, name)
		}
		return st
	}
	for _, name := range def.StateOrder {
		state(name)
	}
	for _, c := range running {
		state(c.State).Running += c.N
	}
	for _, c := range overdue {
		state(c.State).Overdue += c.N
	}
	// The rows come in (from, to, event, duration) order: a transition's rows are consecutive.
	durations := map[string][]persistence.TransitionStatsRow{}
	for _, r := range trs {
		if n := len(out.Transitions); n == 0 || out.Transitions[n-1].From != r.From || out.Transitions[n-1].To != r.To || out.Transitions[n-1].Event != r.Event {
			out.Transitions = append(out.Transitions, TransitionStats{From: r.From, To: r.To, Event: r.Event})
		}
		out.Transitions[len(out.Transitions)-1].Count += r.Count
		state(r.From).Exits += r.Count
		state(r.To).Entries += r.Count
		durations[r.From] = append(durations[r.From], r)
	}
	for name, ds := range durations {
		slices.SortFunc(ds, func(a, b persistence.TransitionStatsRow) int { return cmp.Compare(a.DurationMS, b.DurationMS) })
		st := states[name]
		st.MedianMS, st.P95MS = quantile(ds, st.Exits, 50), quantile(ds, st.Exits, 95)
	}
	slices.Sort(extra)
	for _, name := range append(slices.Clone(def.StateOrder), extra...) {
		out.States = append(out.States, *states[name])
	}
	for _, r := range rejs { // in (event, code) order
		if n := len(out.Rejections); n == 0 || out.Rejections[n-1].Event != r.Event {
			out.Rejections = append(out.Rejections, EventRejections{Event: r.Event, ByCode: map[string]int64{}})
		}
		e := &out.Rejections[len(out.Rejections)-1]
		e.Count += r.Count
		e.ByCode[r.Code] += r.Count
	}
	return out
}

// quantile is the pct-th percentile by nearest rank of the histogram ds (sorted by duration) of n
// values: the smallest duration with at least ceil(pct*n/100) values at or below it.
func quantile(ds []persistence.TransitionStatsRow, n int64, pct int64) *int64 {
	if n == 0 {
		return nil
	}
	rank := (pct*n + 99) / 100
	var seen int64
	for _, d := range ds {
		seen += d.Count
		if seen >= rank {
			v := d.DurationMS
			return &v
		}
	}
	v := ds[len(ds)-1].DurationMS
	return &v
}

// statsFlushEvery is how often the counts of a process are added to the database (by the event
// that finds them older, in a goroutine of their own; and before every stats answer, and by Close).
const statsFlushEvery = time.Second

// statsBuffer holds the counts of accepted transitions and refused events not yet added to the
// database. Counting in memory keeps the rollups' row locks out of the events' transactions: events
// on the same transition would otherwise wait for each other's commits. A crash loses at most the
// last second's counts: the stats are an approximation of the audit log, not a part of it.
type statsBuffer struct {
	mu       sync.Mutex
	trs      map[transitionKey]int64
	rejs     map[rejectionKey]int64
	last     time.Time // of the last flush, on the real clock
	flushing sync.Mutex
}

type transitionKey struct {
	def, from, to, event string
	hour                 time.Time
	ms                   int64
}

type rejectionKey struct {
	def, state, event, code string
	hour                    time.Time
}

// countTransition counts an accepted transition out of a state entered at entered, at now.
func (s *Service) countTransition(def, from, to, event string, entered, now time.Time) {
	k := transitionKey{def: def, from: from, to: to, event: event, hour: now.UTC().Truncate(time.Hour),
		ms: persistence.DurationBucket(now.Sub(entered).Milliseconds())}
	s.countStat(func(b *statsBuffer) {
		if b.trs == nil {
			b.trs = map[transitionKey]int64{}
		}
		b.trs[k]++
	})
}

// countStat adds to the buffered counts with add (under the buffer's lock), and starts a flush when
// one is due.
func (s *Service) countStat(add func(b *statsBuffer)) {
	b := &s.stats
	b.mu.Lock()
	add(b)
	due := b.due()
	b.mu.Unlock()
	if due {
		go s.flushStats(context.Background())
	}
}

// due tells whether a flush is due, and if so marks it begun (b.mu held).
func (b *statsBuffer) due() bool {
	now := time.Now()
	if b.last.IsZero() {
		b.last = now
	}
	if now.Sub(b.last) < statsFlushEvery {
		return false
	}
	b.last = now
	return true
}

// flushStats adds the counts held to the database; on failure they are kept for the next flush,
// and the failure is logged.
func (s *Service) flushStats(ctx context.Context) {
	b := &s.stats
	b.flushing.Lock()
	defer b.flushing.Unlock()
	b.mu.Lock()
	trs, rejs := b.trs, b.rejs
	b.trs, b.rejs = nil, nil
	b.mu.Unlock()
	if len(trs) == 0 && len(rejs) == 0 {
		return
	}
	var p persistence.StatsAddParams
	for k, n := range trs {
		p.Transitions = append(p.Transitions, persistence.TransitionCount{Definition: k.def, Hour: k.hour,
			From: k.from, To: k.to, Event: k.event, DurationMS: k.ms, Count: n})
	}
	for k, n := range rejs {
		p.Rejections = append(p.Rejections, persistence.RejectionCount{Definition: k.def, Hour: k.hour,
			State: k.state, Event: k.event, Code: k.code, Count: n})
	}
	err := s.db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.StatsAdd(ctx, tx, p) })
	if err == nil {
		return
	}
	s.log.Warn("could not add to the stats; kept for the next try", slog.Int("transitions", len(trs)),
		slog.Int("rejections", len(rejs)), slog.Any("error", err))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.trs == nil {
		b.trs = map[transitionKey]int64{}
	}
	if b.rejs == nil {
		b.rejs = map[rejectionKey]int64{}
	}
	for k, n := range trs {
		b.trs[k] += n
	}
	for k, n := range rejs {
		b.rejs[k] += n
	}
}

// closeStats adds the counts held to the database, trying for at most 5 s (Close).
func (s *Service) closeStats() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.flushStats(ctx)
}

// countRejection counts an event the engine refused (an EventError) in the rejections of its hour,
// in memory (see statsBuffer): a failure to add it to the database later is logged, and never fails
// a request.
func (s *Service) countRejection(req SendEvent, err error) {
	var ee *EventError
	if !errors.As(err, &ee) {
		return
	}
	code := code.Of(ee.Err)
	if code == "" {
		return
	}
	k := rejectionKey{def: ee.Instance.Definition, state: ee.Instance.State, event: req.Event, code: code,
		hour: s.now().UTC().Truncate(time.Hour)}
	s.countStat(func(b *statsBuffer) {
		if b.rejs == nil {
			b.rejs = map[rejectionKey]int64{}
		}
		b.rejs[k]++
	})
}
