package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// result is what one run measured.
type result struct {
	label, dialect string
	round          int
	c              config
	audit, seen    lags          // the lags from the audit rows, and as observed
	took           time.Duration // from the first due time (or the write, when later) to the last commit observed
	rate           float64       // timers fired a second over took
	loadBefore     string        // the load average (1 min) when the run began and ended
	loadAfter      string
}

// lags are the percentiles of a run's lags, in seconds.
type lags struct{ p50, p99, max float64 }

func (r result) line() string {
	return fmt.Sprintf("%s (round %d, %s): %d timers from %s over %s, %d scheduler(s), poll %s: %.0f fired/s (%.2f s); lag p50/p99/max %.0f/%.0f/%.0f ms audit, %.0f/%.0f/%.0f ms observed; load %s -> %s",
		r.label, r.round, r.dialect, r.c.n, r.c.start, r.c.over, r.c.processes, r.c.poll, r.rate, r.took.Seconds(),
		r.audit.p50*1000, r.audit.p99*1000, r.audit.max*1000, r.seen.p50*1000, r.seen.p99*1000, r.seen.max*1000, r.loadBefore, r.loadAfter)
}

func (r result) resultLine() string {
	return fmt.Sprintf("RESULT scheduler=%s round=%d db=%s timers=%d start_s=%.0f over_s=%.0f processes=%d poll_ms=%d fired_per_s=%.0f took_s=%.2f p50_ms=%.0f p99_ms=%.0f max_ms=%.0f seen_p50_ms=%.0f seen_p99_ms=%.0f seen_max_ms=%.0f load1=%s/%s",
		r.label, r.round, r.dialect, r.c.n, r.c.start.Seconds(), r.c.over.Seconds(), r.c.processes, r.c.poll.Milliseconds(), r.rate,
		r.took.Seconds(), r.audit.p50*1000, r.audit.p99*1000, r.audit.max*1000, r.seen.p50*1000, r.seen.p99*1000, r.seen.max*1000,
		r.loadBefore, r.loadAfter)
}

// run is one run with the schedulers of bin ("" for this tree's, in process).
func run(ctx context.Context, c config, bin string) (result, error) {
	r := result{label: label(bin), dialect: "postgres", c: c, loadBefore: loadavg()}
	dbURL, drop, err := newDatabase(ctx, c)
	if err != nil {
		return r, err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if c.sqlite {
		r.dialect = "sqlite"
	}
	sctx, stopSchedulers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopSchedulers(); wg.Wait() }()
	var startSchedulers func()
	if bin == "" {
		if startSchedulers, err = inProcess(ctx, sctx, &wg, c, dbURL); err != nil {
			return r, err
		}
	} else {
		dir, err := os.MkdirTemp("", "fsmd-bench-timers-")
		if err != nil {
			return r, err
		}
		defer os.RemoveAll(dir)
		for i := range c.processes {
			s, err := start(ctx, filepath.Join(dir, fmt.Sprint(i)), bin, dbURL, c)
			if err != nil {
				return r, err
			}
			defer s.stop()
		}
		startSchedulers = func() {}
	}
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		return r, err
	}
	defer db.Close()

	first := time.Now().UTC().Add(c.start).Truncate(time.Millisecond)
	step := c.over / time.Duration(c.n)
	if err := seed(ctx, db, first, step, c.n); err != nil {
		return r, fmt.Errorf("creating the instances: %w", err)
	}
	written := time.Now()
	startSchedulers()
	fmt.Fprintf(os.Stderr, "%s: %d timers due from %s over %s, written in %s\n", r.label, c.n, first.Format(time.TimeOnly), c.over,
		written.Sub(first.Add(-c.start)).Round(time.Millisecond))

	samples, err := watch(ctx, db, c.n, first.Add(c.over+c.runTimeout))
	if err != nil {
		return r, err
	}
	from := first
	if written.After(from) {
		from = written
	}
	last := samples[len(samples)-1].at
	r.took = last.Sub(from)
	r.rate = float64(c.n) / r.took.Seconds()
	r.seen = observed(samples, first, step, c.n)
	if r.audit, err = auditLags(ctx, db, first, step, c.n); err != nil {
		return r, err
	}
	r.loadAfter = loadavg()
	return r, nil
}

// newDatabase creates the run's database: on the PostgreSQL server, or an SQLite file.
func newDatabase(ctx context.Context, c config) (string, func() error, error) {
	if !c.sqlite {
		return dbtest.NewPostgresDatabase(ctx, c.serverURL, "fsmd_bench_timers_")
	}
	dir, err := os.MkdirTemp("", "fsmd-bench-timers-db-")
	if err != nil {
		return "", nil, err
	}
	return "sqlite:" + filepath.Join(dir, "fsmd.db"), func() error { return os.RemoveAll(dir) }, nil
}

// inProcess opens c.processes services on dbURL, each with its own pool, registers ping, and returns
// what starts their schedulers (until sctx ends).
func inProcess(ctx, sctx context.Context, wg *sync.WaitGroup, c config, dbURL string) (func(), error) {
	src, err := os.ReadFile(filepath.Join(c.defs, "ping.yaml"))
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var svcs []*service.Service
	var running sync.WaitGroup // the schedulers, which end before their service and pool close
	for range c.processes {
		db, err := persistence.Open(ctx, dbURL)
		if err != nil {
			return nil, err
		}
		svc := service.New(db, service.Options{Logger: quiet})
		wg.Go(func() { <-sctx.Done(); running.Wait(); svc.Close(); db.Close() })
		if _, err := svc.PutDefinition(ctx, "ping", src); err != nil {
			return nil, err
		}
		svcs = append(svcs, svc)
	}
	return func() {
		for _, svc := range svcs {
			running.Go(func() { svc.RunTimers(sctx, service.TimerOptions{Poll: c.poll, Rounds: c.parallel}) })
		}
	}, nil
}

// id is the instance of the k-th timer (in due order).
func id(k int) string { return fmt.Sprintf("ping-%07d", k) }

// seed creates the n instances and their timers, the k-th due at first + k*step, in one transaction.
func seed(ctx context.Context, db *persistence.DB, first time.Time, step time.Duration, n int) error {
	return db.WithTx(ctx, func(tx *persistence.Tx) error {
		if db.Dialect == persistence.Postgres { // a statement each: n round trips would take longer than the run
			_, err := tx.X.ExecContext(ctx, `
				WITH due AS (SELECT i, $1::timestamptz + make_interval(secs => i * $2::float8) AS at FROM generate_series(0, $3::int - 1) AS i),
				inst AS (
					INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
					SELECT 'ping-' || lpad(i::text, 7, '0'), 'ping', 1, 'waiting',
						jsonb_build_object('due', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), 0, false, 'bench', now(), now(), now()
					FROM due RETURNING id
				)
				INSERT INTO timers (instance_id, revision, idx, event, due_at, next_try_at)
				SELECT 'ping-' || lpad(i::text, 7, '0'), 0, 0, 'ring', at, at FROM due`,
				first, step.Seconds(), n)
			return err
		}
		now := time.Now().UTC()
		for k := range n {
			due := first.Add(time.Duration(k) * step).Truncate(time.Microsecond)
			err := persistence.InstanceInsert(ctx, tx, persistence.InstanceRow{ID: id(k), Definition: "ping", Version: 1, State: "waiting",
				Context: fmt.Appendf(nil, `{"due": %q}`, due.Format(time.RFC3339Nano)), CreateHash: "bench", CreatedAt: now, UpdatedAt: now, EnteredAt: now})
			if err != nil {
				return err
			}
			if err := persistence.TimersReplace(ctx, tx, id(k), false, 0, []persistence.Arm{{Event: "ring", DueAt: due}}); err != nil {
				return err
			}
		}
		return nil
	})
}

// sample is how many timers had fired (committed) at a time.
type sample struct {
	at time.Time
	n  int
}

// watch reads the count of fired timers every 50 ms until all n have fired, or deadline: the
// timers left, which shrink as they fire (a fired timer is deleted with its audit row, and rung
// arms none), cost the database less to count than the audit rows, which grow.
func watch(ctx context.Context, db *persistence.DB, n int, deadline time.Time) ([]sample, error) {
	var out []sample
	for {
		var left int
		if err := db.X.GetContext(ctx, &left, `SELECT count(*) FROM timers`); err != nil {
			return nil, err
		}
		fired := n - left
		at := time.Now()
		if len(out) == 0 || fired > out[len(out)-1].n {
			out = append(out, sample{at: at, n: fired})
		}
		if fired >= n {
			return out, nil
		}
		if at.After(deadline) {
			return nil, fmt.Errorf("%d of %d timers fired by %s after the last was due", fired, n, deadline.Sub(at))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// observed is the lags as a client sees them: the k-th timer (in due order) counted fired at the
// first sample with more than k, the schedulers taking them in due order.
func observed(samples []sample, first time.Time, step time.Duration, n int) lags {
	out := make([]float64, n)
	j := 0
	for k := range n {
		for samples[j].n <= k {
			j++
		}
		out[k] = max(samples[j].at.Sub(first.Add(time.Duration(k)*step)).Seconds(), 0)
	}
	return percentiles(out)
}

// auditLags reads the audit rows and checks them: one per instance, from its timer, none before its
// due time. It returns their lags.
func auditLags(ctx context.Context, db *persistence.DB, first time.Time, step time.Duration, n int) (lags, error) {
	rows, err := db.X.QueryContext(ctx, `SELECT instance_id, seq, event, at FROM transitions WHERE source = 'timer'`)
	if err != nil {
		return lags{}, err
	}
	defer rows.Close()
	out := make([]float64, 0, n)
	seen := make(map[string]bool, n)
	for rows.Next() {
		var inst, event string
		var seq int64
		var at anyTime
		if err := rows.Scan(&inst, &seq, &event, &at); err != nil {
			return lags{}, err
		}
		var k int
		if _, err := fmt.Sscanf(inst, "ping-%d", &k); err != nil || seen[inst] || seq != 1 || event != "ring" {
			return lags{}, fmt.Errorf("instance %s: row %d %s (fired twice?)", inst, seq, event)
		}
		seen[inst] = true
		lag := time.Time(at).Sub(first.Add(time.Duration(k) * step).Truncate(time.Microsecond)).Seconds()
		if lag < -0.001 { // the due time computed here may differ from the database's by a rounding
			return lags{}, fmt.Errorf("instance %s fired %.3f s early", inst, -lag)
		}
		out = append(out, max(lag, 0))
	}
	if err := rows.Err(); err != nil {
		return lags{}, err
	}
	if len(out) != n {
		return lags{}, fmt.Errorf("%d audit rows, want %d", len(out), n)
	}
	return percentiles(out), nil
}

// anyTime scans a time column of either database: a time.Time (PostgreSQL) or RFC 3339 text (SQLite).
type anyTime time.Time

func (t *anyTime) Scan(v any) error {
	switch v := v.(type) {
	case time.Time:
		*t = anyTime(v)
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("a time of type %T", v)
}

func (t *anyTime) parse(s string) error {
	p, err := time.Parse(time.RFC3339Nano, s)
	*t = anyTime(p)
	return err
}

var _ sql.Scanner = (*anyTime)(nil)

func percentiles(v []float64) lags {
	slices.Sort(v)
	at := func(q float64) float64 { return v[min(len(v)-1, int(math.Ceil(q*float64(len(v))))-1)] }
	return lags{p50: at(0.5), p99: at(0.99), max: v[len(v)-1]}
}

// loadavg is the 1-minute load average (Linux), or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
