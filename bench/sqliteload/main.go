// Command sqliteload measures fsmd's events per second on SQLite, the embedded default: builds run
// side by side, interleaved, each `fsmd serve` on a fresh SQLite file (WAL, synchronous commits)
// with the account definition of bench/testdata, 8 clients posting deposits to random instances
// over HTTP, one request at a time. It stands in until bench/load has an SQLite mode.
//
//	go run ./bench/sqliteload -run old=/tmp/fsmd-gc/old -run new=/tmp/fsmd-gc/new -rounds 3
//	go run ./bench/sqliteload -run 'off=/tmp/fsmd-gc/new --group-commit 1' -run on=/tmp/fsmd-gc/new
//
// Each -run is LABEL=BINARY [FLAGS...]: a binary built beforehand and extra flags of fsmd serve.
// After each run the instances' revisions are added up and compared with the events acknowledged.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type runSpec struct {
	label, bin string
	args       []string
}

type runs []runSpec

func (r *runs) String() string { return fmt.Sprint(len(*r), " runs") }
func (r *runs) Set(s string) error {
	label, rest, ok := strings.Cut(s, "=")
	f := strings.Fields(rest)
	if !ok || label == "" || len(f) == 0 {
		return errors.New("want LABEL=BINARY [FLAGS...]")
	}
	*r = append(*r, runSpec{label: label, bin: f[0], args: f[1:]})
	return nil
}

type config struct {
	clients, instances, rounds int
	duration, warmup           time.Duration
	definitions, dir, log      string
}

func main() {
	var c config
	var rs runs
	flag.Var(&rs, "run", "LABEL=BINARY [FLAGS...]: a build to measure, with extra flags of fsmd serve (repeat; run in turn each round)")
	flag.IntVar(&c.clients, "clients", 8, "concurrent clients, 1 to 256")
	flag.IntVar(&c.instances, "instances", 1000, "instances, 1 to 100000")
	flag.IntVar(&c.rounds, "rounds", 2, "rounds: each runs every -run once, 1 to 20")
	flag.DurationVar(&c.duration, "duration", 15*time.Second, "measured time of a run, up to 10m")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up of a run, not counted")
	flag.StringVar(&c.definitions, "definitions", "bench/testdata", "the folder with account.yaml")
	flag.StringVar(&c.dir, "dir", "", "where the SQLite files go (a temporary folder when empty)")
	flag.StringVar(&c.log, "log", "", "append fsmd's log (stderr) to this file (dropped when empty)")
	flag.Parse()
	if len(rs) == 0 || c.clients < 1 || c.clients > 256 || c.instances < 1 || c.instances > 100000 || c.rounds < 1 || c.rounds > 20 ||
		c.duration <= 0 || c.duration > 10*time.Minute || c.warmup < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(c, rs); err != nil {
		fmt.Fprintln(os.Stderr, "sqliteload:", err)
		os.Exit(1)
	}
}

type result struct {
	rate          float64
	p50, p99, max time.Duration
	acked, errors int64
	load          string // the load average when the run ended
}

func run(c config, rs runs) error {
	dir := c.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "sqliteload-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	defs, err := filepath.Abs(c.definitions)
	if err != nil {
		return err
	}
	fmt.Printf("sqliteload: %d clients, %v measured after %v warm-up, %d instances, SQLite (WAL, synchronous commits)\n",
		c.clients, c.duration, c.warmup, c.instances)
	fmt.Printf("%-6s %-10s %10s %8s %8s %8s %8s %7s  %s\n", "round", "run", "events/s", "p50 ms", "p99 ms", "max ms", "acked", "errors", "load average")
	all := map[string][]float64{}
	for round := 1; round <= c.rounds; round++ {
		for i, r := range rs {
			db := filepath.Join(dir, fmt.Sprintf("r%d-%d.db", round, i))
			res, err := runOne(c, r, defs, db)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", r.label, round, err)
			}
			all[r.label] = append(all[r.label], res.rate)
			fmt.Printf("%-6d %-10s %10.1f %8.2f %8.2f %8.2f %8d %7d  %s\n", round, r.label, res.rate, ms(res.p50), ms(res.p99), ms(res.max),
				res.acked, res.errors, res.load)
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(db + suffix)
			}
		}
	}
	for _, r := range rs[1:] {
		var ratios []string
		for k, v := range all[r.label] {
			ratios = append(ratios, fmt.Sprintf("%.2f", v/all[rs[0].label][k]))
		}
		fmt.Printf("%s/%s by round: %s\n", r.label, rs[0].label, strings.Join(ratios, " "))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runOne starts the binary on a fresh database, creates the instances, runs the clients and checks
// that the revisions add up.
func runOne(c config, r runSpec, defs, db string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.warmup+c.duration+5*time.Minute)
	defer cancel()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", db, "--definitions", defs, "--log-level", "warn"}, r.args...)
	logTo := io.Discard
	if c.log != "" {
		f, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return result{}, err
		}
		defer f.Close() // after the process is stopped and its log read (deferred below)
		logTo = f
	}
	cmd := exec.Command(r.bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return result{}, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	addr := make(chan string, 1)
	logged := make(chan struct{}) // closed when the log is read to its end
	go func() {                   // the address from the "fsmd serving" line; the log to -log
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "fsmd serving" {
				addr <- rec.Addr
			}
			fmt.Fprintf(logTo, "%s\n", sc.Bytes())
		}
		_, _ = io.Copy(logTo, stderr)
	}()
	defer func() { // SIGTERM, then SIGKILL after 15 s
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-logged: // the pipe closes when the process has exited
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-logged
		}
		_ = cmd.Wait()
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(60 * time.Second):
		return result{}, errors.New("fsmd did not start within 60 s")
	}
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if err := waitReady(ctx, hc, base); err != nil {
		return result{}, err
	}
	if err := createInstances(ctx, hc, base, c); err != nil {
		return result{}, err
	}
	res := load(ctx, hc, base, c)
	sum, err := sumRevisions(ctx, hc, base)
	if err != nil {
		return result{}, err
	}
	if sum != res.acked {
		return res, fmt.Errorf("audit check: %d events acknowledged, %d counted in the revisions", res.acked, sum)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return res, nil
}

func waitReady(ctx context.Context, hc *http.Client, base string) error {
	for range 3000 {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("fsmd not ready within 30 s")
}

func instanceID(i int) string { return fmt.Sprintf("acct-%06d", i) }

func createInstances(ctx context.Context, hc *http.Client, base string, c config) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range c.clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= c.instances || first.Load() != nil {
					return
				}
				body := fmt.Sprintf(`{"definition":"account","id":%q,"context":{"owner":"bench","balance":0}}`, instanceID(i))
				if status, msg, err := post(ctx, hc, base+"/v1/instances", []byte(body)); err != nil || status/100 != 2 {
					e := fmt.Errorf("create %s: %d %s %v", instanceID(i), status, msg, err)
					first.CompareAndSwap(nil, &e)
					return
				}
			}
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

func post(ctx context.Context, hc *http.Client, u string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, "", nil
	}
	return resp.StatusCode, string(msg), nil
}

// load runs the clients through the warm-up and the measured time: a request counts when it
// begins in the measured time; the rate divides by the time to the last answer.
func load(ctx context.Context, hc *http.Client, base string, c config) result {
	start := time.Now()
	from := start.Add(c.warmup)
	end := from.Add(c.duration)
	lats := make([][]time.Duration, c.clients)
	lasts := make([]time.Time, c.clients)
	var acked, failed atomic.Int64
	var wg sync.WaitGroup
	for n := range c.clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(n), uint64(start.UnixNano())))
			for seq := 0; ; seq++ {
				t := time.Now()
				if !t.Before(end) || ctx.Err() != nil {
					return
				}
				body := `{"event":"deposit","payload":{"amount":` + strconv.Itoa(1+rng.IntN(1000)) + `,"reference":"c` + strconv.Itoa(n) + "-" +
					strconv.Itoa(seq) + `"}}`
				status, msg, err := post(ctx, hc, base+"/v1/instances/"+instanceID(rng.IntN(c.instances))+"/events", []byte(body))
				done := time.Now()
				if err != nil || status != http.StatusOK {
					if failed.Add(1) == 1 {
						fmt.Fprintf(os.Stderr, "first failure: %d %s %v\n", status, msg, err)
					}
					continue
				}
				acked.Add(1)
				if !t.Before(from) {
					lats[n] = append(lats[n], done.Sub(t))
					lasts[n] = done
				}
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	last := end
	for n := range c.clients {
		all = append(all, lats[n]...)
		if lasts[n].After(last) {
			last = lasts[n]
		}
	}
	slices.Sort(all)
	res := result{acked: acked.Load(), errors: failed.Load()}
	if len(all) > 0 {
		res.rate = float64(len(all)) / last.Sub(from).Seconds()
		res.p50, res.p99, res.max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
	return res
}

// sumRevisions adds up the instances' revisions through the API.
func sumRevisions(ctx context.Context, hc *http.Client, base string) (int64, error) {
	var sum int64
	after := ""
	for range 1000 {
		u := base + "/v1/instances?definition=account&limit=1000"
		if after != "" {
			u += "&after=" + after
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		var page struct {
			Items []struct {
				Revision int64 `json:"revision"`
			} `json:"items"`
			Next string `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("list instances: %s %v", resp.Status, err)
		}
		for _, it := range page.Items {
			sum += it.Revision
		}
		if page.Next == "" {
			return sum, nil
		}
		after = page.Next
	}
	return 0, errors.New("list instances: more than 1000 pages")
}
