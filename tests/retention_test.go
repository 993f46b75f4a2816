package tests

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// TestRetentionServe: fsmd serve runs the retention job every --retention-every: an instance final
// for longer than its definition's final_after disappears with its history, a running one stays,
// the pass is logged and counted in fsmd_retention_deleted_total.
func TestRetentionServe(t *testing.T) {
	t.Parallel()
	defs := t.TempDir()
	const ticket = "name: ticket\ninitial: open\nstates:\n  open: {on: {close: closed}}\n  closed: {final: true}\nretention: {final_after: 1s}\n"
	if err := os.WriteFile(filepath.Join(defs, "ticket.yaml"), []byte(ticket), 0o644); err != nil {
		t.Fatal(err)
	}
	child := startFsmd(t, dbtest.SQLiteURL(t), defs, "--retention-every", "1s")
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, child.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, id := range []string{"done", "open"} {
		if code, body := call("POST", "/v1/instances", `{"definition": "ticket", "id": "`+id+`"}`); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, code, body)
		}
	}
	if code, body := call("POST", "/v1/instances/done/events", `{"event": "close"}`); code != http.StatusOK {
		t.Fatalf("close: %d %s", code, body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := call("GET", "/v1/instances/done", "")
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("done is still there after 15 s (%d)\n%s", code, child.log.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := call("GET", "/v1/instances/done/history", ""); code != http.StatusNotFound {
		t.Errorf("the history of done: %d %s", code, body)
	}
	if code, body := call("GET", "/v1/instances/open", ""); code != http.StatusOK {
		t.Errorf("the running instance: %d %s", code, body)
	}
	if _, metrics := call("GET", "/metrics", ""); !strings.Contains(metrics, `fsmd_retention_deleted_total{definition="ticket"} 1`) {
		t.Errorf("/metrics has no fsmd_retention_deleted_total{definition=\"ticket\"} 1")
	}
	if tail := child.log.tail(); !strings.Contains(tail, `"msg":"retention deleted final instances"`) || !strings.Contains(tail, `"deleted":1`) {
		t.Errorf("no log line of the pass:\n%s", tail)
	}
}
