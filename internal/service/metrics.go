package service

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// DefaultMetricsRefresh is how often RunMetrics refreshes the counts the metrics serve when it is
// given no period.
const DefaultMetricsRefresh = 10 * time.Second

// The service's metrics: what /metrics shows besides the server's events and the outbox
// dispatcher's deliveries.
//
// The counts of the database (instances by definition, version and state; due timers; outbox rows
// by status; the running migrations' progress) come from a snapshot that RefreshMetrics takes with a
// few aggregate queries, and that RunMetrics refreshes in the background every period (10 s by
// default). A scrape only reads the snapshot: it never queries the database, however many
// instances there are, and what it shows is at most one period (plus one refresh) old;
// fsmd_metrics_refreshed_timestamp_seconds tells when it was taken. Counting in the background
// rather than keeping the counts incrementally keeps the event path free of any bookkeeping and
// the counts right whoever writes (other processes, migrations, `fsmd` commands, a restore): one
// GROUP BY over the running instances every 10 s is cheap next to the events that made them.
//
// The timer lag is observed as timers fire (after their transaction commits), in the process
// that fires them.
type serviceMetrics struct {
	timerLag         *prometheus.HistogramVec
	retentionDeleted *prometheus.CounterVec // retention.go

	mu   sync.RWMutex
	snap metricsSnapshot
}

// metricsSnapshot is what RefreshMetrics read, all at one time.
type metricsSnapshot struct {
	at         time.Time // zero until the first refresh
	took       time.Duration
	instances  []persistence.DefinitionStateCount
	overdue    []persistence.OverdueCount
	timers     persistence.TimersDueSummary
	outbox     persistence.OutboxCounts
	migrations []persistence.MigrationRow
}

var (
	descInstances = prometheus.NewDesc("fsmd_instances",
		"Running instances (not in a final state) by definition, version and state, as of the last refresh.",
		[]string{"definition", "version", "state"}, nil)
	descOverdue = prometheus.NewDesc("fsmd_instances_overdue",
		"Running instances past the due date of their state's task, by definition and state, as of the last refresh.",
		[]string{"definition", "state"}, nil)
	descTimersDue = prometheus.NewDesc("fsmd_timers_due",
		"Timers whose time has come but that have not fired yet (due, or ready again after a failure), as of the last refresh.",
		nil, nil)
	descTimersOldest = prometheus.NewDesc("fsmd_timers_due_oldest_seconds",
		"How long the earliest of those timers has been due, at the last refresh; 0 when none is.",
		nil, nil)
	descOutbox = prometheus.NewDesc("fsmd_outbox_rows",
		"Outbox rows by status, as of the last refresh: pending (to deliver), waiting (behind an earlier delivery of their instance and webhook), dead (dead letters).",
		[]string{"status"}, nil)
	descMigration = prometheus.NewDesc("fsmd_migration_instances",
		"Progress of each running migration, as of the last refresh: progress total (instances it selected), migrated, stranded.",
		[]string{"definition", "migration", "to_version", "progress"}, nil)
	descRefreshed = prometheus.NewDesc("fsmd_metrics_refreshed_timestamp_seconds",
		"When the counts of fsmd_instances, fsmd_instances_overdue, fsmd_timers_due, fsmd_outbox_rows and fsmd_migration_instances were last read (Unix time); absent until the first refresh.",
		nil, nil)
	descRefreshTook = prometheus.NewDesc("fsmd_metrics_refresh_duration_seconds",
		"How long the last refresh of those counts took.",
		nil, nil)
)

// RegisterMetrics registers the service's metrics with reg (the registry /metrics serves): the
// counts of the snapshot RunMetrics refreshes, the timer lag, the group commit's sizes (when it is
// on), and the database pool's statistics.
// Call it once per service, before RunTimers, so that the first timers are observed.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	m := &serviceMetrics{
		timerLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fsmd_timer_lag_seconds",
			Help:    "How late timers fired: the time of firing less the time they were due, by definition.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"definition"}),
		retentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsmd_retention_deleted_total",
			Help: "Final instances deleted by this process's retention job (with their history, timers, deliveries and messages), by definition.",
		}, []string{"definition"}),
	}
	cs := []prometheus.Collector{m.timerLag, m.retentionDeleted, m, collectors.NewDBStatsCollector(s.db.X.DB, "fsmd")}
	if s.group != nil {
		cs = append(cs, s.group.sizes)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	s.metrics.Store(m)
	return nil
}

// RunMetrics refreshes the counts the metrics serve every period (DefaultMetricsRefresh when 0)
// until ctx ends, the first time at once. A failed refresh is logged; the counts stay as they were
// (fsmd_metrics_refreshed_timestamp_seconds shows their age).
func (s *Service) RunMetrics(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultMetricsRefresh
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.RefreshMetrics(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("refreshing the metrics failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshMetrics reads the counts the metrics serve, now: RunMetrics calls it every period, a test
// when it wants to. It does nothing before RegisterMetrics.
func (s *Service) RefreshMetrics(ctx context.Context) error {
	m := s.metrics.Load()
	if m == nil {
		return nil
	}
	start := time.Now()
	now := s.now()
	var snap metricsSnapshot
	var err error
	if snap.instances, err = persistence.InstanceCountRunningAll(ctx, s.db); err != nil {
		return err
	}
	if snap.overdue, err = persistence.InstanceCountOverdue(ctx, s.db, "", now); err != nil {
		return err
	}
	if snap.timers, err = persistence.TimerCountDue(ctx, s.db, now); err != nil {
		return err
	}
	if snap.outbox, err = persistence.OutboxCount(ctx, s.db); err != nil {
		return err
	}
	if snap.migrations, err = persistence.MigrationListRunning(ctx, s.db); err != nil {
		return err
	}
	snap.at, snap.took = now, time.Since(start)
	m.mu.Lock()
	m.snap = snap
	m.mu.Unlock()
	return nil
}

// timerFired observes a timer that fired at now, written through ex: once its transaction has
// committed, or at once when it was a statement of its own.
func (s *Service) timerFired(ex persistence.Executor, definition string, due, now time.Time) {
	m := s.metrics.Load()
	if m == nil {
		return
	}
	lag := max(now.Sub(due), 0).Seconds()
	ex.AfterCommit(func() { m.timerLag.WithLabelValues(definition).Observe(lag) })
}

// Describe implements prometheus.Collector.
func (m *serviceMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descOverdue, descTimersDue, descTimersOldest, descOutbox, descMigration,
		descRefreshed, descRefreshTook} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the last snapshot, nothing before the first refresh.
func (m *serviceMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	snap := m.snap
	m.mu.RUnlock()
	if snap.at.IsZero() {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, c := range snap.instances {
		gauge(descInstances, float64(c.N), c.Definition, strconv.Itoa(c.Version), c.State)
	}
	for _, c := range snap.overdue {
		gauge(descOverdue, float64(c.N), c.Definition, c.State)
	}
	gauge(descTimersDue, float64(snap.timers.N))
	oldest := 0.0
	if snap.timers.N > 0 && !snap.timers.Oldest.IsZero() {
		oldest = max(snap.at.Sub(snap.timers.Oldest), 0).Seconds()
	}
	gauge(descTimersOldest, oldest)
	gauge(descOutbox, float64(snap.outbox.Pending), "pending")
	gauge(descOutbox, float64(snap.outbox.Waiting), "waiting")
	gauge(descOutbox, float64(snap.outbox.Dead), "dead")
	for _, r := range snap.migrations {
		v := strconv.Itoa(r.ToVersion)
		gauge(descMigration, float64(r.Total), r.Definition, r.ID, v, "total")
		gauge(descMigration, float64(r.Migrated), r.Definition, r.ID, v, "migrated")
		gauge(descMigration, float64(r.Stranded), r.Definition, r.ID, v, "stranded")
	}
	gauge(descRefreshed, float64(snap.at.UnixNano())/1e9)
	gauge(descRefreshTook, snap.took.Seconds())
}
