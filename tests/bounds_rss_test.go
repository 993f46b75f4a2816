package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// TestHistoryMemory: the server's memory stays bounded while 8 clients read, at once and again and
// again, the fattest history pages a client can make (rows of 1 MB payloads, 1,000 rows asked for
// a page). Before pages were bounded by bytes, one such answer was the whole history (449 MB for
// 150 rows) and the server's RSS grew by gigabytes.
func TestHistoryMemory(t *testing.T) {
	t.Run("postgres", func(t *testing.T) { testHistoryMemory(t, dbtest.PostgresDatabaseURL(t)) })
	t.Run("sqlite", func(t *testing.T) { testHistoryMemory(t, dbtest.SQLiteURL(t)) })
}

const (
	rssLimit   = 300 << 20 // bytes of the server's peak resident memory
	rssRows    = 24        // history rows of rssPayload bytes: pages of 4 MiB hold 3, 8 pages a walk
	rssPayload = 1_000_000
	rssClients = 8
	rssRounds  = 1 // walks of the whole history per client
)

func testHistoryMemory(t *testing.T, dbURL string) {
	defs := t.TempDir()
	if err := os.WriteFile(filepath.Join(defs, "journal.yaml"), []byte(apiJournal), 0o644); err != nil {
		t.Fatal(err)
	}
	child := startFsmd(t, dbURL, defs)
	// A transport of its own, not the conformance check's (http.DefaultTransport): the check reads
	// and decodes every 4 MiB page again, under the race detector, which took most of this test's
	// 100 s. TestAPIPagesBoundedByBytes checks these pages against the document.
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	post := func(path, body string) {
		t.Helper()
		resp, err := hc.Post(child.base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	post("/v1/instances", `{"definition": "journal", "id": "fat"}`)
	body := `{"event": "write", "payload": {"text": "` + strings.Repeat("x", rssPayload) + `"}}`
	for range rssRows {
		post("/v1/instances/fat/events", body)
	}
	start := rss(t, child, "VmRSS")

	var wg sync.WaitGroup
	errs := make(chan error, rssClients)
	var largest sync.Map
	for c := range rssClients {
		wg.Go(func() {
			for range rssRounds {
				rows, after := 0, ""
				for {
					resp, err := hc.Get(child.base + "/v1/instances/fat/history?limit=1000" + after)
					if err != nil {
						errs <- err
						return
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("client %d: %d %v %.200s", c, resp.StatusCode, err, b)
						return
					}
					var page struct {
						Items []json.RawMessage
						Next  string
					}
					if err := json.NewDecoder(bytes.NewReader(b)).Decode(&page); err != nil {
						errs <- err
						return
					}
					if prev, ok := largest.Load(c); !ok || len(b) > prev.(int) {
						largest.Store(c, len(b))
					}
					rows += len(page.Items)
					if page.Next == "" {
						break
					}
					after = "&after=" + page.Next
				}
				if rows != rssRows {
					errs <- fmt.Errorf("client %d read %d rows, want %d", c, rows, rssRows)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	peak := rss(t, child, "VmHWM")
	largest.Range(func(c, n any) bool {
		if n.(int) > 4<<20 {
			t.Errorf("client %d got a page of %d bytes", c, n)
		}
		return true
	})
	t.Logf("server RSS: %d MiB after writing %d rows of %d bytes, peak %d MiB while %d clients read them %d times",
		start>>20, rssRows, rssPayload, peak>>20, rssClients, rssRounds)
	if peak > rssLimit {
		t.Errorf("the server's peak RSS was %d MiB, over %d MiB", peak>>20, rssLimit>>20)
	}
}

// rss reads a memory figure of the child from /proc (VmRSS: now; VmHWM: the peak), in bytes.
func rss(t *testing.T, child *fsmdChild, field string) int64 {
	t.Helper()
	v, err := procStatus(child.cmd.Process.Pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// procStatus reads a memory figure of a process from /proc/PID/status, in bytes. Not the rusage of
// a child that has exited: on Linux its ru_maxrss may count the memory of the parent it was
// forked from, before it ran its own program (a test binary of hundreds of MB under -race).
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %v", sc.Text(), err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
