package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// The definitions of the reload tests: lamp version 1, and version 2 which renames lit to shining
// (policy auto, the default) with a rule for a state no version has (line 6: a warning).
const (
	reloadLampV1 = `name: lamp
initial: dark
states:
  dark: {on: {toggle: lit, unplug: unplugged}}
  lit: {on: {toggle: dark}}
  unplugged: {final: true}
`
	reloadLampV2 = `name: lamp
initial: dark
migrate:
  states:
    lit: shining
    flicker: dark
states:
  dark: {on: {toggle: shining, unplug: unplugged}}
  shining: {on: {toggle: dark}}
  unplugged: {final: true}
`
	reloadBroken = "name: broken\ninitial: nowhere\nstates:\n  a: {on: {go: b}}\n  b: {final: true}\n"
)

// reloadWrite writes a file of the definitions folder aside and renames it into place, as editors
// and deployments do, so that fsmd never reads it half-written.
func reloadWrite(t *testing.T, dir, name, text string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// reloadGet GETs path and decodes the JSON answer into v; it returns the status.
func reloadGet(t *testing.T, c *counterClient, path string, v any) int {
	t.Helper()
	resp, body, err := c.do(context.Background(), "GET", path, nil, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// reloadWait polls until cond holds, for 15 s.
func reloadWait(t *testing.T, child *fsmdChild, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s; fsmd's log:\n%s", what, child.log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reloadLampVersion is the latest version of lamp as GET /v1/definitions/lamp answers it.
func reloadLampVersion(t *testing.T, c *counterClient) int {
	t.Helper()
	var def struct {
		Version int `json:"version"`
	}
	if st := reloadGet(t, c, "/v1/definitions/lamp", &def); st != http.StatusOK {
		t.Fatalf("GET /v1/definitions/lamp: %d", st)
	}
	return def.Version
}

// TestReloadSIGHUP: a real `fsmd serve` reloads its folder on SIGHUP: a new version of lamp is
// registered and its running instance migrated (policy auto), with the warning in the log; a folder
// with an invalid file is logged and changes nothing, the server serving on; POST /v1/reload answers
// the same, 422 with the problems, then 200 once the folder is fixed.
func TestReloadSIGHUP(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"postgres", "sqlite"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			dbURL := dbtest.SQLiteURL(t)
			if db == "postgres" {
				dbURL = dbtest.PostgresDatabaseURL(t)
			}
			testReloadSIGHUP(t, dbURL)
		})
	}
}

func testReloadSIGHUP(t *testing.T, dbURL string) {
	ctx := context.Background()
	dir := t.TempDir()
	reloadWrite(t, dir, "lamp.yaml", reloadLampV1)
	child := startFsmd(t, dbURL, dir)
	c := newCounterClient(t, child.base, 10*time.Second)
	if resp, body, err := c.do(ctx, "POST", "/v1/instances", map[string]any{"definition": "lamp", "id": "lamp-1"}, nil); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating lamp-1: %v %s", err, body)
	}
	if resp, body, err := c.do(ctx, "POST", "/v1/instances/lamp-1/events", map[string]any{"event": "toggle"}, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("toggling lamp-1: %v %s", err, body)
	}

	reloadWrite(t, dir, "lamp.yaml", reloadLampV2)
	if v := reloadLampVersion(t, c); v != 1 {
		t.Fatalf("lamp is at version %d before SIGHUP", v)
	}
	if err := child.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloadWait(t, child, "lamp version 2 after SIGHUP", func() bool { return reloadLampVersion(t, c) == 2 })
	reloadWait(t, child, "lamp-1 migrated to version 2", func() bool {
		var inst struct {
			Version int    `json:"version"`
			State   string `json:"state"`
		}
		return reloadGet(t, c, "/v1/instances/lamp-1", &inst) == http.StatusOK && inst.Version == 2 && inst.State == "shining"
	})
	reloadWait(t, child, "the warning in the log", func() bool {
		return strings.Contains(child.log.tail(), `lamp.yaml:6:5: warning: migrate rule for state \"flicker\"`)
	})

	// An invalid file: SIGHUP logs the failure; nothing changes and fsmd serves on.
	reloadWrite(t, dir, "broken.yaml", reloadBroken)
	if err := child.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloadWait(t, child, "the failed reload in the log", func() bool {
		return strings.Contains(child.log.tail(), `"msg":"reloading the definitions failed: the registered versions go on serving","trigger":"SIGHUP"`)
	})
	var ready struct{ Status string }
	if st := reloadGet(t, c, "/readyz", &ready); st != http.StatusOK {
		t.Fatalf("/readyz after a failed reload: %d", st)
	}
	if st := reloadGet(t, c, "/v1/definitions/broken", &struct{}{}); st != http.StatusNotFound {
		t.Errorf("GET /v1/definitions/broken after the failed reload: %d, want 404", st)
	}
	if v := reloadLampVersion(t, c); v != 2 {
		t.Errorf("lamp at version %d after the failed reload, want 2", v)
	}

	// POST /v1/reload: the same, with the problems in the answer.
	resp, body, err := c.do(ctx, "POST", "/v1/reload", nil, nil)
	if err != nil || resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("POST /v1/reload with an invalid file: %v %v %s", err, resp.StatusCode, body)
	}
	var problem struct {
		Code   string `json:"code"`
		Errors []struct {
			File     string `json:"file"`
			Line     int    `json:"line"`
			Severity string `json:"severity"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &problem); err != nil || problem.Code != "invalid_definition" || len(problem.Errors) == 0 {
		t.Fatalf("the problem: %v %s", err, body)
	}
	errs := 0
	for _, e := range problem.Errors {
		if e.Severity != "error" {
			continue // the warnings of the folder come along
		}
		errs++
		if filepath.Base(e.File) != "broken.yaml" || e.Line < 1 {
			t.Errorf("an error outside broken.yaml or without a line: %+v", e)
		}
	}
	if errs == 0 {
		t.Errorf("no error in the problem: %s", body)
	}
	if err := os.Remove(filepath.Join(dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	resp, body, err = c.do(ctx, "POST", "/v1/reload", nil, nil)
	var res struct {
		Definitions []struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
			Created bool   `json:"created"`
		} `json:"definitions"`
		Warnings []struct {
			Line    int    `json:"line"`
			Message string `json:"message"`
		} `json:"warnings"`
	}
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil {
		t.Fatalf("POST /v1/reload of the fixed folder: %v %s", err, body)
	}
	if len(res.Definitions) != 1 || res.Definitions[0].Name != "lamp" || res.Definitions[0].Version != 2 || res.Definitions[0].Created ||
		len(res.Warnings) != 1 || res.Warnings[0].Line != 6 || !strings.Contains(res.Warnings[0].Message, `"flicker"`) {
		t.Errorf("POST /v1/reload of the fixed folder: %s", body)
	}
}

// TestReloadWatch: `fsmd serve --watch` registers a file's new content without being asked, and
// logs an invalid file, serving on with the versions it has.
func TestReloadWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reloadWrite(t, dir, "lamp.yaml", reloadLampV1)
	child := startFsmd(t, dbtest.SQLiteURL(t), dir, "--watch")
	c := newCounterClient(t, child.base, 10*time.Second)
	if v := reloadLampVersion(t, c); v != 1 {
		t.Fatalf("lamp at version %d at start", v)
	}

	reloadWrite(t, dir, "lamp.yaml", reloadLampV2)
	// The log only (no request meanwhile, whose access lines would push the line out of the tail).
	reloadWait(t, child, "the watcher's reload in the log", func() bool {
		return strings.Contains(child.log.tail(), `"msg":"definitions reloaded","trigger":"watch","definitions":1,"new_versions":["lamp@2"]`)
	})
	if v := reloadLampVersion(t, c); v != 2 {
		t.Errorf("lamp at version %d after the file changed, want 2", v)
	}

	reloadWrite(t, dir, "broken.yaml", reloadBroken)
	reloadWait(t, child, "the failed reload in the log", func() bool {
		return strings.Contains(child.log.tail(), `"msg":"reloading the definitions failed: the registered versions go on serving","trigger":"watch"`)
	})
	if v := reloadLampVersion(t, c); v != 2 {
		t.Errorf("lamp at version %d after the failed reload, want 2", v)
	}
	// Fixed: the watcher reloads again and registers the new content.
	reloadWrite(t, dir, "broken.yaml", strings.Replace(reloadBroken, "nowhere", "a", 1))
	reloadWait(t, child, "the fixed file registered", func() bool {
		return reloadGet(t, c, "/v1/definitions/broken", &struct{}{}) == http.StatusOK
	})
}
