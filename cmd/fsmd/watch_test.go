package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWatch: the watcher reloads once per change of a definition file (added, written, removed,
// its folder gone or back) and never for a transition table, a testdata file, or no change; it
// returns when its context ends.
func TestWatch(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "defs")
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		// Written aside and renamed, so that no look sees it half-written.
		if err := os.WriteFile(path+".tmp", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(name string) {
		t.Helper()
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "name: a\n")

	reloads := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch(ctx, dir, 5*time.Millisecond, readFolderState(dir), func() { reloads <- struct{}{} })
	}()
	// reloaded waits for one reload; quiet checks that none comes for a while.
	reloaded := func(what string) {
		t.Helper()
		select {
		case <-reloads:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no reload", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-reloads:
			t.Fatalf("%s: a reload, want none", what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	quiet("no change")
	write("a.yaml", "name: a\ndescription: longer\n")
	reloaded("a.yaml written")
	quiet("after the reload of a.yaml")
	// The same size, another modification time.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "a.yaml"), later, later); err != nil {
		t.Fatal(err)
	}
	reloaded("a.yaml touched")
	write("a.test.yaml", "cases: []\n")
	write("testdata/old.yaml", "name: old\n")
	write("notes.txt", "not a definition\n")
	quiet("a table, a testdata file, a text file")
	write("b.yml", "name: b\n")
	reloaded("b.yml added")
	remove("b.yml")
	reloaded("b.yml removed")
	remove("")
	reloaded("the folder removed")
	quiet("the folder still missing")
	write("a.yaml", "name: a\n")
	reloaded("the folder back")

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not return when its context ended")
	}
}

// TestWatchSettles: a change is reloaded once two looks in a row agree on it, and once only.
func TestWatchSettles(t *testing.T) {
	t.Parallel()
	state := func(sizes ...int64) folderState {
		st := folderState{files: map[string]fileStamp{}}
		for i, n := range sizes {
			st.files[string(rune('a'+i))+".yaml"] = fileStamp{size: n, modTime: 1}
		}
		return st
	}
	gone := folderState{err: "defs: no such file or folder"}
	s := settle{last: state(1), prev: state(1)}
	for i, step := range []struct {
		cur    folderState
		reload bool
	}{
		{state(1), false},    // as loaded
		{state(2), false},    // being written
		{state(3), false},    // still
		{state(3), true},     // kept still: reload
		{state(3), false},    // reloaded already
		{state(3, 1), false}, // a file added
		{state(3), false},    // and removed before it settled: back to what was reloaded
		{state(3), false},
		{gone, false},
		{gone, true}, // the folder gone (the reload reports it)
		{gone, false},
		{state(3), false},
		{state(3), true}, // back
	} {
		if got := s.look(step.cur); got != step.reload {
			t.Errorf("look %d (%+v): reload %v, want %v", i, step.cur, got, step.reload)
		}
	}
}

// TestServeWatchFlag: --watch and FSMD_WATCH, and a value of FSMD_WATCH that is no boolean.
func TestServeWatchFlag(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want bool
		err  bool
	}{{"", false, false}, {"true", true, false}, {"0", false, false}, {"yes", false, true}} {
		t.Setenv("FSMD_WATCH", tt.env)
		got, err := envBool("FSMD_WATCH")
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("FSMD_WATCH=%q: %v, %v", tt.env, got, err)
		}
	}
	t.Setenv("FSMD_WATCH", "yes")
	var stderr strings.Builder
	if code := run([]string{"serve", "--addr", "127.0.0.1:0"}, &strings.Builder{}, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), `FSMD_WATCH="yes" is not a boolean`) {
		t.Errorf("FSMD_WATCH=yes: exit %d, %s", code, stderr.String())
	}
	// --watch decides, whatever the variable says; -h shows the flag.
	stderr.Reset()
	if code := run([]string{"serve", "--addr", "nonsense", "--watch=false"}, &strings.Builder{}, &stderr); code != exitUsage ||
		strings.Contains(stderr.String(), "FSMD_WATCH") || !strings.Contains(stderr.String(), "--addr") {
		t.Errorf("FSMD_WATCH=yes --watch=false: exit %d, %s", code, stderr.String())
	}
	var stdout strings.Builder
	if code := run([]string{"serve", "-h"}, &stdout, &strings.Builder{}); code != exitOK ||
		!strings.Contains(stdout.String(), "[--watch]") || !strings.Contains(stdout.String(), "(FSMD_WATCH)") {
		t.Errorf("fsmd serve -h: exit %d\n%s", code, stdout.String())
	}
}
