package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// pgbenchResult is what the pgbench phase measured.
type pgbenchResult struct {
	count  int     // transactions in the measured run
	tps    float64 // pgbench's own figure, without the initial connection time
	failed int
	lat    latencies // from its per-transaction log (-l)
	cpu    cpuUse    // over the measured run; client is pgbench
}

// findPgbench returns the pgbench to run: the one given, else the one on PATH, else the newest
// under /usr/lib/postgresql (Debian and Ubuntu keep it there).
func findPgbench(given string) (string, error) {
	if given != "" {
		return exec.LookPath(given)
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(matches) == 0 {
		return "", errors.New("pgbench not found: install PostgreSQL's client tools or pass -pgbench")
	}
	// The newest major version: compare numerically, 9 < 15.
	best, bestV := "", -1
	for _, m := range matches {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if v > bestV {
			best, bestV = m, v
		}
	}
	return best, nil
}

// pgEnv is the environment that points libpq (pgbench) at a database of the server u names.
func pgEnv(u, database string) ([]string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "PGHOST="+pu.Hostname(), "PGDATABASE="+database)
	if p := pu.Port(); p != "" {
		env = append(env, "PGPORT="+p)
	}
	if pu.User != nil {
		env = append(env, "PGUSER="+pu.User.Username())
		if pw, ok := pu.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
		}
	}
	if m := pu.Query().Get("sslmode"); m != "" {
		env = append(env, "PGSSLMODE="+m)
	}
	return env, nil
}

// pgbenchCommand returns a function that runs the pgbench bin on database with the arguments
// given, in the scratch folder, and returns its output.
func (b *bench) pgbenchCommand(ctx context.Context, bin, database string) (func(args ...string) (string, error), error) {
	env, err := pgEnv(b.c.DatabaseURL, database)
	if err != nil {
		return nil, err
	}
	return func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env, cmd.Dir = env, b.dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("pgbench %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}, nil
}

// runPgbench is the pgbench phase: a fresh database initialized at the scale, a warm-up, then
// pgbench -N with the clients for the duration, each transaction's time logged.
func (b *bench) runPgbench(ctx context.Context, pg *dbtest.Server, bin string) (pgbenchResult, error) {
	name, _, err := b.createDatabase(ctx, pg, "fsmd_bench_pgbench_")
	if err != nil {
		return pgbenchResult{}, err
	}
	pgbench, err := b.pgbenchCommand(ctx, bin, name)
	if err != nil {
		return pgbenchResult{}, err
	}
	b.progress("pgbench -i -s %d on database %s", b.c.PgbenchScale, name)
	if _, err := pgbench("-i", "-q", "-s", strconv.Itoa(b.c.PgbenchScale)); err != nil {
		return pgbenchResult{}, err
	}
	b.checkpoint(ctx, pg)
	c := strconv.Itoa(b.c.Clients)
	if b.c.Warmup > 0 {
		if _, err := pgbench("-N", "-c", c, "-j", c, "-T", strconv.Itoa(seconds(b.c.Warmup))); err != nil {
			return pgbenchResult{}, err
		}
	}
	b.progress("pgbench -N -c %s -j %s -T %d", c, c, seconds(b.c.Duration))
	// -n: the warm-up vacuumed already, so that the CPU measured is the transactions'.
	return b.pgbenchMeasured(pgbench, "pgbench_log", []string{"-n", "-N", "-c", c, "-j", c, "-T", strconv.Itoa(seconds(b.c.Duration))})
}

// pgbenchMeasured runs a measured pgbench with args, each transaction's time logged (-l, to files
// named after logName), and returns its summary, latencies and the CPU used meanwhile.
func (b *bench) pgbenchMeasured(pgbench func(args ...string) (string, error), logName string, args []string) (pgbenchResult, error) {
	prefix := filepath.Join(b.dir, logName)
	cpuStart := sampleCPU(0)
	out, err := pgbench(append(args, "-l", "--log-prefix="+prefix)...)
	if err != nil {
		return pgbenchResult{}, err
	}
	cpu := cpuStart.use(sampleCPU(0))
	res, err := parsePgbench(out)
	if err != nil {
		return res, err
	}
	res.cpu = cpu
	logs, err := filepath.Glob(prefix + ".*")
	if err != nil || len(logs) == 0 {
		return res, fmt.Errorf("pgbench wrote no transaction log (%s.*)", prefix)
	}
	var all []time.Duration
	for _, l := range logs {
		d, err := readPgbenchLog(l)
		if err != nil {
			return res, err
		}
		all = append(all, d...)
	}
	res.lat = summarize(all)
	return res, nil
}

// seconds rounds a duration to whole seconds, at least 1 (pgbench -T takes seconds).
func seconds(d time.Duration) int { return max(1, int(d.Round(time.Second)/time.Second)) }

var (
	tpsRe       = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	processedRe = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	failedRe    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
)

// parsePgbench reads pgbench's summary.
func parsePgbench(out string) (pgbenchResult, error) {
	var r pgbenchResult
	m := tpsRe.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no tps in pgbench's output:\n%s", out)
	}
	r.tps, _ = strconv.ParseFloat(m[1], 64)
	if m := processedRe.FindStringSubmatch(out); m != nil {
		r.count, _ = strconv.Atoi(m[1])
	}
	if m := failedRe.FindStringSubmatch(out); m != nil {
		r.failed, _ = strconv.Atoi(m[1])
	}
	return r, nil
}

// readPgbenchLog reads the transaction times of a pgbench -l log: each line is "client_id
// transaction_no time script_no time_epoch time_us [...]", time in microseconds.
func readPgbenchLog(path string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
		}
		out = append(out, time.Duration(us)*time.Microsecond)
	}
	return out, sc.Err()
}
