package persistence

import (
	"context"
	"fmt"
	"time"
)

// The queries of the service's metrics (service.RefreshMetrics): counts the metrics serve from a
// snapshot refreshed in the background, never at a scrape.

// DefinitionStateCount is how many running instances a (definition, version, state) has.
type DefinitionStateCount struct {
	Definition string `db:"definition"`
	Version    int    `db:"version"`
	State      string `db:"state"`
	N          int64  `db:"n"`
}

// InstanceCountRunningAll returns the running instances (not in a final state) by definition,
// version and state; a triple without any is absent. It reads every running instance (on
// PostgreSQL through instances_definition_version_id_idx when the planner sees fit): a query for a
// background refresh, not for a request.
func InstanceCountRunningAll(ctx context.Context, ex Executor) ([]DefinitionStateCount, error) {
	var rows []DefinitionStateCount
	err := selectContext(ctx, ex, &rows, `SELECT definition, version, state, COUNT(*) AS n FROM instances
		WHERE NOT final GROUP BY definition, version, state ORDER BY definition, version, state`)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: count running instances by state: %w", err)))
	}
	return rows, nil
}

// TimersDueSummary is what TimerCountDue finds: how many timers a scheduler may take at a time,
// and the earliest due time among them (zero when there is none).
type TimersDueSummary struct {
	N      int64
	Oldest time.Time
}

// TimerCountDue counts the timers whose next_try_at has come at now (due and not yet fired, or
// put off after a failure and ready again), through timers_next_try_at_idx.
func TimerCountDue(ctx context.Context, ex Executor, now time.Time) (TimersDueSummary, error) {
	var row struct {
		N      int64  `db:"n"`
		Oldest dbTime `db:"oldest"`
	}
	err := getContext(ctx, ex, &row, `SELECT COUNT(*) AS n, MIN(due_at) AS oldest FROM timers WHERE next_try_at <= ?`,
		timeArg(ex.dialect(), now))
	if err != nil {
		return TimersDueSummary{}, translate(canceled(ctx, fmt.Errorf("persistence: count due timers: %w", err)))
	}
	return TimersDueSummary{N: row.N, Oldest: row.Oldest.Time()}, nil
}
