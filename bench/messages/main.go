// Command messages measures how fast one fsmd serve process delivers messages between instances on
// PostgreSQL (docs/definitions.md, "Messages"):
//
//	go run ./bench/messages                                  # 10,000 messages, 1 sender, 1 receiver
//	go run ./bench/messages -senders 100 -receivers 100      # 100 pairs (sender, target)
//	go run ./bench/messages -senders 100 -receivers 1        # 100 pairs, all to one receiver
//
// It creates a fresh database, builds ./cmd/fsmd and starts `fsmd serve` on it as a child process
// (the receiver definition of bench/messages/testdata), creates the receivers through the API, then
// writes the messages pending with one INSERT (the rows the senders' transitions would write: ids,
// the order of each (sender, target) pair) and times the process delivering them, from that
// commit until the messages table is empty. It then checks the receivers' histories: one row per
// message (source message, request id the message's id, none dropped), each pair's in the order
// sent. It prints the rate, the CPU fsmd and PostgreSQL used, and a last line starting with
// "RESULT"; the exit status is 1 when a message was lost, delivered twice or out of order.
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
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lib/pq"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

type config struct {
	messages, senders, receivers int
	poll                         time.Duration
	timeout                      time.Duration
	dbURL, defs, fsmd            string
	cpuProfile                   string
	profileFor                   time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.messages, "messages", 10_000, "messages to deliver")
	flag.IntVar(&c.senders, "senders", 1, "senders: message i is from sender i mod senders")
	flag.IntVar(&c.receivers, "receivers", 1, "receivers: message i is to receiver i mod receivers")
	flag.DurationVar(&c.poll, "poll", 200*time.Millisecond, "fsmd serve --timer-poll (the dispatcher's poll when idle)")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up when the messages are not delivered within this")
	flag.StringVar(&c.dbURL, "database-url", dbtest.PostgresURL(), "the PostgreSQL server (its database part is replaced)")
	flag.StringVar(&c.defs, "definitions", "bench/messages/testdata", "the folder of receiver.yaml")
	flag.StringVar(&c.fsmd, "fsmd", "", "an fsmd binary to run (default: build ./cmd/fsmd)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of fsmd over the first -profile-for of the delivery to this file")
	flag.DurationVar(&c.profileFor, "profile-for", 3*time.Second, "how long -cpuprofile profiles")
	flag.Parse()
	if c.messages < 1 || c.messages > 1_000_000 || c.senders < 1 || c.receivers < 1 || c.senders > c.messages || c.receivers > c.messages ||
		c.receivers > 100_000 {
		fmt.Fprintln(os.Stderr, "messages: want 1 to 1000000 messages, and 1 to that many senders and receivers (100000 at most)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "messages: %v\n", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func run(ctx context.Context, c config) error {
	dir, err := os.MkdirTemp("", "fsmd-bench-messages-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := c.fsmd
	if bin == "" || c.cpuProfile != "" {
		if c.fsmd != "" {
			return errors.New("-cpuprofile builds fsmd itself: leave out -fsmd")
		}
		progress("building fsmd")
		if bin, err = build(ctx, dir, c.cpuProfile != ""); err != nil {
			return err
		}
	}
	dbURL, drop, err := dbtest.NewPostgresDatabase(ctx, c.dbURL, "fsmd_bench_messages_")
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	srv, err := start(ctx, dir, bin, dbURL, c)
	if err != nil {
		return err
	}
	defer srv.stop()
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()

	t0 := time.Now()
	if err := createReceivers(ctx, srv.base, c.receivers); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(srv.logPath, 10))
	}
	progress("created %d receivers in %v", c.receivers, time.Since(t0).Round(time.Millisecond))

	// The messages, as the senders' transitions would write them: message i from sender i mod S to
	// receiver i mod R, the next in its pair's order; each sender's i-th message from its i-th
	// transition.
	now := time.Now().UTC()
	ids, senders, targets, payloads := make([]string, c.messages), make([]string, c.messages), make([]string, c.messages), make([]string, c.messages)
	senderSeqs, seqs := make([]int64, c.messages), make([]int64, c.messages)
	type pair struct{ sender, target string }
	pairSeq := map[pair]int64{}
	want := map[string]pair{} // message id -> its pair
	for i := range c.messages {
		ids[i] = ident.New(now)
		senders[i], targets[i] = senderID(i%c.senders), receiverID(i%c.receivers)
		senderSeqs[i] = int64(i/c.senders) + 1
		p := pair{senders[i], targets[i]}
		pairSeq[p]++
		seqs[i] = pairSeq[p]
		payloads[i] = fmt.Sprintf(`{"n": %d}`, seqs[i])
		want[ids[i]] = p
	}
	if _, err := db.X.ExecContext(ctx, `INSERT INTO messages (id, sender, sender_seq, target, seq, event, payload, created_at)
		SELECT id, sender, sender_seq, target, seq, 'ping', payload::jsonb, $7
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[]) AS m(id, sender, sender_seq, target, seq, payload)
		ORDER BY id`,
		pq.Array(ids), pq.Array(senders), pq.Array(senderSeqs), pq.Array(targets), pq.Array(seqs), pq.Array(payloads), now); err != nil {
		return fmt.Errorf("writing the messages: %w", err)
	}
	start := time.Now()
	cpu0 := sampleCPU(srv.cmd.Process.Pid)
	progress("%d messages pending (%d pairs): delivering", c.messages, len(pairSeq))
	var profile chan error
	if c.cpuProfile != "" {
		profile = make(chan error, 1)
		go func() { profile <- fetchProfile(ctx, srv, c.cpuProfile, c.profileFor) }()
	}

	// Until the table is empty: a cheap look every 20 ms (the count, every 2 s, is for the progress
	// lines only), so that the bench's own queries weigh little in PostgreSQL's CPU.
	var elapsed time.Duration
	lastReport := start
	for {
		var pending bool
		if err := db.X.GetContext(ctx, &pending, `SELECT EXISTS (SELECT 1 FROM messages)`); err != nil {
			return err
		}
		if !pending {
			elapsed = time.Since(start)
			break
		}
		if time.Since(lastReport) >= 2*time.Second || time.Since(start) > c.timeout {
			var left int
			if err := db.X.GetContext(ctx, &left, `SELECT count(*) FROM messages`); err != nil {
				return err
			}
			if time.Since(start) > c.timeout {
				return fmt.Errorf("%d of %d messages left after %v\n%s", left, c.messages, c.timeout, tail(srv.logPath, 20))
			}
			progress("%d delivered", c.messages-left)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	use := cpu0.use(sampleCPU(srv.cmd.Process.Pid))
	if profile != nil {
		if err := <-profile; err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
		progress("CPU profile of fsmd written to %s (go tool pprof -top %s)", c.cpuProfile, c.cpuProfile)
	}

	// Every message delivered once, none dropped, each pair's in order.
	var rows []struct {
		Target    string  `db:"instance_id"`
		RequestID string  `db:"request_id"`
		Source    string  `db:"source"`
		N         int64   `db:"n"`
		Dropped   *string `db:"dropped"`
	}
	if err := db.X.SelectContext(ctx, &rows, `SELECT instance_id, request_id, source, (payload->>'n')::bigint AS n, dropped
		FROM transitions WHERE instance_id LIKE 'r-%' ORDER BY instance_id, seq`); err != nil {
		return err
	}
	last := map[pair]int64{}
	seen := map[string]bool{}
	var problems []string
	for _, r := range rows {
		p, ok := want[r.RequestID]
		switch {
		case r.Source != "message" || r.Dropped != nil || !ok || p.target != r.Target:
			problems = append(problems, fmt.Sprintf("%s: a row of source %s, request id %s, dropped %v", r.Target, r.Source, r.RequestID, r.Dropped))
		case seen[r.RequestID]:
			problems = append(problems, fmt.Sprintf("%s: message %s delivered twice", r.Target, r.RequestID))
		case r.N != last[p]+1:
			problems = append(problems, fmt.Sprintf("%s: message %d from %s after %d", r.Target, r.N, p.sender, last[p]))
		}
		seen[r.RequestID] = true
		last[p] = r.N
	}
	if len(rows) != c.messages || len(seen) != c.messages {
		problems = append(problems, fmt.Sprintf("%d history rows for %d distinct messages, want %d", len(rows), len(seen), c.messages))
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
		}
		return fmt.Errorf("the check failed:\n%s", strings.Join(problems, "\n"))
	}

	rate := float64(c.messages) / elapsed.Seconds()
	fmt.Printf("fsmd messages: %d messages, %d senders, %d receivers (%d pairs), one fsmd serve process, poll %v\n",
		c.messages, c.senders, c.receivers, len(pairSeq), c.poll)
	fmt.Printf("delivered in %.2f s: %.0f messages/s (each once, none dropped, every pair in order)\n", elapsed.Seconds(), rate)
	fmt.Printf("CPU per message, in microseconds: fsmd %s, PostgreSQL %s, machine busy %s (%d cores)\n",
		perMessage(use.server, use.elapsed, c.messages), perMessage(use.postgres, use.elapsed, c.messages),
		perMessage(use.machine, use.elapsed, c.messages), use.cores)
	status := "met"
	if rate < 2000 {
		status = "missed"
	}
	fmt.Printf("RESULT messages=%d senders=%d receivers=%d pairs=%d seconds=%.2f messages_per_s=%.0f target=%s\n",
		c.messages, c.senders, c.receivers, len(pairSeq), elapsed.Seconds(), rate, status)
	return nil
}

func senderID(i int) string   { return fmt.Sprintf("s-%05d", i) }
func receiverID(i int) string { return fmt.Sprintf("r-%05d", i) }

// perMessage is the CPU of cores busy over elapsed, per message, in microseconds ("-" when unknown).
func perMessage(cores float64, elapsed time.Duration, n int) string {
	if cores < 0 {
		return "-"
	}
	return strconv.FormatFloat(cores*elapsed.Seconds()*1e6/float64(n), 'f', 0, 64)
}

// createReceivers creates the receivers through the API, 8 requests at a time.
func createReceivers(ctx context.Context, base string, n int) error {
	var next atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				body := fmt.Sprintf(`{"definition": "receiver", "id": %q}`, receiverID(i))
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/instances", strings.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("creating %s: %s %s", receiverID(i), resp.Status, msg)
					}
				}
				if err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// pprofOverlay is compiled into the fsmd binary (go build -overlay, nothing is written to cmd/fsmd)
// only with -cpuprofile: it serves net/http/pprof on a port of its own and says where on stderr.
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

// build builds ./cmd/fsmd into dir, with the pprof overlay when profiling.
func build(ctx context.Context, dir string, profiling bool) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the benchmark inside fsmd's module (go run ./bench/messages)")
	}
	root := filepath.Dir(mod)
	bin := filepath.Join(dir, "fsmd")
	args := []string{"build", "-o", bin}
	if profiling {
		src := filepath.Join(dir, "bench_pprof.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
			return "", err
		}
		overlay, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "cmd", "fsmd", "zz_bench_pprof.go"): src}})
		if err != nil {
			return "", err
		}
		ov := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/fsmd")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fsmd: %v\n%s", err, out)
	}
	return bin, nil
}

// server is fsmd serve running as a child process.
type server struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:PORT
	pprofAddr string // with -cpuprofile
	logPath   string
	done      chan struct{} // closed when the child has exited
}

// start runs fsmd serve on dbURL (warnings and errors logged, to a file in dir) and waits until
// /readyz answers 200.
func start(ctx context.Context, dir, bin, dbURL string, c config) (*server, error) {
	defs, err := filepath.Abs(c.defs)
	if err != nil {
		return nil, err
	}
	s := &server{logPath: filepath.Join(dir, "fsmd.log"), done: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--definitions", defs,
		"--timer-poll", c.poll.String(), "--log-level", "warn")
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
	addrs := make(chan [2]string, 1)
	go func() {
		defer close(s.done)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		pprofAddr, found := "", false
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
			logFile.Write(append(bytes.Clone(line), '\n'))
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
		s.stop()
		return nil, fmt.Errorf("fsmd did not start within 60 s:\n%s", tail(s.logPath, 20))
	case <-ctx.Done():
		s.stop()
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
			s.stop()
			return nil, fmt.Errorf("fsmd not ready within 60 s:\n%s", tail(s.logPath, 20))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
}

// stop sends SIGTERM and waits for the child, killing it after 15 s.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// fetchProfile writes a CPU profile of the child over the next d to path.
func fetchProfile(ctx context.Context, s *server, path string, d time.Duration) error {
	if s.pprofAddr == "" {
		return errors.New("fsmd does not serve pprof")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.pprofAddr, max(1, int(d.Seconds()))), nil)
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
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tail is the last n lines of a file.
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
