package persistence

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The stats of the audit log (migrations 007_stats.sql): the transitions rolled up by hour and by
// day, the refused events (which have no audit row) by hour. The service counts them in memory and
// adds its counts with StatsAdd about every second.

// TransitionCount is a number of transitions of a definition in an hour, by from, to, event and
// duration (the time spent in From, in ms, to 2 significant digits: DurationBucket).
type TransitionCount struct {
	Definition        string
	Hour              time.Time // whole, UTC
	From, To, Event   string
	DurationMS, Count int64
}

// RejectionCount is a number of events a definition's instances in State refused in an hour, by
// event and engine error code (guard_rejected, unknown_event, ...).
type RejectionCount struct {
	Definition         string
	Hour               time.Time // whole, UTC
	State, Event, Code string
	Count              int64
}

// StatsAddParams are counts to add, each key at most once in its slice.
type StatsAddParams struct {
	Transitions []TransitionCount
	Rejections  []RejectionCount
}

// DurationBucket is a duration in milliseconds kept to 2 significant digits (exact under 100 ms;
// 1234 is 1200), as the rollups keep it; a negative duration is 0.
func DurationBucket(ms int64) int64 {
	if ms < 0 {
		return 0
	}
	p := int64(1)
	for v := ms; v >= 100; v /= 10 {
		p *= 10
	}
	return ms / p * p
}

// StatsAdd adds counts to the rollups (a transition count to its hour's row and its day's) and the
// rejections, one upsert per row, in key order (two processes adding at once lock their rows in
// the same order: no deadlock).
func StatsAdd(ctx context.Context, tx *Tx, p StatsAddParams) error {
	d := tx.Dialect
	trs := slices.Clone(p.Transitions)
	slices.SortFunc(trs, func(a, b TransitionCount) int {
		return cmp.Or(strings.Compare(a.Definition, b.Definition), a.Hour.Compare(b.Hour), strings.Compare(a.From, b.From),
			strings.Compare(a.To, b.To), strings.Compare(a.Event, b.Event), cmp.Compare(a.DurationMS, b.DurationMS))
	})
	type dayKey struct {
		def, from, to, event string
		day                  time.Time
		ms                   int64
	}
	days := map[dayKey]int64{}
	var dayOrder []dayKey
	for _, c := range trs {
		hour := c.Hour.UTC().Truncate(time.Hour)
		if _, err := execContext(ctx, tx, `
			INSERT INTO transition_stats_hourly AS s (definition, hour, from_state, to_state, event, duration_ms, count)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (definition, hour, from_state, to_state, event, duration_ms) DO UPDATE SET count = s.count + excluded.count`,
			c.Definition, timeArg(d, hour), c.From, c.To, c.Event, c.DurationMS, c.Count); err != nil {
			return translate(fmt.Errorf("persistence: add to the hourly transition stats of %q: %w", c.Definition, err))
		}
		k := dayKey{c.Definition, c.From, c.To, c.Event, hour.Truncate(24 * time.Hour), c.DurationMS}
		if _, ok := days[k]; !ok {
			dayOrder = append(dayOrder, k)
		}
		days[k] += c.Count
	}
	slices.SortFunc(dayOrder, func(a, b dayKey) int {
		return cmp.Or(strings.Compare(a.def, b.def), a.day.Compare(b.day), strings.Compare(a.from, b.from),
			strings.Compare(a.to, b.to), strings.Compare(a.event, b.event), cmp.Compare(a.ms, b.ms))
	})
	for _, k := range dayOrder {
		if _, err := execContext(ctx, tx, `
			INSERT INTO transition_stats_daily AS s (definition, day, from_state, to_state, event, duration_ms, count)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (definition, day, from_state, to_state, event, duration_ms) DO UPDATE SET count = s.count + excluded.count`,
			k.def, timeArg(d, k.day), k.from, k.to, k.event, k.ms, days[k]); err != nil {
			return translate(fmt.Errorf("persistence: add to the daily transition stats of %q: %w", k.def, err))
		}
	}
	rejs := slices.Clone(p.Rejections)
	slices.SortFunc(rejs, func(a, b RejectionCount) int {
		return cmp.Or(strings.Compare(a.Definition, b.Definition), a.Hour.Compare(b.Hour), strings.Compare(a.State, b.State),
			strings.Compare(a.Event, b.Event), strings.Compare(a.Code, b.Code))
	})
	for _, r := range rejs {
		if _, err := execContext(ctx, tx, `
			INSERT INTO rejections AS r (definition, hour, state, event, code, count)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (definition, hour, state, event, code) DO UPDATE SET count = r.count + excluded.count`,
			r.Definition, timeArg(d, r.Hour.UTC().Truncate(time.Hour)), r.State, r.Event, r.Code, r.Count); err != nil {
			return translate(fmt.Errorf("persistence: count the rejections of %q by definition %q: %w", r.Event, r.Definition, err))
		}
	}
	return nil
}

// StatsWindow is the window of a definition's stats: the hours from Since to Until (both whole
// hours, UTC; Until excluded).
type StatsWindow struct {
	Definition   string
	Since, Until time.Time
}

// TransitionStatsRow is the number of a definition's transitions in a window from one state to
// another by an event, after DurationMS in From (milliseconds to 2 significant digits).
type TransitionStatsRow struct {
	From       string `db:"from_state"`
	To         string `db:"to_state"`
	Event      string `db:"event"`
	DurationMS int64  `db:"duration_ms"`
	Count      int64  `db:"n"`
}

// StatsTransitions returns the rollup of a definition's transitions in a window, by from, to, event
// and duration. The whole days of the window are read from the daily rollup, the hours before and
// after them from the hourly one: a window of a year reads about 365 days' rows and 46 hours'.
func StatsTransitions(ctx context.Context, ex Executor, w StatsWindow) ([]TransitionStatsRow, error) {
	d := ex.dialect()
	since, until := w.Since.UTC().Truncate(time.Hour), w.Until.UTC().Truncate(time.Hour)
	dayStart, dayEnd := since.Truncate(24*time.Hour), until.Truncate(24*time.Hour)
	if dayStart.Before(since) {
		dayStart = dayStart.Add(24 * time.Hour)
	}
	if !dayStart.Before(dayEnd) { // no whole day: the hours only
		dayStart, dayEnd = until, until
	}
	var rows []TransitionStatsRow
	err := selectContext(ctx, ex, &rows, `
		SELECT from_state, to_state, event, duration_ms, SUM(n) AS n FROM (
			SELECT from_state, to_state, event, duration_ms, count AS n FROM transition_stats_daily
			WHERE definition = ? AND day >= ? AND day < ?
			UNION ALL
			SELECT from_state, to_state, event, duration_ms, count AS n FROM transition_stats_hourly
			WHERE definition = ? AND hour >= ? AND hour < ?
			UNION ALL
			SELECT from_state, to_state, event, duration_ms, count AS n FROM transition_stats_hourly
			WHERE definition = ? AND hour >= ? AND hour < ?
		) w
		GROUP BY from_state, to_state, event, duration_ms
		ORDER BY from_state, to_state, event, duration_ms`,
		w.Definition, timeArg(d, dayStart), timeArg(d, dayEnd),
		w.Definition, timeArg(d, since), timeArg(d, dayStart),
		w.Definition, timeArg(d, dayEnd), timeArg(d, until))
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: stats of the transitions of definition %q: %w", w.Definition, err))
	}
	return rows, nil
}

// RejectionStatsRow is the number of a definition's events refused in a window, by state, event and
// code.
type RejectionStatsRow struct {
	State string `db:"state"`
	Event string `db:"event"`
	Code  string `db:"code"`
	Count int64  `db:"n"`
}

// StatsRejections returns the counts of a definition's refused events in a window.
func StatsRejections(ctx context.Context, ex Executor, w StatsWindow) ([]RejectionStatsRow, error) {
	d := ex.dialect()
	var rows []RejectionStatsRow
	err := selectContext(ctx, ex, &rows, `
		SELECT state, event, code, SUM(count) AS n FROM rejections
		WHERE definition = ? AND hour >= ? AND hour < ?
		GROUP BY state, event, code
		ORDER BY event, code, state`,
		w.Definition, timeArg(d, w.Since.UTC().Truncate(time.Hour)), timeArg(d, w.Until.UTC().Truncate(time.Hour)))
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: stats of the rejections of definition %q: %w", w.Definition, err))
	}
	return rows, nil
}
