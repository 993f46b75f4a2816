package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// withKey sends the credential (an API key or a token, when there is one) with every request.
type withKey struct {
	key  string
	next http.RoundTripper
}

func (w withKey) RoundTrip(req *http.Request) (*http.Response, error) {
	if w.key != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+w.key)
	}
	return w.next.RoundTrip(req)
}

// server is fsmd running as a child process.
type server struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:PORT
	pprofAddr string // with -cpuprofile: where the child serves net/http/pprof
	logPath   string
	bearer    string        // what the clients send as Authorization: Bearer (an API key, a token), or ""
	dbName    string        // its database: the PostgreSQL database's name, or the SQLite file
	dbURL     string        // what fsmd was given as --database-url
	client    *http.Client  // sends bearer with every request
	done      chan struct{} // closed when the child has exited
}

// fsmdResult is what the fsmd phase measured.
type fsmdResult struct {
	count     int     // events acknowledged (200) in the measured phase
	rate      float64 // per second
	errors    int     // answers other than 200, and failed requests, warm-up included
	lat       latencies
	acked     int64 // events acknowledged in the whole run, warm-up included
	revisions int64 // the sum of the instances' revisions afterwards: acked when nothing is lost
	cpu       cpuUse
	peakRSS   int64  // fsmd's peak resident set (VmHWM) over its whole life, in bytes; -1 when not read
	dbName    string // the database fsmd ran on (the ceiling replays fsmd's write on its instances)
	dbURL     string
}

// pprofOverlay is compiled into the fsmd binary (go build -overlay, nothing is written to
// cmd/fsmd) only when -cpuprofile is set: it serves net/http/pprof on a port of its own and says
// where on stderr.
const pprofOverlay = `package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench pprof: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "{\"msg\":\"bench pprof\",\"addr\":%q}\n", ln.Addr().String())
	go http.Serve(ln, nil)
}
`

// build builds ./cmd/fsmd into the scratch folder (with the pprof overlay when profiling).
func (b *bench) build(ctx context.Context) (string, error) {
	if b.c.Fsmd != "" && b.c.CPUProfile == "" {
		return b.c.Fsmd, nil
	}
	if b.c.Fsmd != "" {
		return "", errors.New("-cpuprofile builds fsmd itself: leave out -fsmd")
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(b.dir, "fsmd")
	args := []string{"build", "-o", bin}
	if b.c.CPUProfile != "" {
		src := filepath.Join(b.dir, "bench_pprof.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
			return "", err
		}
		overlay, err := json.Marshal(map[string]map[string]string{
			"Replace": {filepath.Join(root, "cmd", "fsmd", "zz_bench_pprof.go"): src}})
		if err != nil {
			return "", err
		}
		ov := filepath.Join(b.dir, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	args = append(args, "./cmd/fsmd")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fsmd: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the folder of fsmd's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the load generator inside fsmd's module (go run ./bench/load)")
	}
	return filepath.Dir(mod), nil
}

// start runs fsmd serve on databaseURL with v's definitions and credentials, listening on a port of
// 127.0.0.1 it picks, and waits until /readyz answers 200. The child's log goes to a file in the
// scratch folder.
func (b *bench) start(ctx context.Context, bin, databaseURL string, v variant) (*server, error) {
	defs, err := filepath.Abs(v.definitions)
	if err != nil {
		return nil, err
	}
	b.starts++
	logName := "fsmd.log"
	if b.starts > 1 {
		logName = fmt.Sprintf("fsmd-%d-%s.log", b.starts, v.name)
	}
	s := &server{logPath: filepath.Join(b.dir, logName), done: make(chan struct{})}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--database-url", databaseURL, "--definitions", defs}
	if b.c.LogLevel != "" {
		args = append(args, "--log-level", b.c.LogLevel)
	}
	args = append(args, v.args...) // after -log-level: a variant's level is the one that counts
	authArgs, bearer, err := b.credentials(v.auth)
	if err != nil {
		return nil, err
	}
	args, s.bearer = append(args, authArgs...), bearer
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FSMD_SHUTDOWN_TIMEOUT=10s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start fsmd: %w", err)
	}
	s.cmd = cmd
	b.cleanup(func() { s.stop(b) })

	// Read the log: the addresses from the first lines, then everything to the file, so that the
	// child never blocks on a full pipe.
	addrs := make(chan [2]string, 1)
	go func() {
		defer close(s.done)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var pprofAddr string
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			if !found {
				var rec struct{ Msg, Addr string }
				if json.Unmarshal(line, &rec) == nil {
					switch rec.Msg {
					case "bench pprof":
						pprofAddr = rec.Addr
					case "fsmd serving":
						addrs <- [2]string{rec.Addr, pprofAddr}
						found = true
					}
				}
			}
			logFile.Write(line)
			logFile.Write([]byte{'\n'})
		}
		_, _ = io.Copy(logFile, stderr)
		_ = cmd.Wait()
	}()

	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	select {
	case a := <-addrs:
		s.base, s.pprofAddr = "http://"+a[0], a[1]
	case <-s.done:
		return nil, fmt.Errorf("fsmd exited before serving: %v\n%s", cmd.ProcessState, tail(s.logPath, 20))
	case <-timeout.C:
		return nil, fmt.Errorf("fsmd did not start within 60 s:\n%s", tail(s.logPath, 20))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-s.done:
			return nil, fmt.Errorf("fsmd exited: %v\n%s", cmd.ProcessState, tail(s.logPath, 20))
		case <-timeout.C:
			return nil, fmt.Errorf("fsmd not ready within 60 s:\n%s", tail(s.logPath, 20))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stop sends SIGTERM and waits for the child to finish its requests, killing it after 15 s.
func (s *server) stop(b *bench) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		b.progress("fsmd did not stop within 15 s of SIGTERM: killing it")
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// runFsmd is the fsmd phase: a fresh database, fsmd (the binary bin) on it as v says, the
// instances, the load, the audit check.
func (b *bench) runFsmd(ctx context.Context, pg *dbtest.Server, bin string, v variant) (fsmdResult, error) {
	srv, err := b.prepare(ctx, pg, bin, v)
	if err != nil {
		return fsmdResult{}, err
	}
	defer srv.client.CloseIdleConnections()
	b.checkpoint(ctx, pg)
	b.progress("posting events: %d clients, %v warm-up then %v measured", b.c.Clients, b.c.Warmup, b.c.Duration)
	res, err := b.load(ctx, srv.client, srv)
	if err != nil {
		return res, err
	}
	res.dbName, res.dbURL = srv.dbName, srv.dbURL
	res.revisions, res.peakRSS, err = b.finish(ctx, srv, res.acked)
	return res, err
}

// prepare creates a fresh database, starts fsmd (the binary bin) on it as v says, with the HTTP
// client that sends v's credential, and creates the instances.
func (b *bench) prepare(ctx context.Context, pg *dbtest.Server, bin string, v variant) (*server, error) {
	name, dbURL, err := b.fsmdDatabase(ctx, pg)
	if err != nil {
		return nil, err
	}
	b.progress("starting fsmd (%s) on database %s", v.name, name)
	t0 := time.Now()
	srv, err := b.start(ctx, bin, dbURL, v)
	if err != nil {
		return nil, err
	}
	srv.dbName, srv.dbURL = name, dbURL
	b.progress("fsmd ready in %v at %s (log: %s)", time.Since(t0).Round(time.Millisecond), srv.base, srv.logPath)

	srv.client = &http.Client{
		Transport: withKey{key: srv.bearer, next: &http.Transport{MaxIdleConns: 2 * b.c.Clients, MaxIdleConnsPerHost: 2 * b.c.Clients,
			DisableCompression: true, IdleConnTimeout: time.Minute}},
		Timeout: 30 * time.Second,
	}
	t0 = time.Now()
	if err := b.createInstances(ctx, srv.client, srv.base); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail(srv.logPath, 10))
	}
	el := time.Since(t0)
	pid := srv.cmd.Process.Pid
	b.progress("created %d instances in %v (%.0f/s); fsmd's RSS %s MiB, its peak so far %s MiB", b.c.Instances, el.Round(time.Millisecond),
		float64(b.c.Instances)/el.Seconds(), mib(procStatus(pid, "VmRSS")), mib(peakRSS(pid)))
	return srv, nil
}

// finish checks that the instances' revisions add up to the acked events (returning their sum),
// reads fsmd's peak RSS (-1 when it cannot) and stops fsmd.
func (b *bench) finish(ctx context.Context, srv *server, acked int64) (int64, int64, error) {
	revisions, err := sumRevisions(ctx, srv.client, srv.base)
	if err != nil {
		return 0, -1, err
	}
	if revisions != acked {
		return revisions, -1, fmt.Errorf("audit check failed: %d events acknowledged, but the instances' revisions add up to %d", acked, revisions)
	}
	rss := peakRSS(srv.cmd.Process.Pid)
	srv.stop(b)
	return revisions, rss, nil
}

// firstInstance numbers the instances: their ids are numbers (1000000, 1000001, ...), so that the
// ceiling's pgbench script, whose variables are numbers, can name them. All have 7 digits (up to
// maxInstances), so their order as text is their order as numbers.
const firstInstance = 1_000_000

// instanceID names the i-th instance.
func instanceID(i int) string { return strconv.Itoa(firstInstance + i) }

// createInstances creates the instances with the clients' concurrency.
func (b *bench) createInstances(ctx context.Context, hc *http.Client, base string) error {
	var next atomic.Int64
	errs := make(chan error, b.c.Clients)
	var wg sync.WaitGroup
	for range b.c.Clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.c.Instances || ctx.Err() != nil {
					return
				}
				body := fmt.Sprintf(`{"definition":"account","id":%q,"context":{"owner":"bench","balance":0}}`, instanceID(i))
				status, msg, err := post(ctx, hc, base+"/v1/instances", []byte(body), nil)
				if err == nil && status != http.StatusCreated && status != http.StatusOK {
					err = fmt.Errorf("create instance %s: %d %s", instanceID(i), status, msg)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// post sends a JSON body and reads the whole answer; msg is the body of an answer that is not 2xx.
func post(ctx context.Context, hc *http.Client, u string, body []byte, header map[string]string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, "", err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return resp.StatusCode, string(msg), nil
}

// load runs the clients: each posts deposits to instances drawn at random, one request at a time,
// for the warm-up and then the measured duration. A request counts when it begins in the measured
// phase; the rate divides by the time from the phase's start to the last answer.
func (b *bench) load(ctx context.Context, hc *http.Client, srv *server) (fsmdResult, error) {
	start := time.Now()
	measureFrom := start.Add(b.c.Warmup)
	end := measureFrom.Add(b.c.Duration)

	var profile chan error
	if b.c.CPUProfile != "" {
		profile = make(chan error, 1)
		go func() { profile <- b.fetchProfile(ctx, srv, measureFrom) }()
	}

	type clientResult struct {
		lat           []time.Duration
		acked, errors int
		lastDone      time.Time
		firstErr      string
	}
	results := make([]clientResult, b.c.Clients)
	expected := int(b.c.Duration.Seconds()*4000)/b.c.Clients + 1024
	var wg sync.WaitGroup
	for n := range b.c.Clients {
		wg.Go(func() {
			r := &results[n]
			r.lat = make([]time.Duration, 0, expected)
			rng := rand.New(rand.NewPCG(uint64(n), uint64(start.UnixNano())))
			var hdr map[string]string
			body := make([]byte, 0, 128)
			for seq := 0; ; seq++ {
				t := time.Now()
				if !t.Before(end) || ctx.Err() != nil {
					return
				}
				ref := "c" + strconv.Itoa(n) + "-" + strconv.Itoa(seq)
				body = append(body[:0], `{"event":"deposit","payload":{"amount":`...)
				body = strconv.AppendInt(body, int64(1+rng.IntN(1000)), 10)
				body = append(body, `,"reference":"`...)
				body = append(body, ref...)
				body = append(body, `"}}`...)
				if b.c.IdempotencyKey {
					hdr = map[string]string{"Idempotency-Key": ref}
				}
				id := instanceID(rng.IntN(b.c.Instances))
				status, msg, err := post(ctx, hc, srv.base+"/v1/instances/"+id+"/events", body, hdr)
				done := time.Now()
				if err != nil || status != http.StatusOK {
					if ctx.Err() != nil {
						return
					}
					r.errors++
					if r.firstErr == "" {
						r.firstErr = fmt.Sprintf("%d %s %v", status, msg, err)
					}
					continue
				}
				r.acked++
				if !t.Before(measureFrom) {
					r.lat = append(r.lat, done.Sub(t))
					r.lastDone = done
				}
			}
		})
	}
	var cpuStart cpuSample
	select {
	case <-time.After(time.Until(measureFrom)):
		cpuStart = sampleCPU(srv.cmd.Process.Pid)
	case <-ctx.Done():
	}
	wg.Wait()
	cpuEnd := sampleCPU(srv.cmd.Process.Pid)
	if err := ctx.Err(); err != nil {
		return fsmdResult{}, err
	}

	var res fsmdResult
	var all []time.Duration
	last := end
	firstErr := ""
	for _, r := range results {
		all = append(all, r.lat...)
		res.acked += int64(r.acked)
		res.errors += r.errors
		if r.lastDone.After(last) {
			last = r.lastDone
		}
		if firstErr == "" {
			firstErr = r.firstErr
		}
	}
	res.count = len(all)
	res.rate = float64(res.count) / last.Sub(measureFrom).Seconds()
	res.lat = summarize(all)
	res.cpu = cpuStart.use(cpuEnd)
	if res.errors > 0 {
		b.progress("%d requests failed; the first: %s", res.errors, firstErr)
	}
	if profile != nil {
		if err := <-profile; err != nil {
			return res, fmt.Errorf("CPU profile: %w", err)
		}
		b.progress("CPU profile of fsmd written to %s (go tool pprof -top %s)", b.c.CPUProfile, b.c.CPUProfile)
	}
	return res, nil
}

// fetchProfile takes a CPU profile of the child over the measured phase.
func (b *bench) fetchProfile(ctx context.Context, srv *server, from time.Time) error {
	if srv.pprofAddr == "" {
		return errors.New("fsmd does not serve pprof")
	}
	select {
	case <-time.After(time.Until(from)):
	case <-ctx.Done():
		return ctx.Err()
	}
	secs := max(1, int(b.c.Duration.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", srv.pprofAddr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	f, err := os.Create(b.c.CPUProfile)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sumRevisions adds up the revisions of the instances through the API: each accepted event adds
// one, so the sum is the number of events the instances took.
func sumRevisions(ctx context.Context, hc *http.Client, base string) (int64, error) {
	var sum int64
	after := ""
	for {
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
}
