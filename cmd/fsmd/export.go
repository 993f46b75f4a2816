package main

import (
	"context"
	"fmt"
	"io"

	"github.com/fsmd-io/fsmd/internal/service"
)

const exportArgs = "--definition NAME [--since RFC3339] [--state STATE] [--database-url URL]"

// runExport is `fsmd export`: the instances of a definition with their histories, as NDJSON on
// stdout (docs/operations.md, "fsmd export"), read from the database serve uses (its stored
// definitions: nothing is registered). A count goes to stderr once it is done.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("export", exportArgs, stdout, stderr)
	dbURL := fs.String("database-url", env("FSMD_DATABASE_URL", defaultDatabaseURL), "the database (FSMD_DATABASE_URL)")
	definition := fs.String("definition", "", "the definition whose instances to write (required)")
	since := fs.String("since", "", "only the instances changed (updated_at) at or after this time, RFC 3339")
	state := fs.String("state", "", "only the instances in this state")
	rest, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) != 0 || *definition == "" {
		fmt.Fprintf(stderr, "usage: fsmd export %s\n", exportArgs)
		return exitUsage
	}
	req := service.ExportRequest{Definition: *definition, State: *state}
	t, err := service.ParseStatsTime("--since", *since)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd export: %v\n", err)
		return exitUsage
	}
	req.Since = t
	ctx, stop := signalContext()
	defer stop()
	res, err := export(ctx, req, *dbURL, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd export %s: %v\n", req.Definition, err)
		if _, bad := err.(*service.BadRequestError); bad {
			return exitUsage
		}
		return exitFailed
	}
	fmt.Fprintf(stderr, "fsmd export %s: %d instances, %d history rows\n", req.Definition, res.Instances, res.History)
	return exitOK
}

// export writes the export from the database's stored definitions: nothing is registered.
func export(ctx context.Context, req service.ExportRequest, dbURL string, w io.Writer) (service.ExportResult, error) {
	a, err := openService(ctx, appConfig{DatabaseURL: dbURL, Folder: storedOnly})
	if err != nil {
		return service.ExportResult{}, err
	}
	defer a.Close()
	return a.svc.Export(ctx, req, w)
}
