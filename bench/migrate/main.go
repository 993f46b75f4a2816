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
//
// With -old PATH (this benchmark built from another commit) it compares the two builds side by
// side instead, in alternating rounds (compare.go):
//
//	go build -o /tmp/migrate-old ./bench/migrate   # at the other commit
//	go run ./bench/migrate -old /tmp/migrate-old -rounds 2
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
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/bench/internal/procstat"
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
		batch     = flag.Int("batch", 0, "instances per batch of the migration (service.Options.MigrationBatch; 0 for its default)")
		workers   = flag.Int("workers", 0, "batches a migration runs at once (service.Options.MigrationWorkers; 0 for its default)")
		profile   = flag.String("cpuprofile", "", "write a CPU profile of the migration's run (not the plan) to this file")
		planProf  = flag.String("plan-cpuprofile", "", "write a CPU profile of the plan to this file")
		seedOnly  = flag.Bool("seed-only", false, "create the instances and version 2, print the database's URL and keep it (to study the statements by hand)")
		old       = flag.String("old", "", "compare with this binary (bench/migrate built from another commit), side by side in -rounds rounds")
		rounds    = flag.Int("rounds", 2, "with -old: rounds, each running both builds")
	)
	flag.Parse()
	if *instances < 10 || *instances > maxInstances {
		fmt.Fprintf(os.Stderr, "migrate: -instances %d: want 10 to %d\n", *instances, maxInstances)
		os.Exit(2)
	}
	if *batch < 0 || *batch > maxBatch {
		fmt.Fprintf(os.Stderr, "migrate: -batch %d: want 0 to %d\n", *batch, maxBatch)
		os.Exit(2)
	}
	if *workers < 0 || *workers > maxWorkers {
		fmt.Fprintf(os.Stderr, "migrate: -workers %d: want 0 to %d\n", *workers, maxWorkers)
		os.Exit(2)
	}
	if *rounds < 1 || *rounds > maxRounds {
		fmt.Fprintf(os.Stderr, "migrate: -rounds %d: want 1 to %d\n", *rounds, maxRounds)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *old != "" {
		common := []string{"-instances", strconv.Itoa(*instances), "-database-url", *dbURL, "-definitions", *dir}
		if *rule {
			common = append(common, "-context-rule")
		}
		var newArgs []string
		if *batch > 0 {
			newArgs = append(newArgs, "-batch", strconv.Itoa(*batch))
		}
		if *workers > 0 {
			newArgs = append(newArgs, "-workers", strconv.Itoa(*workers))
		}
		err = compare(ctx, *old, *rounds, common, newArgs, os.Stdout)
	} else {
		err = run(ctx, options{n: *instances, serverURL: *dbURL, dir: *dir, contextRule: *rule, batch: *batch, workers: *workers,
			profile: *profile, planProfile: *planProf, seedOnly: *seedOnly}, os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "migrate: %v\n", err)
		os.Exit(1)
	}
}

// maxBatch and maxWorkers bound -batch and -workers.
const (
	maxBatch   = 100_000
	maxWorkers = 16
)

// options are one run's flags.
type options struct {
	n           int
	serverURL   string
	dir         string
	contextRule bool
	batch       int
	workers     int
	profile     string
	planProfile string
	seedOnly    bool
}

func run(ctx context.Context, o options, out io.Writer) error {
	n, dir, contextRule := o.n, o.dir, o.contextRule
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
	dbURL, drop, err := dbtest.NewPostgresDatabase(ctx, o.serverURL, "fsmd_bench_migrate_")
	if err != nil {
		return err
	}
	defer func() {
		if o.seedOnly {
			return
		}
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := service.New(db, service.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MigrationBatch: o.batch,
		MigrationWorkers: o.workers})
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
	if o.seedOnly {
		fmt.Fprintf(out, "kept the database: %s\n", dbURL)
		return nil
	}
	if _, err := db.X.ExecContext(ctx, "CHECKPOINT"); err != nil {
		fmt.Fprintf(out, "CHECKPOINT: %v (the measured phases may include one)\n", err)
	}

	stopPlanProfile := func() {}
	if o.planProfile != "" {
		if stopPlanProfile, err = startProfile(o.planProfile); err != nil {
			return err
		}
	}
	start = time.Now()
	plan, err := svc.PlanMigration(ctx, "claim", service.MigrationRequest{})
	planTime := time.Since(start)
	stopPlanProfile()
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	fmt.Fprintf(out, "plan: %d instances in %s\n", plan.Total, planTime.Round(time.Millisecond))
	for _, m := range plan.Moves {
		fmt.Fprintf(out, "  v%d %-10s -> %-13s %d\n", m.FromVersion, m.FromState, m.ToState, m.Count)
	}

	var walStart string
	if err := db.X.GetContext(ctx, &walStart, "SELECT pg_current_wal_lsn()::text"); err != nil {
		return err
	}
	stopProfile := func() {}
	if o.profile != "" {
		if stopProfile, err = startProfile(o.profile); err != nil {
			return err
		}
	}
	cpu, pgCPU := procstat.ProcCPU("/proc/self/stat", false), procstat.PostgresCPU()
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
	stopProfile()
	cpu, pgCPU = procstat.ProcCPU("/proc/self/stat", false)-cpu, procstat.PostgresCPU()-pgCPU
	if st.Status != "done" {
		return fmt.Errorf("migration %s: %s", st.Status, st.Error)
	}
	var walBytes float64
	if err := db.X.GetContext(ctx, &walBytes, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)", walStart); err != nil {
		return err
	}
	fmt.Fprintf(out, "run: %d migrated, %d stranded in %s (%.0f instances/s)\n", st.Migrated, st.Stranded,
		runTime.Round(time.Millisecond), float64(st.Migrated)/runTime.Seconds())
	if err := check(ctx, db, n, plan, st); err != nil {
		return err
	}
	fmt.Fprintf(out, "checked: every instance on version 2 with one migration row\n")
	fmt.Fprintf(out, "run: %.0f MB of WAL written (the whole server's), CPU %.1f s in this process, %.1f s in PostgreSQL's (all of its processes)\n",
		walBytes/1e6, cpu.Seconds(), pgCPU.Seconds())
	fmt.Fprintf(out, "RESULT instances=%d context_rule=%v batch=%d workers=%d plan_s=%.2f run_s=%.2f wal_mb=%.0f cpu_s=%.1f pg_cpu_s=%.1f cpus=%d\n",
		n, contextRule, o.batch, o.workers, planTime.Seconds(), runTime.Seconds(), walBytes/1e6, cpu.Seconds(), pgCPU.Seconds(), runtime.NumCPU())
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

// startProfile starts a CPU profile written to path; the function it returns stops it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}, nil
}
