package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
)

// The defaults of the settings that have one. Each setting has an environment variable (named in
// serveConfig), and a flag given on the command line wins over its variable.
const (
	defaultAddr           = ":8080" // on 127.0.0.1 without API keys (listenAddr)
	defaultDatabaseURL    = "fsmd.db"
	defaultDefinitions    = "./definitions"
	defaultShutdown       = "30s"
	defaultTimerPoll      = "200ms"
	defaultMetricsRefresh = "10s"
	defaultExprBudget     = "100ms"
	defaultRetentionEvery = "1m"
	defaultGroupCommit    = "0" // the database's: 64 on SQLite, off on PostgreSQL
)

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
	// RetentionEvery (FSMD_RETENTION_EVERY, default 1m) is the pause between two passes of the
	// retention job, which deletes the final instances past their definition's retention.
	RetentionEvery time.Duration
	// GroupCommit (FSMD_GROUP_COMMIT) is how many events written at the same time for different
	// instances may share one commit; 1 writes each event in a commit of its own; 0 (the default)
	// is the database's default (service.Options.GroupCommit).
	GroupCommit int
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
	Keys *auth.Keys
	// Tokens (--jwt-jwks FILE and the other --jwt-* flags, FSMD_JWT_*) verifies bearer tokens (JWT)
	// beside the keys; either lets fsmd listen beyond loopback.
	Tokens         *auth.Tokens
	Insecure       bool
	MetricsNeedKey bool   // --metrics-auth (FSMD_METRICS_AUTH): /metrics needs a key (read)
	TLSCert        string // --tls-cert (FSMD_TLS_CERT): serve HTTPS with this certificate...
	TLSKey         string // --tls-key (FSMD_TLS_KEY): ...and this private key
	// LogLevel (--log-level, FSMD_LOG_LEVEL: debug, info, warn or error; default info) is the least
	// level logged. The access log's line per request is info: warn leaves it out (and its cost).
	LogLevel slog.Level
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
	if c.GroupCommit < 0 || c.GroupCommit > 1024 {
		return fmt.Errorf("--group-commit must be from 0 to 1024, not %d", c.GroupCommit)
	}
	if c.RetentionEvery < time.Second || c.RetentionEvery > 24*time.Hour {
		return fmt.Errorf("--retention-every must be from 1s to 24h, not %v", c.RetentionEvery)
	}
	return nil
}

// watchEvery is how often --watch looks at the folder.
func (c serveConfig) watchEvery() time.Duration {
	if c.WatchEvery <= 0 {
		return defaultWatchEvery
	}
	return c.WatchEvery
}

// parseServeFlags reads the configuration from args and the environment, and checks it. ok false
// ends the command with code: 0 for -h, 2 for anything wrong (reported on stderr).
func parseServeFlags(args []string, stdout, stderr io.Writer) (serveConfig, int, bool) {
	var c serveConfig
	fs := newFlags("serve", serveArgs, stdout, stderr)
	raw := defineServeFlags(fs, &c)
	rest, code, ok := parse(fs, args)
	if !ok {
		return c, code, false
	}
	err := c.read(fs, rest, raw)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "fsmd serve: %v\n", err)
		return c, exitUsage, false
	}
	return c, exitOK, true
}

// serveFlags holds the flags that become settings only once read (serveConfig.read): durations,
// networks, the keys file, and the booleans whose variable may be no boolean.
type serveFlags struct {
	keysFile, proxies, allow, deny                  string
	jwt                                             auth.TokenConfig
	jwtSkew, logLevel                               string
	shutdown, timerPoll, metricsRefresh, exprBudget string
	retentionEvery, groupCommit                     string
	// A variable that is no boolean is wrong only when its flag does not decide.
	watchErr, metricsAuthErr error
}

// defineServeFlags defines fsmd serve's flags on fs, each defaulting to its environment variable,
// else to its default.
func defineServeFlags(fs *flag.FlagSet, c *serveConfig) *serveFlags {
	r := &serveFlags{}
	fs.StringVar(&c.Addr, "addr", env("FSMD_ADDR", defaultAddr), "where to listen (FSMD_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("FSMD_DATABASE_URL", defaultDatabaseURL),
		"postgres://user@host/db?sslmode=disable, a key=value connection string (host=... dbname=...), or a SQLite file (FSMD_DATABASE_URL)")
	fs.StringVar(&c.Definitions, "definitions", env("FSMD_DEFINITIONS", defaultDefinitions), "the folder of definition files (FSMD_DEFINITIONS)")
	var watch bool
	watch, r.watchErr = envBool("FSMD_WATCH")
	fs.BoolVar(&c.Watch, "watch", watch, "reload the definitions when a file of the folder changes, as SIGHUP and POST /v1/reload do (FSMD_WATCH)")
	fs.StringVar(&r.shutdown, "shutdown-timeout", env("FSMD_SHUTDOWN_TIMEOUT", defaultShutdown), "how long in-flight requests may take to finish on SIGTERM (FSMD_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&r.keysFile, "api-keys", env("FSMD_API_KEYS_FILE", ""), "the API keys file: a line `ROLE SHA256-HEX-OF-KEY [NAME] [groups=A,B]` per key (fsmd keys new prints one); without keys fsmd listens on loopback only (FSMD_API_KEYS_FILE)")
	fs.StringVar(&r.jwt.JWKSFile, "jwt-jwks", env("FSMD_JWT_JWKS", ""), "accept bearer tokens (JWT) signed by the keys of this JWKS file (RS256, ES256, EdDSA), beside API keys (FSMD_JWT_JWKS)")
	fs.StringVar(&r.jwt.Issuer, "jwt-issuer", env("FSMD_JWT_ISSUER", ""), "the iss a token must have (FSMD_JWT_ISSUER)")
	fs.StringVar(&r.jwt.Audience, "jwt-audience", env("FSMD_JWT_AUDIENCE", ""), "a value a token's aud must hold (FSMD_JWT_AUDIENCE)")
	fs.StringVar(&r.jwt.NameClaim, "jwt-name-claim", env("FSMD_JWT_NAME_CLAIM", "sub"), "the claim naming the caller (FSMD_JWT_NAME_CLAIM)")
	fs.StringVar(&r.jwt.GroupsClaim, "jwt-groups-claim", env("FSMD_JWT_GROUPS_CLAIM", "groups"), "the claim listing the caller's groups (FSMD_JWT_GROUPS_CLAIM)")
	fs.StringVar(&r.jwt.RoleClaim, "jwt-role-claim", env("FSMD_JWT_ROLE_CLAIM", "fsmd_role"), "the claim giving the caller's role: read, write or admin (FSMD_JWT_ROLE_CLAIM)")
	fs.StringVar(&r.logLevel, "log-level", env("FSMD_LOG_LEVEL", "info"), "the least level logged: debug, info (a line per request, the access log), warn or error (FSMD_LOG_LEVEL)")
	fs.StringVar(&r.jwtSkew, "jwt-skew", env("FSMD_JWT_SKEW", "30s"), "the clock difference allowed when checking a token's exp, nbf and iat (FSMD_JWT_SKEW)")
	fs.BoolVar(&c.Insecure, "insecure", false, "listen beyond loopback without API keys: anyone who reaches the port may do anything")
	var metricsAuth bool
	metricsAuth, r.metricsAuthErr = envBool("FSMD_METRICS_AUTH")
	fs.BoolVar(&c.MetricsNeedKey, "metrics-auth", metricsAuth, "/metrics needs a key (the read role) (FSMD_METRICS_AUTH)")
	fs.StringVar(&r.proxies, "trusted-proxies", env("FSMD_TRUSTED_PROXIES", ""), "the networks of the reverse proxies in front of fsmd, comma-separated: X-Forwarded-For from them names the client whose failed authentications are counted; from others it is ignored (FSMD_TRUSTED_PROXIES)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("FSMD_TLS_CERT", ""), "serve HTTPS with this certificate (PEM), with --tls-key (FSMD_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("FSMD_TLS_KEY", ""), "the private key (PEM) of --tls-cert (FSMD_TLS_KEY)")
	fs.StringVar(&r.allow, "webhook-allow", env("FSMD_WEBHOOK_ALLOW", ""), "networks webhooks may be delivered to although refused by default (link-local, cloud metadata), comma-separated (FSMD_WEBHOOK_ALLOW)")
	fs.StringVar(&r.deny, "webhook-deny", env("FSMD_WEBHOOK_DENY", ""), `networks webhooks may not be delivered to, comma-separated; "private" for loopback and private networks (FSMD_WEBHOOK_DENY)`)
	fs.StringVar(&r.timerPoll, "timer-poll", env("FSMD_TIMER_POLL", defaultTimerPoll), "how often to look for due timers when none were due: the most a timer waits past its deadline, besides the work (FSMD_TIMER_POLL)")
	fs.StringVar(&r.metricsRefresh, "metrics-refresh", env("FSMD_METRICS_REFRESH", defaultMetricsRefresh), "how often the counts /metrics shows (instances by state, due timers, outbox rows, migrations) are read from the database: the most they lag (FSMD_METRICS_REFRESH)")
	fs.StringVar(&r.exprBudget, "expr-budget", env("FSMD_EXPR_BUDGET", defaultExprBudget), "the time the expressions of one event (guards, set, timer at) may take together, from 1ms to 10s; past it the event is refused with expression_failed (FSMD_EXPR_BUDGET)")
	fs.StringVar(&r.retentionEvery, "retention-every", env("FSMD_RETENTION_EVERY", defaultRetentionEvery), "the pause between two passes of the retention job, which deletes the final instances past their definition's retention, from 1s to 24h (FSMD_RETENTION_EVERY)")
	fs.StringVar(&r.groupCommit, "group-commit", env("FSMD_GROUP_COMMIT", defaultGroupCommit), "how many events written at the same time for different instances may share one commit, from 0 to 1024: 1 commits each event alone, 0 is the database's default (64 on SQLite, off on PostgreSQL) (FSMD_GROUP_COMMIT)")
	return r
}

// read completes the configuration from the flags fs parsed (the rest are its positional
// arguments: none is expected). It reports the first thing wrong, in the order of the flags'
// dependencies: the keys decide where to listen.
func (c *serveConfig) read(fs *flag.FlagSet, rest []string, r *serveFlags) error {
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	if r.watchErr != nil && !isSet(fs, "watch") {
		return r.watchErr
	}
	c.WebhookSecret = os.Getenv("FSMD_WEBHOOK_SECRET")
	if r.metricsAuthErr != nil && !isSet(fs, "metrics-auth") {
		return r.metricsAuthErr
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", r.logLevel)
	}
	var err error
	if r.keysFile != "" {
		if c.Keys, err = auth.ParseFile(r.keysFile); err != nil {
			return fmt.Errorf("--api-keys: %v", err)
		}
	}
	if r.jwt.JWKSFile != "" {
		skew, err := time.ParseDuration(r.jwtSkew)
		if err != nil || skew < 0 || skew > 10*time.Minute {
			return fmt.Errorf("--jwt-skew %q: want a duration from 0s to 10m", r.jwtSkew)
		}
		r.jwt.Skew = max(skew, time.Nanosecond) // 0 would mean the default
		if c.Tokens, err = auth.NewTokens(r.jwt); err != nil {
			return fmt.Errorf("--jwt-jwks: %v", err)
		}
	} else if isSet(fs, "jwt-issuer") || isSet(fs, "jwt-audience") {
		return errors.New("--jwt-issuer and --jwt-audience need --jwt-jwks")
	}
	addrGiven := isSet(fs, "addr") || os.Getenv("FSMD_ADDR") != ""
	authenticated := (c.Keys != nil && c.Keys.Len() > 0) || c.Tokens != nil
	if c.Addr, err = listenAddr(c.Addr, authenticated, addrGiven, c.Insecure); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	var v values // the first value that does not parse wins
	c.Shutdown = v.duration("--shutdown-timeout", r.shutdown)
	c.TrustedProxies = v.networks("--trusted-proxies", r.proxies)
	c.WebhookAllow = v.networks("--webhook-allow", r.allow)
	c.WebhookDeny = v.networks("--webhook-deny", r.deny)
	c.TimerPoll = v.duration("--timer-poll", r.timerPoll)
	c.MetricsRefresh = v.duration("--metrics-refresh", r.metricsRefresh)
	c.ExprBudget = v.duration("--expr-budget", r.exprBudget)
	c.RetentionEvery = v.duration("--retention-every", r.retentionEvery)
	c.GroupCommit = v.integer("--group-commit", r.groupCommit)
	return v.err
}
