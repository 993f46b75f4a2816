// Command migrate measures a migration of running instances on PostgreSQL (issue 4's benchmark):
//
//	go run ./bench/migrate -instances 1000000
//
// It creates a fresh database, registers version 1 of the claim definition of bench/migrate/testdata
// (ten states an instance waits in), creates the instances spread evenly over those ten states with
// COPY, registers version 2 (one rename and one guarded split, policy manual), and then times what a
// user does: the dry-run plan (POST .../migrations/plan) and the migration itself (POST
// .../migrations, polled until done), through the service, as fsmd serve runs them. It checks the
// outcome (every instance on version 2, one audit row each), prints the figures and a last line
// starting with "RESULT" for scripts, and drops the database.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// states are the ten states of claim version 1 an instance waits in; the instances are spread evenly
// over them.
var states = []string{"received", "triage", "assessing", "documents", "review", "disputed", "reopened", "approved", "scheduled", "paying"}

const maxInstances = 10_000_000

func main() {
	var (
		instances = flag.Int("instances", 1_000_000, "running instances to migrate")
		dbURL     = flag.String("database-url", dbtest.DefaultPostgresURL, "the PostgreSQL server (its database part is replaced)")
		dir       = flag.String("definitions", "bench/migrate/testdata", "the folder of claim.v1.yaml and claim.yaml")
		rule      = flag.Bool("context-rule", false, "add a migrate.context rule to version 2, so that every instance is decided in Go")
	)
	flag.Parse()
	if *instances < 10 || *instances > maxInstances {
		fmt.Fprintf(os.Stderr, "migrate: -instances %d: want 10 to %d\n", *instances, maxInstances)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *instances, *dbURL, *dir, *rule, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "migrate: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, serverURL, dir string, contextRule bool, out io.Writer) error {
	v1, err := os.ReadFile(filepath.Join(dir, "claim.v1.yaml"))
	if err != nil {
		return err
	}
	v2, err := os.ReadFile(filepath.Join(dir, "claim.yaml"))
	if err != nil {
		return err
	}
	if contextRule { // the worst case: no group moves in SQL
		v2 = bytes.Replace(v2, []byte("  policy: manual\n"), []byte("  policy: manual\n  context:\n    priority: 'ctx.amount > 1000 ? 1 : 3'\n"), 1)
	}
	dbURL, drop, err := dbtest.NewPostgresDatabase(ctx, serverURL, "fsmd_bench_migrate_")
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
	if _, err := svc.PutDefinition(ctx, "claim", v1); err != nil {
		return fmt.Errorf("claim version 1: %w", err)
	}

	start := time.Now()
	if err := seed(ctx, db, n); err != nil {
		return fmt.Errorf("creating the instances: %w", err)
	}
	fmt.Fprintf(out, "created %d instances of claim version 1 in %s\n", n, time.Since(start).Round(time.Millisecond))
	if _, err := svc.PutDefinition(ctx, "claim", v2); err != nil {
		return fmt.Errorf("claim version 2: %w", err)
	}
	if _, err := db.X.ExecContext(ctx, "CHECKPOINT"); err != nil {
		fmt.Fprintf(out, "CHECKPOINT: %v (the measured phases may include one)\n", err)
	}

	start = time.Now()
	plan, err := svc.PlanMigration(ctx, "claim", service.MigrationRequest{})
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	planTime := time.Since(start)
	fmt.Fprintf(out, "plan: %d instances in %s\n", plan.Total, planTime.Round(time.Millisecond))
	for _, m := range plan.Moves {
		fmt.Fprintf(out, "  v%d %-10s -> %-13s %d\n", m.FromVersion, m.FromState, m.ToState, m.Count)
	}

	start = time.Now()
	st, err := svc.StartMigration(ctx, "claim", service.MigrationRequest{})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	for st.Status == "running" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if st, err = svc.GetMigration(ctx, st.ID); err != nil {
			return err
		}
	}
	runTime := time.Since(start)
	if st.Status != "done" {
		return fmt.Errorf("migration %s: %s", st.Status, st.Error)
	}
	fmt.Fprintf(out, "run: %d migrated, %d stranded in %s (%.0f instances/s)\n", st.Migrated, st.Stranded,
		runTime.Round(time.Millisecond), float64(st.Migrated)/runTime.Seconds())
	if err := check(ctx, db, n, plan, st); err != nil {
		return err
	}
	fmt.Fprintf(out, "checked: every instance on version 2 with one migration row\n")
	fmt.Fprintf(out, "RESULT instances=%d context_rule=%v plan_s=%.2f run_s=%.2f cpus=%d\n", n, contextRule, planTime.Seconds(), runTime.Seconds(), runtime.NumCPU())
	return nil
}

// seed creates n running instances of claim version 1 with COPY: evenly over the states, amounts
// from 0 to 1999 (so that about half of those in review go to senior_review).
func seed(ctx context.Context, db *persistence.DB, n int) error {
	tx, err := db.X.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `COPY instances (id, definition, version, state, context, revision, final, create_hash, `+
		`created_at, updated_at, entered_at) FROM STDIN`) // lib/pq runs COPY ... FROM STDIN as CopyIn did
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range n {
		ctxJSON := fmt.Sprintf(`{"amount": %d, "customer": "c%d", "tags": ["t%d"]}`, (i*7919)%2000, i%50000, i%7)
		_, err := stmt.ExecContext(ctx, fmt.Sprintf("claim-%08d", i), "claim", 1, states[i%len(states)], ctxJSON,
			3, false, "bench", now, now, now)
		if err != nil {
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.X.ExecContext(ctx, "ANALYZE instances")
	return err
}

// check verifies the outcome in the database: every instance on version 2 and one migration audit
// row each, as many as the plan said.
func check(ctx context.Context, db *persistence.DB, n int, plan service.MigrationPlan, st service.MigrationStatus) error {
	var onV2, rows, instancesWithRows int64
	if err := db.X.GetContext(ctx, &onV2, "SELECT count(*) FROM instances WHERE version = 2"); err != nil {
		return err
	}
	if err := db.X.GetContext(ctx, &rows, "SELECT count(*) FROM transitions WHERE source = 'migration'"); err != nil {
		return err
	}
	if err := db.X.GetContext(ctx, &instancesWithRows, "SELECT count(DISTINCT instance_id) FROM transitions WHERE source = 'migration'"); err != nil {
		return err
	}
	if onV2 != int64(n) || rows != int64(n) || instancesWithRows != int64(n) || st.Migrated != int64(n) || plan.Total != int64(n) {
		return fmt.Errorf("after the migration: %d instances on version 2, %d migration rows for %d instances, %d migrated, plan total %d; want %d each",
			onV2, rows, instancesWithRows, st.Migrated, plan.Total, n)
	}
	return nil
}
