package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// server is `fsmd serve` running as a child process: a scheduler of a run with -fsmd.
type server struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the child has exited
}

// start runs bin serve on dbURL with the definitions of c (warnings and errors logged to a file
// under dir) and waits until /readyz answers 200.
func start(ctx context.Context, dir, bin, dbURL string, c config) (*server, error) {
	defs, err := filepath.Abs(c.defs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &server{logPath: filepath.Join(dir, "fsmd.log"), done: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--definitions", defs,
		"--timer-poll", c.poll.String(), "--log-level", "warn")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd = cmd
	addr := make(chan string, 1)
	go func() {
		defer close(s.done)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			if !found {
				var rec struct{ Msg, Addr string }
				if json.Unmarshal(line, &rec) == nil && rec.Msg == "fsmd serving" {
					addr <- rec.Addr
					found = true
				}
			}
			fmt.Fprintf(logFile, "%s\n", line)
		}
		_ = cmd.Wait()
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-s.done:
		return nil, fmt.Errorf("%s exited before serving: %v (log: %s)", bin, cmd.ProcessState, s.logPath)
	case <-timeout.C:
		s.stop()
		return nil, fmt.Errorf("%s did not start within 60 s (log: %s)", bin, s.logPath)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-s.done:
			return nil, fmt.Errorf("%s exited: %v (log: %s)", bin, cmd.ProcessState, s.logPath)
		case <-timeout.C:
			s.stop()
			return nil, fmt.Errorf("%s not ready within 60 s (log: %s)", bin, s.logPath)
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
