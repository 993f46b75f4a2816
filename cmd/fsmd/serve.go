package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// serveArgs is the synopsis of fsmd serve.
const serveArgs = "[--addr ADDR] [--database-url URL] [--definitions DIR] [--watch] [--timer-poll DURATION] [--metrics-refresh DURATION] [--expr-budget DURATION] [--webhook-allow NETS] [--webhook-deny NETS]"

// serveConfig is the configuration of `fsmd serve`. Each flag has an environment variable; a flag
// given on the command line wins over its variable.
type serveConfig struct {
	Addr        string        // FSMD_ADDR: where to listen
	DatabaseURL string        // FSMD_DATABASE_URL: postgres://... or a SQLite file
	Definitions string        // FSMD_DEFINITIONS: the folder of definition files
	Shutdown    time.Duration // FSMD_SHUTDOWN_TIMEOUT: how long in-flight requests may take to finish
	Watch       bool          // FSMD_WATCH: reload the definitions when a file of the folder changes
	WatchEvery  time.Duration // how often --watch looks at the folder; defaultWatchEvery when 0
	TimerPoll   time.Duration // FSMD_TIMER_POLL: how often the scheduler looks for due timers when idle
	// MetricsRefresh (FSMD_METRICS_REFRESH, default 10s) is how often the counts /metrics shows
	// (instances by state, due timers, outbox rows, migrations) are read again: the most they lag.
	MetricsRefresh time.Duration
	// ExprBudget (FSMD_EXPR_BUDGET, default 100ms) is the time the expressions of one event may
	// take together; past it the event is refused with expression_failed and the evaluation stops.
	ExprBudget time.Duration
	// WebhookSecret (FSMD_WEBHOOK_SECRET, an environment variable only: a flag would show in ps)
	// keys the signatures of the outbox's deliveries. Without it no dispatcher runs: the deliveries
	// wait in the outbox.
	WebhookSecret string
	// WebhookAllow and WebhookDeny (FSMD_WEBHOOK_ALLOW, FSMD_WEBHOOK_DENY: comma-separated networks,
	// "private" for loopback and the private networks) adjust where deliveries may go: link-local
	// and cloud-metadata addresses are refused unless allowed.
	WebhookAllow, WebhookDeny []netip.Prefix
	// Keys (--api-keys FILE, FSMD_API_KEYS_FILE) are the API keys; with none, fsmd listens on
	// loopback only, unless Insecure (--insecure).
	Keys           *auth.Keys
	Insecure       bool
	MetricsNeedKey bool   // --metrics-auth (FSMD_METRICS_AUTH): /metrics needs a key (read)
	TLSCert        string // --tls-cert (FSMD_TLS_CERT): serve HTTPS with this certificate...
	TLSKey         string // --tls-key (FSMD_TLS_KEY): ...and this private key
	// TrustedProxies (--trusted-proxies, FSMD_TRUSTED_PROXIES: comma-separated networks) are the
	// reverse proxies whose X-Forwarded-For names the client; from any other peer it is ignored.
	TrustedProxies []netip.Prefix
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
	if c.TimerPoll < time.Millisecond || c.TimerPoll > time.Minute {
		return fmt.Errorf("--timer-poll must be from 1ms to 1m, not %v", c.TimerPoll)
	}
	if c.MetricsRefresh < 100*time.Millisecond || c.MetricsRefresh > time.Hour {
		return fmt.Errorf("--metrics-refresh must be from 100ms to 1h, not %v", c.MetricsRefresh)
	}
	if c.ExprBudget < time.Millisecond || c.ExprBudget > 10*time.Second {
		return fmt.Errorf("--expr-budget must be from 1ms to 10s, not %v", c.ExprBudget)
	}
	return nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envBool reads a boolean environment variable (1, true, 0, false, ...); unset or empty is false.
func envBool(name string) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not a boolean (true or false)", name, v)
	}
	return b, nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", serveArgs, stdout, stderr)
	var c serveConfig
	fs.StringVar(&c.Addr, "addr", env("FSMD_ADDR", ":8080"), "where to listen (FSMD_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("FSMD_DATABASE_URL", "fsmd.db"),
		"postgres://user@host/db?sslmode=disable, a key=value connection string (host=... dbname=...), or a SQLite file (FSMD_DATABASE_URL)")
	fs.StringVar(&c.Definitions, "definitions", env("FSMD_DEFINITIONS", "./definitions"), "the folder of definition files (FSMD_DEFINITIONS)")
	watch, watchErr := envBool("FSMD_WATCH") // wrong only when --watch does not decide
	fs.BoolVar(&c.Watch, "watch", watch, "reload the definitions when a file of the folder changes, as SIGHUP and POST /v1/reload do (FSMD_WATCH)")
	shutdown := env("FSMD_SHUTDOWN_TIMEOUT", "30s")
	fs.StringVar(&shutdown, "shutdown-timeout", shutdown, "how long in-flight requests may take to finish on SIGTERM (FSMD_SHUTDOWN_TIMEOUT)")
	keysFile := env("FSMD_API_KEYS_FILE", "")
	fs.StringVar(&keysFile, "api-keys", keysFile, "the API keys file: a line `ROLE SHA256-HEX-OF-KEY [NAME]` per key (fsmd keys new prints one); without keys fsmd listens on loopback only (FSMD_API_KEYS_FILE)")
	fs.BoolVar(&c.Insecure, "insecure", false, "listen beyond loopback without API keys: anyone who reaches the port may do anything")
	metricsAuth, metricsErr := envBool("FSMD_METRICS_AUTH")
	fs.BoolVar(&c.MetricsNeedKey, "metrics-auth", metricsAuth, "/metrics needs a key (the read role) (FSMD_METRICS_AUTH)")
	proxies := env("FSMD_TRUSTED_PROXIES", "")
	fs.StringVar(&proxies, "trusted-proxies", proxies, "the networks of the reverse proxies in front of fsmd, comma-separated: X-Forwarded-For from them names the client whose failed authentications are counted; from others it is ignored (FSMD_TRUSTED_PROXIES)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("FSMD_TLS_CERT", ""), "serve HTTPS with this certificate (PEM), with --tls-key (FSMD_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("FSMD_TLS_KEY", ""), "the private key (PEM) of --tls-cert (FSMD_TLS_KEY)")
	allow, deny := env("FSMD_WEBHOOK_ALLOW", ""), env("FSMD_WEBHOOK_DENY", "")
	fs.StringVar(&allow, "webhook-allow", allow, "networks webhooks may be delivered to although refused by default (link-local, cloud metadata), comma-separated (FSMD_WEBHOOK_ALLOW)")
	fs.StringVar(&deny, "webhook-deny", deny, `networks webhooks may not be delivered to, comma-separated; "private" for loopback and private networks (FSMD_WEBHOOK_DENY)`)
	timerPoll := env("FSMD_TIMER_POLL", "200ms")
	fs.StringVar(&timerPoll, "timer-poll", timerPoll, "how often to look for due timers when none were due: the most a timer waits past its deadline, besides the work (FSMD_TIMER_POLL)")
	metricsRefresh := env("FSMD_METRICS_REFRESH", "10s")
	fs.StringVar(&metricsRefresh, "metrics-refresh", metricsRefresh, "how often the counts /metrics shows (instances by state, due timers, outbox rows, migrations) are read from the database: the most they lag (FSMD_METRICS_REFRESH)")
	exprBudget := env("FSMD_EXPR_BUDGET", "100ms")
	fs.StringVar(&exprBudget, "expr-budget", exprBudget, "the time the expressions of one event (guards, set, timer at) may take together, from 1ms to 10s; past it the event is refused with expression_failed (FSMD_EXPR_BUDGET)")
	if rest, code, ok := parse(fs, args); !ok {
		return code
	} else if len(rest) > 0 {
		fmt.Fprintf(stderr, "fsmd serve: unexpected argument %q\n", rest[0])
		return exitUsage
	}
	if watchErr != nil && !isSet(fs, "watch") {
		fmt.Fprintf(stderr, "fsmd serve: %v\n", watchErr)
		return exitUsage
	}
	c.WebhookSecret = os.Getenv("FSMD_WEBHOOK_SECRET")
	if metricsErr != nil && !isSet(fs, "metrics-auth") {
		fmt.Fprintf(stderr, "fsmd serve: %v\n", metricsErr)
		return exitUsage
	}
	var err error
	if keysFile != "" {
		if c.Keys, err = auth.ParseFile(keysFile); err != nil {
			fmt.Fprintf(stderr, "fsmd serve: --api-keys: %v\n", err)
			return exitUsage
		}
	}
	addrGiven := isSet(fs, "addr") || os.Getenv("FSMD_ADDR") != ""
	if c.Addr, err = listenAddr(c.Addr, c.Keys, addrGiven, c.Insecure); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: %v\n", err)
		return exitUsage
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		fmt.Fprintln(stderr, "fsmd serve: --tls-cert and --tls-key go together")
		return exitUsage
	}
	if c.Shutdown, err = time.ParseDuration(shutdown); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --shutdown-timeout: %v\n", err)
		return exitUsage
	}
	if c.TrustedProxies, err = networks(proxies); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --trusted-proxies: %v\n", err)
		return exitUsage
	}
	if c.WebhookAllow, err = networks(allow); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --webhook-allow: %v\n", err)
		return exitUsage
	}
	if c.WebhookDeny, err = networks(deny); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --webhook-deny: %v\n", err)
		return exitUsage
	}
	if c.TimerPoll, err = time.ParseDuration(timerPoll); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --timer-poll: %v\n", err)
		return exitUsage
	}
	if c.MetricsRefresh, err = time.ParseDuration(metricsRefresh); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --metrics-refresh: %v\n", err)
		return exitUsage
	}
	if c.ExprBudget, err = time.ParseDuration(exprBudget); err != nil {
		fmt.Fprintf(stderr, "fsmd serve: --expr-budget: %v\n", err)
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
// finish before it returns. SIGHUP (and with --watch, a change in the folder) reloads the definitions
// while it serves.
func serve(ctx context.Context, c serveConfig, log *slog.Logger, stderr io.Writer) error {
	// From the start: SIGHUP would otherwise end the process. One received while starting reloads
	// once the service runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var folder folderState // what --watch compares with: the folder as it is before it is loaded
	if c.Watch {
		folder = readFolderState(c.Definitions)
	}
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
		return fmt.Errorf("database %s: %w", persistence.Redact(c.DatabaseURL), err)
	}
	defer db.Close()
	svc := service.New(db, service.Options{Logger: log, ExprBudget: c.ExprBudget})
	if err := svc.Register(ctx, set); err != nil {
		return err
	}
	go svc.Prepare()
	defer svc.Close()
	if err := svc.StartMigrations(ctx); err != nil {
		return fmt.Errorf("starting migrations: %w", err)
	}

	// The reloads run in the background until serve returns; a reload in progress when ctx ends is
	// cancelled (what it registered stays; the next start registers the rest).
	bgctx, stopReloads := context.WithCancel(ctx)
	var reloads sync.WaitGroup
	defer func() { stopReloads(); reloads.Wait() }()
	reload := func(trigger string) {
		res, err := svc.Reload(bgctx, c.Definitions)
		logReload(bgctx, log, trigger, c.Definitions, res, err)
	}
	reloads.Go(func() {
		for {
			select {
			case <-bgctx.Done():
				return
			case <-hup:
				reload("SIGHUP")
			}
		}
	})
	// What /metrics serves: the service's (registered before the scheduler starts, which observes
	// the timer lag), the server's and the dispatcher's; the counts read every --metrics-refresh.
	registry := prometheus.NewRegistry()
	if err := svc.RegisterMetrics(registry); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	reloads.Go(func() { svc.RunMetrics(bgctx, c.MetricsRefresh) })
	// The timer scheduler: every process runs one; they share the due timers (definitions.md,
	// "Timers"). It stops with the reloads, before the service and the database close.
	reloads.Go(func() { svc.RunTimers(bgctx, service.TimerOptions{Poll: c.TimerPoll}) })
	// The outbox dispatcher, in every process too; they share the deliveries.
	if c.WebhookSecret == "" {
		if notifies(set) {
			log.Warn("FSMD_WEBHOOK_SECRET is not set: webhook deliveries wait in the outbox until a process with the secret delivers them")
		}
	} else {
		d, err := outbox.New(db, outbox.Config{Secret: []byte(c.WebhookSecret), Logger: log, Metrics: registry,
			Allow: c.WebhookAllow, Deny: c.WebhookDeny})
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		svc.SetOutboxWake(d.Wake)
		reloads.Go(func() { _ = d.Run(bgctx) })
	}
	if c.Watch {
		every := c.WatchEvery
		if every <= 0 {
			every = defaultWatchEvery
		}
		reloads.Go(func() { watch(bgctx, c.Definitions, every, folder, func() { reload("watch") }) })
	}

	// Timeouts so that a slow or stuck client cannot hold a connection forever.
	srv := &http.Server{Addr: c.Addr, Handler: server.New(svc, server.Options{Logger: log, Version: version, Definitions: c.Definitions, Metrics: registry,
		Keys: c.Keys, MetricsNeedKey: c.MetricsNeedKey, TrustedProxies: c.TrustedProxies}),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	log.Info("fsmd serving", "addr", ln.Addr().String(), "database", persistence.Redact(c.DatabaseURL),
		"definitions", len(set.ByName), "watch", c.Watch, "version", version)
	if c.Keys == nil || c.Keys.Len() == 0 {
		log.Warn("no API keys (--api-keys): every request is let in; listening on " + ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() {
		if c.TLSCert != "" {
			errc <- srv.ServeTLS(ln, c.TLSCert, c.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
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

// logReload logs what a reload of the definitions folder did: its new versions and warnings, or why
// it failed (the registered versions go on serving).
func logReload(ctx context.Context, log *slog.Logger, trigger, dir string, res service.ReloadResult, err error) {
	if err != nil {
		if ctx.Err() != nil {
			log.Info("reloading the definitions: interrupted by the shutdown", "trigger", trigger)
			return
		}
		log.Error("reloading the definitions failed: the registered versions go on serving", "trigger", trigger,
			"definitions", dir, "error", err.Error())
		return
	}
	created := []string{}
	for _, d := range res.Definitions {
		if d.Created {
			created = append(created, fmt.Sprintf("%s@%d", d.Name, d.Version))
		}
	}
	log.Info("definitions reloaded", "trigger", trigger, "definitions", len(res.Definitions), "new_versions", created)
	for _, w := range res.Warnings {
		log.Warn("definition warning", "warning", w.String())
	}
}

// listenAddr is where serve listens. Without keys it is loopback only: a default address (":8080")
// becomes 127.0.0.1's, an address given beyond loopback is refused unless insecure.
func listenAddr(addr string, keys *auth.Keys, given, insecure bool) (string, error) {
	if keys != nil && keys.Len() > 0 {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %v", addr, err)
	}
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" {
		return addr, nil
	}
	switch {
	case insecure:
		return addr, nil
	case given:
		return "", fmt.Errorf("--addr %s listens beyond loopback, but there are no API keys: give --api-keys FILE (fsmd keys new makes keys), listen on 127.0.0.1, or accept anyone on the network with --insecure", addr)
	}
	return net.JoinHostPort("127.0.0.1", port), nil
}

// networks parses a comma-separated list of networks (CIDR, or one address) and "private".
func networks(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case item == "private":
			out = append(out, outbox.PrivateNetworks...)
		case strings.Contains(item, "/"):
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network (like 10.0.0.0/8): %v", item, err)
			}
			out = append(out, p.Masked())
		default:
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network (like 10.0.0.0/8) or an address: %v", item, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// notifies reports whether a definition of set has webhooks.
func notifies(set *machine.Set) bool {
	for _, def := range set.ByName {
		if len(def.Notify) > 0 {
			return true
		}
	}
	return false
}
