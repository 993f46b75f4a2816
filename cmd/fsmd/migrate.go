package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fsmd-io/fsmd/internal/service"
)

const migrateArgs = "plan|run NAME [--to-version N] [--from-version N] [--from-state S] [--database-url URL] [--definitions DIR]"

// runMigrate is `fsmd migrate plan NAME` (a dry run: what would move where, what would stay and why)
// and `fsmd migrate run NAME` (the migration, with its progress on stderr). Both first register the
// definitions folder's new versions, as serve does, on the database serve uses.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("migrate", migrateArgs, stdout, stderr)
	dbURL := fs.String("database-url", env("FSMD_DATABASE_URL", defaultDatabaseURL), "the database (FSMD_DATABASE_URL)")
	defs := fs.String("definitions", env("FSMD_DEFINITIONS", defaultDefinitions), "the folder of definition files (FSMD_DEFINITIONS)")
	req := service.MigrationRequest{Filter: &service.MigrationFilter{}}
	fs.IntVar(&req.ToVersion, "to-version", 0, "the version to migrate to (default: the latest)")
	fs.IntVar(&req.Filter.Version, "from-version", 0, "only the instances of this older version")
	fs.StringVar(&req.Filter.State, "from-state", "", "only the instances in this state")
	rest, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) != 2 || (rest[0] != "plan" && rest[0] != "run") {
		fmt.Fprintf(stderr, "usage: fsmd migrate %s\n", migrateArgs)
		return exitUsage
	}
	if req.ToVersion < 0 || req.Filter.Version < 0 {
		fmt.Fprintln(stderr, "fsmd migrate: versions are 1 or more")
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	out, err := migrate(ctx, rest[0], rest[1], req, appConfig{DatabaseURL: *dbURL, Definitions: *defs,
		Folder: registerFolder, Diagnostics: stderr}, stderr)
	if out != nil {
		printJSON(stdout, out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fsmd migrate %s %s: %v\n", rest[0], rest[1], err)
		return exitFailed
	}
	return exitOK
}

// migrate opens the service (registering the folder's new versions), then plans or runs.
func migrate(ctx context.Context, verb, name string, req service.MigrationRequest, open appConfig, stderr io.Writer) (any, error) {
	a, err := openService(ctx, open)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	if verb == "plan" {
		p, err := a.svc.PlanMigration(ctx, name, req)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	st, err := a.svc.StartMigration(ctx, name, req)
	if running := (*service.MigrationRunningError)(nil); errors.As(err, &running) {
		// One was interrupted (or runs in another process): finish it first, as fsmd serve would at
		// start; then run this command again for what it asked, if anything is left.
		fmt.Fprintf(stderr, "migration %s of %s to version %d is running: resuming it (a request of its own needs another run once it is done)\n",
			running.ID, name, running.ToVersion)
		st, err = a.svc.ResumeMigration(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "migration %s: %s to version %d, %d running instances to consider\n", st.ID, name, st.ToVersion, st.Total)
	for st.Status == "running" {
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("interrupted; the migration resumes when fsmd serve starts, or with fsmd migrate run %s: %w", name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if st, err = a.svc.GetMigration(ctx, st.ID); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "migration %s: %d migrated, %d stranded of %d\n", st.ID, st.Migrated, st.Stranded, st.Total)
	}
	if st.Status == "failed" {
		return st, fmt.Errorf("failed: %s", st.Error)
	}
	return st, nil
}
