// Command load measures fsmd under load on PostgreSQL and compares it with pgbench -N on the same
// server, in one run (see bench/README.md):
//
//	go run ./bench/load -clients 8 -duration 20s
//
// It creates a fresh database, builds fsmd and runs it as a child process on that database with the
// definition of bench/testdata (an account taking deposits: a guarded self-transition with a set),
// creates the instances, and has the clients post events over HTTP on 127.0.0.1 for the duration.
// Then it runs pgbench -N (simple-update) with as many clients for as long on a pgbench database of
// its own, and prints both, their ratio, and a last line starting with "RESULT" for scripts. Both
// databases are dropped at the end.
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
	}
	if _, ok := tokenAlgs[c.TokenAlg]; !ok {
		return fmt.Errorf("-token-alg %q: want EdDSA, ES256 or RS256", c.TokenAlg)
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
	c        config
	out, log io.Writer
	dir      string // scratch: the fsmd binary, its log, pgbench's logs
	cleanups []func()
	starts   int // fsmd processes started, to name their logs
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

// checkpoint flushes the server's dirty pages, so that a checkpoint started by the previous phase
// (creating instances, pgbench -i) does not land in the measured one. A role that may not
// checkpoint only loses that.
func (b *bench) checkpoint(ctx context.Context, pg *dbtest.Server) {
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
	pgbenchPath := ""
	if !b.c.AuthCompare { // -auth-compare runs no pgbench
		if pgbenchPath, err = findPgbench(b.c.Pgbench); err != nil {
			return err
		}
	}
	pg, err := dbtest.OpenServer(ctx, b.c.DatabaseURL)
	if err != nil {
		return err
	}
	b.cleanup(func() { pg.Close() })
	var version string
	if err := pg.DB().QueryRowContext(ctx, "SHOW server_version").Scan(&version); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", hostPort(b.c.DatabaseURL), err)
	}

	b.progress("building fsmd")
	bin, err := b.build(ctx)
	if err != nil {
		return err
	}
	if b.c.AuthCompare {
		return b.compareAuth(ctx, pg, bin, version)
	}
	v := variant{name: "none", auth: authNone, definitions: b.c.Definitions}
	if b.c.APIKey {
		v.name, v.auth = "key", authKey
	}
	fsmdRes, err := b.runFsmd(ctx, pg, bin, v)
	if err != nil {
		return err
	}
	pgRes, err := b.runPgbench(ctx, pg, pgbenchPath)
	if err != nil {
		return err
	}
	b.report(version, fsmdRes, pgRes)
	if fsmdRes.errors > 0 || pgRes.failed > 0 {
		return fmt.Errorf("%d fsmd requests and %d pgbench transactions failed", fsmdRes.errors, pgRes.failed)
	}
	return nil
}

// Targets of issue 3: fsmd at least 0.6 times pgbench -N at 8 clients, p99 under 20 ms. The
// RESULT line's target is met when both are.
const (
	targetRatio = 0.6
	targetP99   = 20 * time.Millisecond
)

func (b *bench) report(version string, f fsmdResult, p pgbenchResult) {
	w := b.out
	fmt.Fprintf(w, "\nfsmd load: %d clients, %v measured after %v warm-up, %d instances, PostgreSQL %s on %s\n",
		b.c.Clients, b.c.Duration, b.c.Warmup, b.c.Instances, version, hostPort(b.c.DatabaseURL))
	fmt.Fprintf(w, "%-22s %8s %10s %9s %9s %9s %9s %7s\n", "", "count", "per s", "p50", "p90", "p99", "max", "errors")
	row := func(name string, n int, rate float64, l latencies, errs int) {
		fmt.Fprintf(w, "%-22s %8d %10.1f %9s %9s %9s %9s %7d\n", name, n, rate,
			ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max), errs)
	}
	events := "fsmd events"
	if b.c.IdempotencyKey {
		events += " (idem. key)"
	}
	row(events, f.count, f.rate, f.lat, f.errors)
	row("pgbench -N", p.count, p.tps, p.lat, p.failed)
	if f.cpu.machine >= 0 {
		fmt.Fprintf(w, "CPU per event or transaction, in microseconds (%d cores; busy: the whole machine):\n", f.cpu.cores)
		fmt.Fprintf(w, "%-22s %8s %10s %9s %9s\n", "", "fsmd", "PostgreSQL", "client", "busy")
		cpuRow(w, events, f.cpu, f.count)
		cpuRow(w, "pgbench -N", p.cpu, p.count)
	}
	fmt.Fprintf(w, "audit check: %d events acknowledged, %d counted in the instances' revisions\n", f.acked, f.revisions)
	ratio := 0.0
	if p.tps > 0 {
		ratio = f.rate / p.tps
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	ratioOK, p99OK := ratio >= targetRatio, f.lat.p99 < targetP99
	fmt.Fprintf(w, "ratio fsmd/pgbench %.2f (target >= %.1f: %s), fsmd p99 %s ms (target < %s ms: %s)\n",
		ratio, targetRatio, verdict(ratioOK), ms(f.lat.p99), ms(targetP99), verdict(p99OK))
	fmt.Fprintf(w, "RESULT clients=%d duration=%s fsmd_events_per_s=%.1f fsmd_p50_ms=%s fsmd_p90_ms=%s fsmd_p99_ms=%s fsmd_max_ms=%s pgbench_tps=%.1f pgbench_p99_ms=%s ratio=%.2f target=%s\n",
		b.c.Clients, b.c.Duration, f.rate, ms(f.lat.p50), ms(f.lat.p90), ms(f.lat.p99), ms(f.lat.max),
		p.tps, ms(p.lat.p99), ratio, verdict(ratioOK && p99OK))
}

// cpuRow writes the CPU a phase used per operation, in microseconds.
func cpuRow(w io.Writer, name string, u cpuUse, n int) {
	per := func(cores float64) string {
		if cores < 0 || n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", cores*u.elapsed.Seconds()*1e6/float64(n))
	}
	fmt.Fprintf(w, "%-22s %8s %10s %9s %9s\n", name, per(u.server), per(u.postgres), per(u.client), per(u.machine))
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
