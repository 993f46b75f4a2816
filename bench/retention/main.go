// Command retention measures the retention job on PostgreSQL (issue 16's benchmark):
//
//	go run ./bench/retention -instances 1000000 -history 10
//
// It creates a fresh database, registers a definition with `retention: {final_after: 90d}`, seeds
// -instances final instances that finished 100 days ago with -history audit rows each (set-based:
// INSERT ... SELECT generate_series), and -running running instances. Then it runs one pass of the
// retention job (service.ApplyRetention, as fsmd serve runs it) while -clients clients send events
// to the running instances, and prints how long the pass took and the events' latencies (the job
// must not block them). It checks that every final instance and audit row is gone and every running
// instance is there, prints a last line starting with "RESULT" for scripts, and drops the database.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// ticket is the definition: a running instance toggles between open and held (so that events go on
// for as long as the pass runs); close ends it.
const ticket = `name: ticket
initial: open
states:
  open: {on: {hold: held, close: closed}}
  held: {on: {open: open, close: closed}}
  closed: {final: true}
retention: {final_after: 90d}
`

func main() {
	var (
		instances = flag.Int("instances", 1_000_000, "final instances due for deletion")
		history   = flag.Int("history", 10, "audit rows of each")
		running   = flag.Int("running", 1000, "running instances that the clients send events to meanwhile")
		clients   = flag.Int("clients", 4, "clients sending events while the retention runs")
		batch     = flag.Int("batch", service.DefaultRetentionBatch, "instances deleted per transaction")
		dbURL     = flag.String("database-url", dbtest.DefaultPostgresURL, "the PostgreSQL server (its database part is replaced)")
	)
	flag.Parse()
	if *instances < 1 || *instances > 10_000_000 || *history < 1 || *history > 100 || *running < 1 || *clients < 0 {
		fmt.Fprintln(os.Stderr, "retention: want -instances 1 to 10000000, -history 1 to 100, -running 1 or more, -clients 0 or more")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *instances, *history, *running, *clients, *batch, *dbURL, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "retention: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, history, running, clients, batch int, serverURL string, out io.Writer) error {
	dbURL, drop, err := dbtest.NewPostgresDatabase(ctx, serverURL, "fsmd_bench_retention_")
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
	if _, err := svc.PutDefinition(ctx, "ticket", []byte(ticket)); err != nil {
		return err
	}
	start := time.Now()
	if err := seed(ctx, db, n, history, running); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	fmt.Fprintf(out, "seeded %d final instances with %d audit rows each and %d running ones in %s\n", n, history, running,
		time.Since(start).Round(time.Millisecond))
	if _, err := db.X.ExecContext(ctx, "CHECKPOINT"); err != nil {
		fmt.Fprintf(out, "CHECKPOINT: %v (the pass may include one)\n", err)
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		failures  int
	)
	for c := range clients {
		wg.Go(func() {
			for i := c; loadCtx.Err() == nil; i += clients {
				id := fmt.Sprintf("run-%07d", i%running)
				inst, err := svc.GetInstance(loadCtx, id)
				if err != nil {
					continue
				}
				event := "hold"
				if inst.State == "held" {
					event = "open"
				}
				t0 := time.Now()
				_, _, err = svc.SendEvent(loadCtx, service.SendEvent{InstanceID: id, Event: event, RequestID: "bench"})
				d := time.Since(t0)
				mu.Lock()
				if err != nil && loadCtx.Err() == nil {
					failures++
				} else if err == nil {
					latencies = append(latencies, d)
				}
				mu.Unlock()
			}
		})
	}
	start = time.Now()
	deleted, err := svc.ApplyRetention(ctx, service.RetentionOptions{Batch: batch})
	took := time.Since(start)
	stopLoad()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	fmt.Fprintf(out, "retention: deleted %d instances (%d audit rows) in %s (%.0f instances/s)\n", deleted["ticket"], deleted["ticket"]*history,
		took.Round(time.Millisecond), float64(deleted["ticket"])/took.Seconds())
	slices.Sort(latencies)
	p := func(q float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(q*float64(len(latencies))))].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(out, "events meanwhile: %d accepted (%.0f/s), %d failed; latency p50 %s, p99 %s, max %s\n", len(latencies),
		float64(len(latencies))/took.Seconds(), failures, p(0.5), p(0.99), p(1))
	if err := check(ctx, db, running); err != nil {
		return err
	}
	fmt.Fprintf(out, "checked: no final instance nor audit row of one left, %d running instances kept\n", running)
	fmt.Fprintf(out, "RESULT instances=%d history=%d batch=%d retention_s=%.2f events=%d event_p99_ms=%.1f event_max_ms=%.1f failures=%d cpus=%d\n",
		n, history, batch, took.Seconds(), len(latencies), float64(p(0.99).Microseconds())/1000, float64(p(1).Microseconds())/1000,
		failures, runtime.NumCPU())
	if deleted["ticket"] != n || failures > 0 {
		return fmt.Errorf("deleted %d of %d, %d events failed", deleted["ticket"], n, failures)
	}
	return nil
}

// seed inserts the final instances (finished 100 days ago, ids fin-0000000...), their audit rows
// (seq 1 to history), and the running ones (run-0000000...), each set in one statement, in one
// transaction that skips the foreign keys' per-row checks (session_replication_role, as a restore
// does: the rows are consistent by construction), which would take most of the seeding's time.
func seed(ctx context.Context, db *persistence.DB, n, history, running int) error {
	tx, err := db.X.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, stmt := range []struct {
		query string
		args  []any
	}{
		{`SET LOCAL session_replication_role = replica`, nil},
		{`INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
			SELECT 'fin-' || lpad(i::text, 7, '0'), 'ticket', 1, 'closed', '{}', $2, true, 'bench',
				now() - interval '101 days', now() - interval '100 days' - i * interval '1 ms', now() - interval '100 days'
			FROM generate_series(0, $1 - 1) AS i`, []any{n, history}},
		{`INSERT INTO transitions (instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before,
				context_after, source, request_id, request_hash, definition_version, at, actor_kind)
			SELECT 'fin-' || lpad(i::text, 7, '0'), s, CASE WHEN s = $2 THEN 'close' ELSE 'hold' END, 'open',
				CASE WHEN s = $2 THEN 'closed' ELSE 'held' END, 0, '[]', '{}', '{}', '{}', 'api', 'bench', 'bench', 1,
				now() - interval '100 days', 'user'
			FROM generate_series(0, $1 - 1) AS i, generate_series(1, $2) AS s`, []any{n, history}},
		{`INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
			SELECT 'run-' || lpad(i::text, 7, '0'), 'ticket', 1, 'open', '{}', 0, false, 'bench', now(), now(), now()
			FROM generate_series(0, $1 - 1) AS i`, []any{running}},
	} {
		if _, err := tx.ExecContext(ctx, stmt.query, stmt.args...); err != nil {
			return fmt.Errorf("%.60s...: %w", stmt.query, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, table := range []string{"instances", "transitions"} {
		if _, err := db.X.ExecContext(ctx, "VACUUM ANALYZE "+table); err != nil {
			return err
		}
	}
	return nil
}

// check verifies the outcome: no final instance, no audit row of one, every running instance.
func check(ctx context.Context, db *persistence.DB, running int) error {
	var final, rows, run int64
	for _, c := range []struct {
		n     *int64
		query string
	}{
		{&final, `SELECT count(*) FROM instances WHERE final`},
		{&rows, `SELECT count(*) FROM transitions WHERE instance_id LIKE 'fin-%'`},
		{&run, `SELECT count(*) FROM instances WHERE NOT final`},
	} {
		if err := db.X.GetContext(ctx, c.n, c.query); err != nil {
			return err
		}
	}
	if final != 0 || rows != 0 || run != int64(running) {
		return fmt.Errorf("after the pass: %d final instances, %d of their audit rows, %d running; want 0, 0, %d", final, rows, run, running)
	}
	return nil
}
