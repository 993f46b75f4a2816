package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// serveConfig is the configuration of `fsmd serve`. Each flag has an environment variable; a flag
// given on the command line wins over its variable.
type serveConfig struct {
	Addr        string        // FSMD_ADDR: where to listen
	DatabaseURL string        // FSMD_DATABASE_URL: postgres://... or a SQLite file
	Definitions string        // FSMD_DEFINITIONS: the folder of definition files
	Shutdown    time.Duration // FSMD_SHUTDOWN_TIMEOUT: how long in-flight requests may take to finish
}

func (c serveConfig) Validate() error {
	if c.Addr == "" || c.DatabaseURL == "" || c.Definitions == "" {
		return errors.New("--addr, --database-url and --definitions must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q: %v", c.Addr, err)
	}
	if c.Shutdown <= 0 {
		return fmt.Errorf("--shutdown-timeout must be positive, not %v", c.Shutdown)
	}
	return nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "[--addr ADDR] [--database-url URL] [--definitions DIR]", stdout, stderr)
	var c serveConfig
	fs.StringVar(&c.Addr, "addr", env("FSMD_ADDR", ":8080"), "where to listen (FSMD_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("FSMD_DATABASE_URL", "fsmd.db"),
		"postgres://user@host/db?sslmode=disable, or a SQLite file (FSMD_DATABASE_URL)")
	fs.StringVar(&c.Definitions, "definitions", env("FSMD_DEFINITIONS", "./definitions"), "the folder of definition files (FSMD_DEFINITIONS)")
	shutdown := env("FSMD_SHUTDOWN_TIMEOUT", "30s")
	fs.StringVar(&shutdown, "shutdown-timeout", shutdown, "how long in-flight requests may take to finish on SIGTERM (FSMD_SHUTDOWN_TIMEOUT)")
	if rest, code, ok := parse(fs, args); !ok {
		return code
	} else if len(rest) > 0 {
		fmt.Fprintf(stderr, "fsmd serve: unexpected argument %q\n", rest[0])
		return exitUsage
	}
	var err error
	if c.Shutdown, err = time.ParseDuration(shutdown); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --shutdown-timeout: %v\n", err)
		return exitUsage
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, c, log, stderr); err != nil {
		log.Error("fsmd serve stopped", "error", err)
		return exitFailed
	}
	return exitOK
}

// serve loads and registers the definitions, then serves until ctx ends, and lets in-flight requests
// finish before it returns.
func serve(ctx context.Context, c serveConfig, log *slog.Logger, stderr io.Writer) error {
	set, diags, err := machine.Load(c.Definitions)
	switch {
	case err != nil:
		return fmt.Errorf("definitions: %w", err)
	case len(set.Files) == 0: // an empty folder is no error for a service: PUT /v1/definitions adds some
		log.Warn("no definition files; add definitions with PUT /v1/definitions/{name}", "definitions", c.Definitions)
	case diags.Errors() > 0:
		diags.WriteText(stderr)
		return fmt.Errorf("%d errors in the definitions in %s: fix them and start again", diags.Errors(), c.Definitions)
	case len(diags) > 0:
		diags.WriteText(stderr) // warnings: worth reading, no reason to refuse
	}
	db, err := persistence.Open(ctx, c.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database %s: %w", redact(c.DatabaseURL), err)
	}
	defer db.Close()
	svc := service.New(db, service.Options{Logger: log})
	if err := svc.Register(ctx, set); err != nil {
		return err
	}
	go svc.Prepare()
	defer svc.Close()
	if err := svc.StartMigrations(ctx); err != nil {
		return fmt.Errorf("starting migrations: %w", err)
	}

	// Timeouts so that a slow or stuck client cannot hold a connection forever.
	srv := &http.Server{Addr: c.Addr, Handler: server.New(svc, server.Options{Logger: log, Version: version}),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	log.Info("fsmd serving", "addr", ln.Addr().String(), "database", redact(c.DatabaseURL),
		"definitions", len(set.ByName), "version", version)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("fsmd shutting down: finishing in-flight requests", "timeout", c.Shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), c.Shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// redact hides a password in a database URL for logs.
func redact(url string) string {
	at := strings.LastIndex(url, "@")
	scheme := strings.Index(url, "://")
	if at < 0 || scheme < 0 {
		return url
	}
	userinfo := url[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return url[:scheme+3] + userinfo[:i] + ":***" + url[at:]
	}
	return url
}
