package main

// -log-compare: what the access log costs (issue 18, target 7). The same load runs against fsmd
// with --log-level warn (a: no access log) and --log-level info (b: a line per request, fsmd's
// default), side by side in alternating rounds as -auth-compare does; the log goes to a file, as
// fsmd's stderr would go to a file or a pipe in production.

import (
	"context"
	"fmt"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// targetLogCPU: the access log adds at most 5% to fsmd's CPU per event.
const targetLogCPU = 1.05

func (b *bench) compareLog(ctx context.Context, pg *dbtest.Server, bin, version string) error {
	vs := []variant{
		{name: "a", auth: authNone, definitions: b.c.Definitions, args: []string{"--log-level", "warn"}, describe: "--log-level warn: no access log"},
		{name: "b", auth: authNone, definitions: b.c.Definitions, args: []string{"--log-level", "info"}, describe: "--log-level info (the default): one access log line per request"},
	}
	results, err := b.compareVariants(ctx, pg, bin, vs)
	if err != nil {
		return err
	}
	b.reportCompare("log", version, vs, results, func(tot []totals) (string, bool) {
		return fmt.Sprintf("fsmd's CPU per event with the access log (b) at most %.2f of a's", targetLogCPU),
			tot[1].fsmdCPURatio > 0 && tot[1].fsmdCPURatio <= targetLogCPU
	})
	return nil
}
