// Command load measures fsmd under load on PostgreSQL and compares it with what the database can
// do, in one run (see bench/README.md):
//
//	go run ./bench/load -clients 8 -duration 20s
//
// It creates a fresh database, builds fsmd and runs it as a child process on that database with the
// definition of bench/testdata (an account taking deposits: a guarded self-transition with a set),
// creates the instances, and has the clients post events over HTTP on 127.0.0.1 for the duration.
// Then, with as many clients for as long, pgbench replays the statement fsmd sends per event on
// fsmd's database and instances (the ceiling, ceiling.go), and pgbench -N (simple-update) runs on a
// pgbench database of its own. It prints the three, fsmd's ratios to both, fsmd's peak RSS, and a
// last line starting with "RESULT" for scripts. The databases are dropped at the end.
//
// With -database sqlite it runs the same load against fsmd on its embedded SQLite (a file in a
// scratch folder), and no pgbench.
//
// With -log-compare it measures side by side fsmd with and without its access log (logcompare.go).
//
// With -auth-compare it measures instead, side by side in alternating rounds, the same load on fsmd
// without auth, with an API key and with a bearer token, the last two on a definition whose branch
// has allow and a guard on the actor (auth.go).
//
// fsmd runs as a separate process, not in this one, so that the server has its own Go runtime
// (scheduler, heap, GC) as in production and none of the load generator's work is counted as the
// server's, or the other way round; the binary is the one `make build` makes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// config is what a run measures. The zero value is not usable: flags set the defaults.
type config struct {
	Clients        int           // concurrent HTTP clients, and pgbench's -c and -j
	Duration       time.Duration // of each measured phase
	Warmup         time.Duration // load before each measured phase, not counted
	Instances      int           // instances created before the load
	DatabaseURL    string        // the PostgreSQL server (its database part is replaced)
	Definitions    string        // the folder of definitions fsmd serves; "" for bench/testdata
	Fsmd           string        // a built fsmd; "" builds ./cmd/fsmd
	Pgbench        string        // pgbench; "" finds it
	PgbenchScale   int           // pgbench -i -s
	IdempotencyKey bool          // send an Idempotency-Key with every event
	CPUProfile     string        // write a CPU profile of fsmd during the measured phase here
	APIKey         bool          // run fsmd with an API keys file and send a key with every request
	AuthCompare    bool          // measure no auth, API keys with allow, tokens with allow, side by side
	Rounds         int           // with AuthCompare: rounds, each running every configuration once
	TokenAlg       string        // with AuthCompare: the tokens' algorithm (EdDSA, ES256, RS256)
	Database       string        // postgres, sqlite (fsmd's embedded default) or citus; pgbench on postgres only
	CitusURL       string        // -database citus: the coordinator's database
	LogLevel       string        // fsmd's --log-level; "" for its default (info)
	LogCompare     bool          // measure fsmd with --log-level warn and info, side by side
}

// Limits: the run stays small and local whatever the flags say.
const (
	maxClients   = 256
	maxDuration  = 10 * time.Minute
	maxInstances = 100_000
	maxRounds    = 20
)

// Validate refuses a configuration out of the limits, or a server that is not on this machine.
func (c config) Validate() error {
	switch {
	case c.Clients < 1 || c.Clients > maxClients:
		return fmt.Errorf("-clients %d: want 1 to %d", c.Clients, maxClients)
	case c.Duration < time.Second || c.Duration > maxDuration:
		return fmt.Errorf("-duration %v: want 1s to %v", c.Duration, maxDuration)
	case c.Warmup < 0 || c.Warmup > c.Duration:
		return fmt.Errorf("-warmup %v: want 0 to the duration", c.Warmup)
	case c.Instances < 1 || c.Instances > maxInstances:
		return fmt.Errorf("-instances %d: want 1 to %d", c.Instances, maxInstances)
	case c.PgbenchScale < 1 || c.PgbenchScale > 100:
		return fmt.Errorf("-pgbench-scale %d: want 1 to 100", c.PgbenchScale)
	case c.Rounds < 1 || c.Rounds > maxRounds:
		return fmt.Errorf("-rounds %d: want 1 to %d", c.Rounds, maxRounds)
	case c.AuthCompare && (c.APIKey || c.CPUProfile != "" || c.Definitions != ""):
		return errors.New("-auth-compare chooses the credentials and definitions and runs fsmd several times: leave out -api-key, -definitions and -cpuprofile")
	case c.LogCompare && (c.AuthCompare || c.APIKey || c.CPUProfile != "" || c.LogLevel != ""):
		return errors.New("-log-compare chooses fsmd's log level and runs fsmd twice: leave out -auth-compare, -api-key, -cpuprofile and -log-level")
	case c.Database != "postgres" && c.Database != "sqlite" && c.Database != "citus":
		return fmt.Errorf("-database %q: want postgres, sqlite or citus", c.Database)
	case c.Database == "citus" && c.CitusURL == "":
		return fmt.Errorf("-database citus: want -citus-url (or $%s), the coordinator's database with the citus extension", dbtest.EnvCitusURL)
	case c.Database == "postgres" && !c.AuthCompare && !c.LogCompare && c.Instances < c.Clients:
		return fmt.Errorf("-instances %d: want at least -clients (%d): the ceiling gives each client instances of its own", c.Instances, c.Clients)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if _, ok := tokenAlgs[c.TokenAlg]; !ok {
		return fmt.Errorf("-token-alg %q: want EdDSA, ES256 or RS256", c.TokenAlg)
	}
	if c.Database != "postgres" {
		return nil // no pgbench: -database-url is not used
	}
	u, err := url.Parse(c.DatabaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("-database-url: want a postgres:// URL")
	}
	if !loopback(u.Hostname()) {
		return fmt.Errorf("-database-url: the server must be on this machine (127.0.0.1, ::1 or localhost), not %q", u.Hostname())
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.IntVar(&c.Clients, "clients", 8, "concurrent clients, for fsmd and for pgbench (-c, -j)")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long each measured phase lasts")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before each measured phase, not counted")
	fs.IntVar(&c.Instances, "instances", 1000, "instances to create; each event goes to one drawn at random")
	fs.StringVar(&c.DatabaseURL, "database-url", dbtest.PostgresURL(), "the PostgreSQL server, on this machine ($FSMD_TEST_DATABASE_URL when set)")
	fs.StringVar(&c.Definitions, "definitions", "", "the definitions folder fsmd serves, with the account definition (default: the module's bench/testdata)")
	fs.StringVar(&c.Fsmd, "fsmd", "", "a built fsmd binary (default: build ./cmd/fsmd)")
	fs.StringVar(&c.Pgbench, "pgbench", "", "the pgbench binary (default: from PATH or /usr/lib/postgresql/*/bin)")
	fs.IntVar(&c.PgbenchScale, "pgbench-scale", 10, "pgbench -i -s")
	fs.BoolVar(&c.IdempotencyKey, "idempotency-key", false, "send an Idempotency-Key with every event (one more lookup per event)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of fsmd over the measured phase to this file")
	fs.BoolVar(&c.APIKey, "api-key", false, "run fsmd with API keys and send a key (role write) with every request: what authentication costs")
	fs.BoolVar(&c.AuthCompare, "auth-compare", false, "instead of fsmd against pgbench, measure side by side fsmd without auth, with an API key and with a bearer token (JWT), the last two on a definition with allow and a guard on the actor: what authorization costs")
	fs.IntVar(&c.Rounds, "rounds", 3, "with -auth-compare: rounds, each measuring every configuration once, in an order that turns by one each round")
	fs.StringVar(&c.Database, "database", "postgres", "the database fsmd runs on: postgres (with the ceiling and pgbench -N beside it), sqlite (fsmd's embedded default, a file in a scratch folder; no pgbench) or citus (a schema of its own in -citus-url's database, distributed by fsmd; no pgbench)")
	fs.StringVar(&c.CitusURL, "citus-url", os.Getenv(dbtest.EnvCitusURL), "with -database citus: the Citus coordinator's database ($"+dbtest.EnvCitusURL+" when set)")
	fs.StringVar(&c.LogLevel, "log-level", "", "fsmd's --log-level (default: fsmd's, info: a line per request)")
	fs.BoolVar(&c.LogCompare, "log-compare", false, "instead of fsmd against pgbench, measure side by side fsmd with --log-level warn and info (its access log): what the access log costs")
	fs.StringVar(&c.TokenAlg, "token-alg", "EdDSA", "with -auth-compare: the algorithm of the bearer token's fresh key: EdDSA (Ed25519), ES256 (P-256) or RS256 (RSA 2048)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.Validate()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 2
	}
	if err := newBench(c, stdout, stderr).run(ctx); err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 1
	}
	return 0
}

// bench is one run: its configuration, its scratch folder, and what it must undo at the end.
type bench struct {
	c            config
	out, log     io.Writer
	dir          string // scratch: the fsmd binary, its log, pgbench's logs
	cleanups     []func()
	starts       int            // fsmd processes started, to name their logs
	dbs          int            // SQLite files made, to name them
	citus        *dbtest.Server // -database citus: the coordinator's database
	citusVersion string         // the citus extension's version, as "13.2-1"
}

func newBench(c config, stdout, stderr io.Writer) *bench {
	return &bench{c: c, out: stdout, log: stderr}
}

// cleanup registers f to run at the end of the run, last registered first.
func (b *bench) cleanup(f func()) { b.cleanups = append(b.cleanups, f) }

// createDatabase creates a database named prefix<random> on the server and returns its name and
// URL; the bench drops it at the end of the run (and so does an interrupted run).
func (b *bench) createDatabase(ctx context.Context, pg *dbtest.Server, prefix string) (string, string, error) {
	u, drop, err := pg.CreateDatabase(ctx, prefix)
	if err != nil {
		return "", "", err
	}
	b.cleanup(func() {
		if err := drop(); err != nil {
			b.progress("%v", err)
		}
	})
	pu, err := url.Parse(u)
	if err != nil {
		return "", "", err
	}
	return strings.TrimPrefix(pu.Path, "/"), u, nil
}

// fsmdDatabase makes the database of an fsmd process and returns its name and the URL fsmd gets:
// a fresh PostgreSQL database, or without a server (-database sqlite) a new SQLite file in the
// scratch folder, which fsmd opens as it opens any (WAL, and SQLite's synchronous=FULL, which fsmd
// keeps).
func (b *bench) fsmdDatabase(ctx context.Context, pg *dbtest.Server) (string, string, error) {
	if b.citus != nil {
		u, drop, err := b.citus.CreateSchema(ctx, b.c.CitusURL, "fsmd_bench_", 0)
		if err != nil {
			return "", "", err
		}
		b.cleanup(func() {
			if err := drop(); err != nil {
				b.progress("%v", err)
			}
		})
		return "citus", u, nil
	}
	if pg == nil {
		b.dbs++
		path := filepath.Join(b.dir, fmt.Sprintf("fsmd-%d.db", b.dbs))
		return path, "sqlite:" + path, nil
	}
	return b.createDatabase(ctx, pg, "fsmd_bench_")
}

// checkpoint flushes the server's dirty pages, so that a checkpoint started by the previous phase
// (creating instances, pgbench -i) does not land in the measured one. A role that may not
// checkpoint only loses that. Without a server (SQLite) it does nothing.
func (b *bench) checkpoint(ctx context.Context, pg *dbtest.Server) {
	if pg == nil {
		return
	}
	if _, err := pg.DB().ExecContext(ctx, "CHECKPOINT"); err != nil {
		b.progress("CHECKPOINT: %v (the measured phase may include one)", err)
	}
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "load: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) (err error) {
	defer func() {
		for i := len(b.cleanups) - 1; i >= 0; i-- {
			b.cleanups[i]()
		}
	}()
	if b.dir, err = os.MkdirTemp("", "fsmd-bench-"); err != nil {
		return err
	}
	b.cleanup(func() { os.RemoveAll(b.dir) })
	if b.c.Definitions == "" {
		root, err := moduleRoot(ctx)
		if err != nil {
			return err
		}
		b.c.Definitions = filepath.Join(root, "bench", "testdata")
	}
	pgbenchPath, version := "", ""
	var pg *dbtest.Server // nil on SQLite
	if b.c.Database == "postgres" {
		if !b.c.AuthCompare && !b.c.LogCompare { // the comparisons run no pgbench
			if pgbenchPath, err = findPgbench(b.c.Pgbench); err != nil {
				return err
			}
		}
		if pg, err = dbtest.OpenServer(ctx, b.c.DatabaseURL); err != nil {
			return err
		}
		b.cleanup(func() { pg.Close() })
		if err := pg.DB().QueryRowContext(ctx, "SHOW server_version").Scan(&version); err != nil {
			return fmt.Errorf("PostgreSQL at %s: %w", hostPort(b.c.DatabaseURL), err)
		}
	}

	if b.c.Database == "citus" {
		if b.citus, err = dbtest.OpenServer(ctx, b.c.CitusURL); err != nil {
			return err
		}
		b.cleanup(func() { b.citus.Close() })
		if err := b.citus.DB().QueryRowContext(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'citus'").Scan(&b.citusVersion); err != nil {
			return fmt.Errorf("citus at %s: %w", hostPort(b.c.CitusURL), err)
		}
	}

	b.progress("building fsmd")
	bin, err := b.build(ctx)
	if err != nil {
		return err
	}
	if b.c.AuthCompare {
		return b.compareAuth(ctx, pg, bin, version)
	}
	if b.c.LogCompare {
		return b.compareLog(ctx, pg, bin, version)
	}
	v := variant{name: "none", auth: authNone, definitions: b.c.Definitions}
	if b.c.APIKey {
		v.name, v.auth = "key", authKey
	}
	fsmdRes, err := b.runFsmd(ctx, pg, bin, v)
	if err != nil {
		return err
	}
	if pg == nil {
		b.reportSQLite(fsmdRes)
		if fsmdRes.errors > 0 {
			return fmt.Errorf("%d fsmd requests failed", fsmdRes.errors)
		}
		return nil
	}
	ceiling, err := b.runCeiling(ctx, pg, pgbenchPath, fsmdRes.dbName, fsmdRes.dbURL)
	if err != nil {
		return err
	}
	pgRes, err := b.runPgbench(ctx, pg, pgbenchPath)
	if err != nil {
		return err
	}
	b.report(version, fsmdRes, ceiling, pgRes)
	if fsmdRes.errors > 0 || ceiling.failed > 0 || pgRes.failed > 0 {
		return fmt.Errorf("%d fsmd requests, %d ceiling and %d pgbench transactions failed", fsmdRes.errors, ceiling.failed, pgRes.failed)
	}
	return nil
}

// databaseName says what fsmd ran on, for a report's first line.
func (b *bench) databaseName(version string) string {
	if b.c.Database == "citus" {
		return fmt.Sprintf("Citus %s, coordinator on %s (fsmd's tables distributed, 32 shards each)", version, hostPort(b.c.CitusURL))
	}
	if b.c.Database == "sqlite" {
		return "SQLite (fsmd's embedded default: a file in a scratch folder, WAL, synchronous FULL)"
	}
	return fmt.Sprintf("PostgreSQL %s on %s", version, hostPort(b.c.DatabaseURL))
}

// ms writes a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func hostPort(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return pu.Host
}

// tail returns the last n lines of a file, for an error message.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
