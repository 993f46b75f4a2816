package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// metricsBell arms a timer a minute after entering armed.
const metricsBell = `name: bell
initial: idle
states:
  idle:
    on:
      arm: armed
      stop: done
  armed:
    on:
      ring: rung
    timers:
      - {after: 1m, event: ring}
  rung:
    on:
      reset: idle
  done: {final: true}
`

// metricsClock is a settable clock.
type metricsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *metricsClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *metricsClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// metricsEnv is a server as `fsmd serve` wires it (one registry for the server's and the service's
// metrics), over a service with a clock of the test's.
type metricsEnv struct {
	apiEnv
	svc   *service.Service
	clock *metricsClock
}

func metricsServe(t *testing.T, db *persistence.DB) *metricsEnv {
	t.Helper()
	def, diags := machine.Parse("bell.yaml", []byte(metricsBell))
	if diags.Errors() > 0 {
		t.Fatal((&machine.InvalidDefinitionError{Diagnostics: diags}).Error())
	}
	c := &metricsClock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	svc := service.New(db, service.Options{Now: c.now})
	if err := svc.Register(context.Background(), &machine.Set{ByName: map[string]*machine.Definition{"bell": def}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := svc.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(svc, server.Options{Version: "test", Metrics: reg}))
	t.Cleanup(func() { srv.Close(); svc.Close() })
	return &metricsEnv{apiEnv: apiEnv{dialect: db.Dialect, db: db, srv: srv}, svc: svc, clock: c}
}

// metricsOutbox stores outbox rows: two of instance x for webhook w (the first pending, the second
// waiting behind it) and one of instance y, dead.
func metricsOutbox(t *testing.T, db *persistence.DB, at time.Time) {
	t.Helper()
	ctx := context.Background()
	row := func(id, inst string, seq int64, next time.Time) persistence.OutboxRow {
		return persistence.OutboxRow{ID: id, InstanceID: inst, Seq: seq, Definition: "bell", Version: 1, Webhook: "w",
			URL: "https://w.example/", Destination: "https://w.example:443", Body: []byte(`{}`), NextTryAt: next, CreatedAt: at}
	}
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		if err := persistence.OutboxInsert(ctx, tx, []persistence.OutboxRow{row("y1", "y", 1, at.Add(-time.Hour))}); err != nil {
			return err
		}
		claimed, err := persistence.OutboxClaim(ctx, tx, persistence.OutboxClaimParams{Now: at, LeaseUntil: at.Add(time.Hour), Claim: "c", Limit: 1})
		if err != nil || len(claimed) != 1 {
			return fmt.Errorf("claimed %d: %v", len(claimed), err)
		}
		if err := persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: "y1", Claim: "c", At: at, Error: "HTTP 500", Dead: true}); err != nil {
			return err
		}
		return persistence.OutboxInsert(ctx, tx, []persistence.OutboxRow{row("x1", "x", 1, at), row("x2", "x", 2, at)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAPIMetricsScenario: /metrics after a scripted scenario, step by step, on both databases:
// events by outcome, the counts of the background refresh (instances by definition, version and
// state; due timers; outbox rows; a running migration's progress), the timer lag, the pool.
func TestAPIMetricsScenario(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	steps := []struct {
		name   string
		do     func(t *testing.T, env *metricsEnv)
		want   []string // lines /metrics must have (a name and labels alone: a line beginning so)
		absent []string // prefixes of lines it must not have
	}{{
		name: "before the first refresh: events only",
		do: func(t *testing.T, env *metricsEnv) {
			for _, id := range []string{"b1", "b2", "b3", "b4"} {
				env.create(t, "bell", id, nil)
			}
			env.mustFire(t, "b1", "arm", nil)
			env.mustFire(t, "b2", "arm", nil)
			env.mustFire(t, "b3", "stop", nil)
			apiProblemOf(t, env.fire(t, "b4", "ring", nil), http.StatusConflict, "invalid_transition")
			apiProblemOf(t, env.fire(t, "nope", "ring", nil), http.StatusNotFound, "not_found")
		},
		want: []string{
			`fsmd_events_total{definition="bell",event="arm",outcome="accepted"} 2`,
			`fsmd_events_total{definition="bell",event="stop",outcome="accepted"} 1`,
			`fsmd_events_total{definition="bell",event="ring",outcome="invalid_transition"} 1`,
			`fsmd_events_total{definition="",event="ring",outcome="not_found"} 1`,
			`fsmd_event_duration_seconds_count{definition="bell"} 4`,
			`go_sql_open_connections{db_name="fsmd"}`,
		},
		absent: []string{"fsmd_instances{", "fsmd_timers_due ", "fsmd_metrics_refreshed_timestamp_seconds ", "fsmd_timer_lag_seconds_count"},
	}, {
		name: "refreshed 90 s later: two timers due for 30 s",
		do: func(t *testing.T, env *metricsEnv) {
			env.clock.advance(90 * time.Second)
			metricsOutbox(t, env.db, env.clock.now())
			err := env.db.WithTx(context.Background(), func(tx *persistence.Tx) error {
				return persistence.MigrationInsert(context.Background(), tx, persistence.MigrationRow{ID: "m1", Definition: "bell",
					ToVersion: 1, Status: "running", Total: 10, Migrated: 4, Stranded: 1, StartedAt: env.clock.now()})
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := env.svc.RefreshMetrics(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{
			`fsmd_instances{definition="bell",state="armed",version="1"} 2`,
			`fsmd_instances{definition="bell",state="idle",version="1"} 1`,
			`fsmd_timers_due 2`,
			`fsmd_timers_due_oldest_seconds 30`,
			`fsmd_outbox_rows{status="pending"} 1`,
			`fsmd_outbox_rows{status="waiting"} 1`,
			`fsmd_outbox_rows{status="dead"} 1`,
			`fsmd_migration_instances{definition="bell",migration="m1",progress="total",to_version="1"} 10`,
			`fsmd_migration_instances{definition="bell",migration="m1",progress="migrated",to_version="1"} 4`,
			`fsmd_migration_instances{definition="bell",migration="m1",progress="stranded",to_version="1"} 1`,
			fmt.Sprintf(`fsmd_metrics_refreshed_timestamp_seconds %g`, float64(t0.Add(90*time.Second).Unix())),
		},
		absent: []string{`fsmd_instances{definition="bell",state="done"`, "fsmd_timer_lag_seconds_count"},
	}, {
		name: "one timer fired, not yet refreshed: the lag is observed, the counts stay",
		do: func(t *testing.T, env *metricsEnv) {
			n, err := env.svc.FireDue(context.Background(), service.TimerOptions{Batch: 1})
			if err != nil || n != 1 {
				t.Fatalf("FireDue: %d, %v", n, err)
			}
		},
		want: []string{
			`fsmd_timer_lag_seconds_bucket{definition="bell",le="10"} 0`,
			`fsmd_timer_lag_seconds_bucket{definition="bell",le="30"} 1`,
			`fsmd_timer_lag_seconds_sum{definition="bell"} 30`,
			`fsmd_timer_lag_seconds_count{definition="bell"} 1`,
			`fsmd_instances{definition="bell",state="armed",version="1"} 2`,
			`fsmd_timers_due 2`,
		},
	}, {
		name: "refreshed 10 s later, the migration done",
		do: func(t *testing.T, env *metricsEnv) {
			env.clock.advance(10 * time.Second)
			err := persistence.MigrationUpdate(context.Background(), env.db, persistence.MigrationRow{ID: "m1", Definition: "bell",
				ToVersion: 1, Status: "done", Total: 10, Migrated: 9, Stranded: 1, StartedAt: t0, FinishedAt: env.clock.now()})
			if err != nil {
				t.Fatal(err)
			}
			if err := env.svc.RefreshMetrics(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{
			`fsmd_instances{definition="bell",state="armed",version="1"} 1`,
			`fsmd_instances{definition="bell",state="rung",version="1"} 1`,
			`fsmd_instances{definition="bell",state="idle",version="1"} 1`,
			`fsmd_timers_due 1`,
			`fsmd_timers_due_oldest_seconds 40`,
			`fsmd_timer_lag_seconds_count{definition="bell"} 1`,
			fmt.Sprintf(`fsmd_metrics_refreshed_timestamp_seconds %g`, float64(t0.Add(100*time.Second).Unix())),
		},
		absent: []string{"fsmd_migration_instances{"},
	}}
	for _, d := range []persistence.Dialect{persistence.Postgres, persistence.SQLite} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			var db *persistence.DB
			if d == persistence.Postgres {
				db = apiPostgresPool(t, dbtest.Postgres(t))
			} else {
				db = dbtest.SQLite(t)
			}
			env := metricsServe(t, db)
			for _, step := range steps {
				step.do(t, env)
				res := env.do(t, "GET", "/metrics", nil)
				if res.status != http.StatusOK {
					t.Fatalf("%s: GET /metrics: %d", step.name, res.status)
				}
				lines := strings.Split(string(res.body), "\n")
				has := func(prefix string) bool {
					for _, l := range lines {
						if strings.HasPrefix(l, prefix) {
							return true
						}
					}
					return false
				}
				for _, want := range step.want {
					if strings.Contains(want, " ") && !metricsHasLine(lines, want) || !has(want) {
						t.Errorf("%s: /metrics lacks %s", step.name, want)
					}
				}
				for _, a := range step.absent {
					if has(a) {
						t.Errorf("%s: /metrics has %s", step.name, a)
					}
				}
			}
		})
	}
}

// metricsHasLine reports whether lines has want exactly.
func metricsHasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
