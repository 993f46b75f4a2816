package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// serveArgs is the synopsis of fsmd serve.
const serveArgs = "[--addr ADDR] [--database-url URL] [--definitions DIR] [--watch] [--timer-poll DURATION] [--metrics-refresh DURATION] [--expr-budget DURATION] [--retention-every DURATION] [--group-commit N] [--webhook-allow NETS] [--webhook-deny NETS]"

// runServe is `fsmd serve`: the configuration from the flags and the environment (config.go), then
// serve until SIGINT or SIGTERM.
func runServe(args []string, stdout, stderr io.Writer) int {
	c, code, ok := parseServeFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signalContext()
	defer stop()
	if err := serve(ctx, c, log, stderr); err != nil {
		log.Error("fsmd serve stopped", "error", err)
		return exitFailed
	}
	return exitOK
}

// serve loads and registers the definitions, then serves until ctx ends, and lets in-flight requests
// finish before it returns. SIGHUP (and with --watch, a change in the folder) reloads the definitions
// while it serves.
func serve(ctx context.Context, c serveConfig, log *slog.Logger, stderr io.Writer) error {
	// From the start: SIGHUP would otherwise end the process. One received while starting reloads
	// once the service runs.
	hup := notifyHUP()
	defer signal.Stop(hup)
	var folder folderState // what --watch compares with: the folder as it is before it is loaded
	if c.Watch {
		folder = readFolderState(c.Definitions)
	}
	a, err := openService(ctx, appConfig{DatabaseURL: c.DatabaseURL, Definitions: c.Definitions, Folder: serveFolder,
		Logger: log, ExprBudget: c.ExprBudget, GroupCommit: c.GroupCommit, Diagnostics: stderr})
	if err != nil {
		return err
	}
	defer a.Close()
	go a.svc.Prepare()
	if err := a.svc.StartMigrations(ctx); err != nil {
		return fmt.Errorf("starting migrations: %w", err)
	}

	// Deferred after a.Close, so run before it: the workers end before the service and the database.
	bg := newBackground(ctx)
	defer bg.stop()
	reload := reloader(bg.ctx, a.svc, c.Definitions, log)
	bg.run(func(ctx context.Context) { reloadOnHUP(ctx, hup, reload) })
	// What /metrics serves: the service's (registered before the scheduler starts, which observes
	// the timer lag), the server's and the dispatcher's; the counts read every --metrics-refresh.
	registry := prometheus.NewRegistry()
	if err := a.svc.RegisterMetrics(registry); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	bg.run(func(ctx context.Context) { a.svc.RunMetrics(ctx, c.MetricsRefresh) })
	// The timer scheduler: every process runs one; they share the due timers (definitions.md,
	// "Timers").
	bg.run(func(ctx context.Context) { a.svc.RunTimers(ctx, service.TimerOptions{Poll: c.TimerPoll}) })
	// The message dispatcher: every process runs one; they share the messages between instances
	// (definitions.md, "Messages"), each delivered once, with the poll of the timers.
	bg.run(func(ctx context.Context) { a.svc.RunMessages(ctx, service.MessageOptions{Poll: c.TimerPoll}) })
	// The bulk runner: every process runs one; a bulk left running by a process that ended is taken
	// up by the others (docs/operators.md, "Bulk").
	bg.run(func(ctx context.Context) { a.svc.RunBulks(ctx, c.TimerPoll) })
	// The retention job: every process runs one; on PostgreSQL they share the batches
	// (definitions.md, "Retention").
	bg.run(func(ctx context.Context) {
		a.svc.RunRetention(ctx, service.RetentionOptions{Every: c.RetentionEvery})
	})
	d, err := newDispatcher(a, c, log, registry)
	if err != nil {
		return err
	}
	if d != nil {
		bg.run(func(ctx context.Context) { _ = d.Run(ctx) })
	}
	if c.Watch {
		bg.run(func(ctx context.Context) {
			watch(ctx, c.Definitions, c.watchEvery(), folder, func() { reload("watch") })
		})
	}

	srv := newHTTPServer(c.Addr, server.New(a.svc, server.Options{Logger: log, Version: version, Definitions: c.Definitions,
		Metrics: registry, Keys: c.Keys, Tokens: c.Tokens, MetricsNeedKey: c.MetricsNeedKey, TrustedProxies: c.TrustedProxies}))
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	// The one line written whatever --log-level: where fsmd listens (scripts and tests read it).
	serving := slog.NewRecord(time.Now(), slog.LevelInfo, "fsmd serving", 0)
	serving.Add("addr", ln.Addr().String(), "database", persistence.Redact(c.DatabaseURL),
		"definitions", len(a.set.ByName), "watch", c.Watch, "version", version)
	if a.db.Citus {
		serving.Add("citus", true)
	}
	_ = log.Handler().Handle(ctx, serving)
	if (c.Keys == nil || c.Keys.Len() == 0) && c.Tokens == nil {
		log.Warn("no API keys (--api-keys): every request is let in; listening on " + ln.Addr().String())
	}
	return serveHTTP(ctx, srv, ln, c, log)
}
