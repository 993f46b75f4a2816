package service_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/service"
)

// BenchmarkStats10M times DefinitionStats over a year's window of 10 million audit rows on
// PostgreSQL (FSMD_STATS_BENCH=1; FSMD_STATS_BENCH_ROWS sets another number of rows). The rows are
// loaded with generate_series, then rolled up as the migration's backfill does: what the service
// would have added as it took the events.
//
//	FSMD_STATS_BENCH=1 go test ./internal/service -run '^$' -bench Stats10M -benchtime 1x -timeout 30m
func BenchmarkStats10M(b *testing.B) {
	if os.Getenv("FSMD_STATS_BENCH") == "" {
		b.Skip("FSMD_STATS_BENCH is not set: loading 10 million rows takes minutes")
	}
	rows := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("FSMD_STATS_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	const perInstance = 10
	ctx := context.Background()
	db := dbtest.Postgres(b)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0.AddDate(1, 0, 1)
	svc := service.New(db, service.Options{Now: func() time.Time { return now }})
	def, diags := machine.Parse("order.yaml", []byte(`name: order
initial: s0
states:
  s0: {on: {e0: s1}}
  s1: {on: {e1: s2}}
  s2: {on: {e2: s3}}
  s3: {on: {e3: s4}}
  s4: {on: {e4: s0}}
`))
	if diags.Errors() > 0 {
		b.Fatal("the definition does not parse")
	}
	if err := svc.Register(ctx, &machine.Set{ByName: map[string]*machine.Definition{"order": def}}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	instances := rows / perInstance
	exec := func(query string, args ...any) {
		b.Helper()
		if _, err := db.X.ExecContext(ctx, query, args...); err != nil {
			b.Fatalf("%v\n%s", err, query)
		}
	}
	exec(`SET maintenance_work_mem = '256MB'`)
	// Instance i is created at t0 + i * (a year / instances), and goes at a pace x of its own (0.001 to
	// 1): its k-th transition, from s(k-1 mod 5) to s(k mod 5), is at x * (k h + 0 to 30 min), so its
	// stays last 0.5x to 1.5x h: 2 s to 1.5 h in all.
	exec(`INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
		SELECT 'i' || i, 'order', 1, 's' || ($2::int % 5), '{}', $2, false, '', c, c, c
		FROM generate_series(1, $1::int) i, LATERAL (SELECT $3::timestamptz + (i * (31536000.0 / $1)) * interval '1 second' AS c) x`,
		instances, perInstance, t0)
	exec(`INSERT INTO transitions (instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before,
			context_after, source, request_id, request_hash, definition_version, at)
		SELECT 'i' || i, k, 'e' || ((k - 1) % 5), 's' || ((k - 1) % 5), 's' || (k % 5), 0, '[]', '{}', '{}', '{}', 'api', 'r', '', 1,
			$3::timestamptz + (i * (31536000.0 / $1)) * interval '1 second'
				+ ((1 + (hashint4(i) & 1023)) / 1024.0) * (k * 3600 + (hashint4(i * 16 + k) & 1023) * 1800 / 1024.0) * interval '1 second'
		FROM generate_series(1, $1::int) i, generate_series(1, $2::int) k`,
		instances, perInstance, t0)
	b.Logf("loaded %d instances, %d audit rows in %v", instances, instances*perInstance, time.Since(start).Round(time.Second))
	start = time.Now()
	exec(`INSERT INTO transition_stats_hourly (definition, hour, from_state, to_state, event, duration_ms, count)
		SELECT definition, date_trunc('hour', at, 'UTC'), from_state, to_state, event, duration_ms, count(*) FROM (
			SELECT i.definition, t.at, t.from_state, t.to_state, t.event,
				fsmd_duration_bucket(floor(extract(epoch FROM t.at - COALESCE(
					lag(t.at) OVER (PARTITION BY t.instance_id ORDER BY t.seq), i.created_at)) * 1000)::bigint) AS duration_ms
			FROM transitions t JOIN instances i ON i.id = t.instance_id WHERE t.dropped IS NULL) s
		GROUP BY 1, 2, 3, 4, 5, 6`)
	exec(`INSERT INTO transition_stats_daily (definition, day, from_state, to_state, event, duration_ms, count)
		SELECT definition, date_trunc('day', hour, 'UTC'), from_state, to_state, event, duration_ms, sum(count)
		FROM transition_stats_hourly GROUP BY 1, 2, 3, 4, 5, 6`)
	exec(`VACUUM ANALYZE`)
	var hourly, daily int64
	_ = db.X.GetContext(ctx, &hourly, `SELECT count(*) FROM transition_stats_hourly`)
	_ = db.X.GetContext(ctx, &daily, `SELECT count(*) FROM transition_stats_daily`)
	b.Logf("rolled up in %v: %d hourly rows, %d daily rows", time.Since(start).Round(time.Second), hourly, daily)

	windows := []struct{ since, until time.Time }{
		{now.Add(-service.MaxStatsWindow), now},                                          // 366 days: the whole log
		{t0.Add(90*24*time.Hour + 7*time.Hour), t0.Add(300*24*time.Hour + 17*time.Hour)}, // ragged hours at both ends
		{now.Add(-24 * time.Hour), now},
	}
	for _, w := range windows {
		start := time.Now()
		st, err := svc.DefinitionStats(ctx, service.StatsRequest{Definition: "order", Since: w.since, Until: w.until})
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for _, tr := range st.Transitions {
			n += tr.Count
		}
		b.Logf("window %s to %s: %v, %d transitions, s0 median %v ms p95 %v ms", w.since.Format(time.RFC3339), w.until.Format(time.RFC3339),
			time.Since(start).Round(time.Millisecond), n, deref(st.States[0].MedianMS), deref(st.States[0].P95MS))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := windows[i%2]
		if _, err := svc.DefinitionStats(ctx, service.StatsRequest{Definition: "order", Since: w.since, Until: w.until}); err != nil {
			b.Fatal(err)
		}
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
