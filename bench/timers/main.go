// Command timers measures how late durable timers fire on PostgreSQL (issue 5's benchmark):
//
//	go run ./bench/timers -timers 10000 -over 1m
//
// It creates a fresh database, registers the ping definition of tests/testdata/timers (a timer at
// ctx.due), and creates the instances and their timers with one INSERT each (as creating them
// through the API would arm them), due evenly over -over, starting 5 s from now. Then it runs the
// scheduler as fsmd serve does (service.RunTimers, -poll as --timer-poll, -processes schedulers on
// the database), waits until every timer has fired, and reads the lag of each (the audit row's time
// minus the due time) from the database: its percentiles, and a last line starting with "RESULT".
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

func main() {
	var (
		n         = flag.Int("timers", 10_000, "timers (one instance each)")
		over      = flag.Duration("over", time.Minute, "the due times are spread evenly over this")
		poll      = flag.Duration("poll", 200*time.Millisecond, "the schedulers' poll interval (fsmd serve --timer-poll)")
		processes = flag.Int("processes", 1, "schedulers on the database, each with its own pool, as fsmd processes")
		dbURL     = flag.String("database-url", dbtest.DefaultPostgresURL, "the PostgreSQL server (its database part is replaced)")
		defs      = flag.String("definitions", "tests/testdata/timers", "the folder of ping.yaml")
	)
	flag.Parse()
	if *n < 1 || *n > 1_000_000 || *over <= 0 || *processes < 1 || *processes > 16 {
		fmt.Fprintln(os.Stderr, "timers: want 1 to 1000000 timers, a positive -over and 1 to 16 processes")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *n, *over, *poll, *processes, *dbURL, *defs); err != nil {
		fmt.Fprintf(os.Stderr, "timers: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, over, poll time.Duration, processes int, serverURL, defs string) error {
	src, err := os.ReadFile(filepath.Join(defs, "ping.yaml"))
	if err != nil {
		return err
	}
	dbURL, drop, err := dbtest.NewPostgresDatabase(ctx, serverURL, "fsmd_bench_timers_")
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var svcs []*service.Service
	for range processes {
		db, err := persistence.Open(ctx, dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		svc := service.New(db, service.Options{Logger: quiet})
		defer svc.Close()
		if _, err := svc.PutDefinition(ctx, "ping", src); err != nil {
			return err
		}
		svcs = append(svcs, svc)
	}
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()

	first := time.Now().UTC().Add(5 * time.Second).Truncate(time.Millisecond)
	step := over / time.Duration(n)
	if _, err := db.X.ExecContext(ctx, `
		WITH due AS (SELECT i, $1::timestamptz + make_interval(secs => i * $2::float8) AS at FROM generate_series(0, $3::int - 1) AS i),
		inst AS (
			INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
			SELECT 'ping-' || lpad(i::text, 7, '0'), 'ping', 1, 'waiting',
				jsonb_build_object('due', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), 0, false, 'bench', now(), now(), now()
			FROM due RETURNING id
		)
		INSERT INTO timers (instance_id, revision, idx, event, due_at, next_try_at)
		SELECT 'ping-' || lpad(i::text, 7, '0'), 0, 0, 'ring', at, at FROM due`,
		first, step.Seconds(), n); err != nil {
		return fmt.Errorf("creating the instances: %w", err)
	}
	fmt.Printf("%d timers due from %s over %s, %d scheduler(s), poll %s\n", n, first.Format(time.TimeOnly), over, processes, poll)

	sctx, stopSchedulers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, svc := range svcs {
		wg.Go(func() { svc.RunTimers(sctx, service.TimerOptions{Poll: poll}) })
	}
	defer func() { stopSchedulers(); wg.Wait() }()
	deadline := first.Add(over + time.Minute)
	for {
		var fired int
		if err := db.X.GetContext(ctx, &fired, `SELECT count(*) FROM transitions WHERE source = 'timer'`); err != nil {
			return err
		}
		if fired == n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d timers fired a minute after the last was due", fired, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	var r struct {
		P50, P99, Max, Min float64
		Rows, Instances    int
	}
	if err := db.X.QueryRowContext(ctx, `
		SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag),
			max(lag), min(lag), count(*), count(DISTINCT instance_id)
		FROM (SELECT t.instance_id, extract(epoch FROM t.at - (i.context->>'due')::timestamptz) AS lag
			FROM transitions t JOIN instances i ON i.id = t.instance_id WHERE t.source = 'timer') AS l`).
		Scan(&r.P50, &r.P99, &r.Max, &r.Min, &r.Rows, &r.Instances); err != nil {
		return err
	}
	if r.Rows != n || r.Instances != n || r.Min < 0 {
		return fmt.Errorf("%d audit rows for %d instances, the earliest %.3f s after its time: want %d once each, none early", r.Rows, r.Instances, r.Min, n)
	}
	fmt.Printf("lag: p50 %.0f ms, p99 %.0f ms, max %.0f ms (each fired once, none early)\n", r.P50*1000, r.P99*1000, r.Max*1000)
	fmt.Printf("RESULT timers=%d over_s=%.0f processes=%d poll_ms=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f\n",
		n, over.Seconds(), processes, poll.Milliseconds(), r.P50*1000, r.P99*1000, r.Max*1000)
	return nil
}
