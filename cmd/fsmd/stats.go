package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fsmd-io/fsmd/internal/service"
)

const statsArgs = "NAME [--since RFC3339] [--until RFC3339] [--database-url URL]"

// runStats is `fsmd stats NAME`: the answer of GET /v1/definitions/{name}/stats, read from the
// database serve uses (its stored definitions: nothing is registered), printed as JSON.
func runStats(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("stats", statsArgs, stdout, stderr)
	dbURL := fs.String("database-url", env("FSMD_DATABASE_URL", defaultDatabaseURL), "the database (FSMD_DATABASE_URL)")
	since := fs.String("since", "", "start of the window, RFC 3339 (default: 24 h before until)")
	until := fs.String("until", "", "end of the window, RFC 3339 (default: now); at most 366 days after since")
	rest, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintf(stderr, "usage: fsmd stats %s\n", statsArgs)
		return exitUsage
	}
	req := service.StatsRequest{Definition: rest[0]}
	for _, f := range []struct {
		name, v string
		t       *time.Time
	}{{"since", *since, &req.Since}, {"until", *until, &req.Until}} {
		t, err := service.ParseStatsTime("--"+f.name, f.v)
		if err != nil {
			fmt.Fprintf(stderr, "fsmd stats: %v\n", err)
			return exitUsage
		}
		*f.t = t
	}
	ctx, stop := signalContext()
	defer stop()
	st, err := stats(ctx, req, *dbURL)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd stats %s: %v\n", req.Definition, err)
		if _, bad := err.(*service.BadRequestError); bad {
			return exitUsage
		}
		return exitFailed
	}
	printJSON(stdout, st)
	return exitOK
}

// stats reads the stats from the database's stored definitions: nothing is registered.
func stats(ctx context.Context, req service.StatsRequest, dbURL string) (service.Stats, error) {
	a, err := openService(ctx, appConfig{DatabaseURL: dbURL, Folder: storedOnly})
	if err != nil {
		return service.Stats{}, err
	}
	defer a.Close()
	return a.svc.DefinitionStats(ctx, req)
}
