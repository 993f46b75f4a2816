// Command bulk measures issue 16's bulks on PostgreSQL (its speed targets: over 1,000,000
// instances, a plan under 10 s and a run under 60 s):
//
//	go run ./bench/bulk -instances 1000000 -run 100000
//
// It creates a fresh database, registers a small definition (job: queued, running, done,
// cancelled; cancel guarded on the priority), creates the instances with one set-based INSERT ...
// SELECT generate_series (a third running, a few done, the rest queued), then times the plan of
// "cancel every gold job" over all of them, and a run (a bulk started and driven batch by batch
// by the service in-process, as RunBulks does) of the same event over the first -run instances
// (a ctx filter on their index, so that a run of 1,000,000 can be asked for but need not be
// waited for). It prints each, the rates, a last line starting with "RESULT" for scripts, and
// drops the database.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

const job = `name: job
initial: queued
context:
  priority: int
  tier: string
  n: int
events:
  cancel: {reason: string}
index: [n]
states:
  queued:
    on:
      start: running
      cancel:
        to: cancelled
        guard: ctx.priority < 5
        guard_message: high-priority jobs cannot be cancelled
  running:
    on:
      finish: done
      cancel: cancelled
  done: {final: true}
  cancelled: {final: true}
`

func main() {
	var (
		instances = flag.Int("instances", 1_000_000, "instances to create and plan over")
		runN      = flag.Int("run", 100_000, "instances the run is applied to (the first by n)")
		dbURL     = flag.String("database-url", dbtest.DefaultPostgresURL, "the PostgreSQL server (its database part is replaced)")
	)
	flag.Parse()
	if *instances < 1000 || *instances > 10_000_000 || *runN < 0 || *runN > *instances {
		fmt.Fprintf(os.Stderr, "bulk: -instances %d: want 1000 to 10000000; -run from 0 to -instances\n", *instances)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *instances, *runN, *dbURL, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bulk: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, runN int, serverURL string, out io.Writer) error {
	dbURL, drop, err := dbtest.NewPostgresDatabase(ctx, serverURL, "fsmd_bench_bulk_")
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := service.New(db, service.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer svc.Close()
	if _, err := svc.PutDefinition(ctx, "job", []byte(job)); err != nil {
		return fmt.Errorf("job: %w", err)
	}
	start := time.Now()
	_, err = db.X.ExecContext(ctx, `INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash,
			created_at, updated_at, entered_at)
		SELECT 'job-' || lpad(g::text, 8, '0'), 'job', 1,
			CASE WHEN g % 3 = 0 THEN 'running' WHEN g % 7 = 0 THEN 'done' ELSE 'queued' END,
			jsonb_build_object('priority', g % 10, 'tier', CASE WHEN g % 2 = 0 THEN 'gold' ELSE 'basic' END, 'n', g),
			0, (g % 3 <> 0 AND g % 7 = 0), '', now(), now(), now()
		FROM generate_series(1, $1) AS g`, n)
	if err != nil {
		return fmt.Errorf("creating the instances: %w", err)
	}
	if _, err := db.X.ExecContext(ctx, `ANALYZE instances`); err != nil {
		return err
	}
	fmt.Fprintf(out, "created %d instances of job in %s\n", n, time.Since(start).Round(time.Millisecond))

	caller := service.Caller{Name: "bench", Admin: true, Write: true}
	req := service.BulkRequest{Definition: "job", Filter: service.BulkFilter{Ctx: map[string]any{"tier": "gold"}},
		Event: "cancel", Payload: map[string]any{"reason": "bench"}, Caller: caller}
	start = time.Now()
	plan, err := svc.PlanBulk(ctx, req)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	planTook := time.Since(start)
	fmt.Fprintf(out, "plan over %d instances (%d matching): %s (%.0f instances/s)\n", n, plan.Total, planTook.Round(time.Millisecond),
		float64(plan.Total)/planTook.Seconds())
	for _, o := range plan.Outcomes {
		fmt.Fprintf(out, "  %s -> %s%s: %d\n", o.FromState, o.ToState, o.Code, o.Count)
	}

	req.Filter.Ctx["n[lte]"] = float64(runN)
	start = time.Now()
	b, err := svc.StartBulk(ctx, req)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	for {
		if _, err := svc.BulkRound(ctx); err != nil {
			return fmt.Errorf("run: %w", err)
		}
		if b, err = svc.GetBulk(ctx, b.ID); err != nil {
			return err
		}
		if b.Status != "running" {
			break
		}
	}
	runTook := time.Since(start)
	fmt.Fprintf(out, "run over the first %d (%d matching; %d applied, %d refused): %s (%.0f instances/s), status %s\n",
		runN, b.Total, b.Applied, b.Refused, runTook.Round(time.Millisecond), float64(b.Total)/runTook.Seconds(), b.Status)
	fmt.Fprintf(out, "RESULT instances=%d plan_s=%.2f plan_per_s=%.0f run_instances=%d run_s=%.2f run_per_s=%.0f\n",
		n, planTook.Seconds(), float64(plan.Total)/planTook.Seconds(), b.Total, runTook.Seconds(), float64(b.Total)/runTook.Seconds())
	return nil
}
