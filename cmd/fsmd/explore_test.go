package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExploreCommand runs fsmd test --explore in-process on definitions written for the test.
func TestExploreCommand(t *testing.T) {
	t.Parallel()
	write := func(dir, name, text string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := t.TempDir()
	write(good, "door.yaml", `name: door
initial: closed
events:
  open: {code: int}
states:
  closed:
    on:
      open:
        to: opened
        guard: event.code == 4711
      lock: locked
    timers:
      - {after: 1h, event: lock}
  opened: {on: {close: closed}}
  locked: {final: true}
`)
	bad := t.TempDir()
	write(bad, "vault.yaml", `name: vault
initial: closed
states:
  closed:
    on:
      open:
        to: opened
        guard: now > instance.created_at + duration("1000h")
  opened: {final: true}
`)
	invalid := t.TempDir()
	write(invalid, "broken.yaml", "name: broken\ninitial: nowhere\nstates:\n  a: {final: true}\n")
	tests := []struct {
		args   []string
		code   int
		last   string // the last line of stdout
		out    string // a substring of stdout or stderr
		stderr string // a substring of stderr
	}{
		{args: []string{"test", "--explore", good}, code: exitOK, last: "3 states reached, 0 not",
			out: "reached     locked: advance 1h"},
		{args: []string{"test", good, "--explore", "--depth", "1"}, code: exitOK, last: "3 states reached, 0 not"},
		{args: []string{"test", "--explore", bad}, code: exitFailed, last: "1 states reached, 1 not",
			out: `NOT REACHED opened: nearest reached state closed; blocked by the guard of its open branch 1, never true in 1 evaluation: now > instance.created_at + duration("1000h") (` + filepath.Join(bad, "vault.yaml") + ":8:16)"},
		{args: []string{"test", "--explore", invalid}, code: exitFailed, last: "0 states reached, 0 not", out: "nowhere"},
		{args: []string{"test", "--explore", filepath.Join(good, "missing")}, code: exitUsage, out: "missing"},
		{args: []string{"test", "--depth", "3", good}, code: exitUsage, out: "--depth needs --explore"},
		{args: []string{"test", "--explore", "--coverage", good}, code: exitUsage, out: "do not apply"},
		{args: []string{"test", "--explore", "--depth", "0", good}, code: exitUsage, out: "--depth must be between 1 and 1000"},
		{args: []string{"test", "--explore", "--emit-cases", good}, code: exitOK, out: "definition: door", stderr: "3 states reached, 0 not"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			code := run(tt.args, &stdout, &stderr)
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if code != tt.code || (tt.last != "" && lines[len(lines)-1] != tt.last) ||
				!strings.Contains(stdout.String()+stderr.String(), tt.out) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("run(%q): exit %d (want %d), last line want %q, output want %q\n--- stdout:\n%s--- stderr:\n%s",
					tt.args, code, tt.code, tt.last, tt.out, stdout.String(), stderr.String())
			}
		})
	}
}

// TestExploreEmitCasesRoundTrip: the cases --emit-cases prints, saved as the definitions' tables,
// pass under fsmd test, for the examples as for a definition written here.
func TestExploreEmitCasesRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	entries, err := os.ReadDir("../../definitions")
	if err != nil {
		t.Fatal(err)
	}
	defs := 0
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".test.yaml") {
			continue
		}
		defs++
		data, err := os.ReadFile(filepath.Join("../../definitions", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"test", "--explore", "--emit-cases", dir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("explore: exit %d\n%s", code, stderr.String())
	}
	docs := strings.Split(stdout.String(), "\n---\n")
	for _, doc := range docs {
		name := strings.TrimPrefix(doc[strings.Index(doc, "definition: "):], "definition: ")
		name = name[:strings.IndexByte(name, '\n')]
		if err := os.WriteFile(filepath.Join(dir, name+".test.yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(docs) != defs {
		t.Fatalf("%d YAML documents, want one per example (%d)", len(docs), defs)
	}
	var reached int
	if _, err := fmt.Sscanf(lastLine(stderr.String()), "%d states reached, 0 not", &reached); err != nil {
		t.Fatalf("last line of the report %q: %v", lastLine(stderr.String()), err)
	}
	var out strings.Builder
	if code := run([]string{"test", dir}, &out, &out); code != exitOK || lastLine(out.String()) != fmt.Sprintf("%d passed, 0 failed", reached) {
		t.Fatalf("fsmd test on the emitted cases (one per state reached, %d): exit %d\n%s", reached, code, out.String())
	}
}

// TestExploreExamples: fsmd test --explore definitions/ passes on the examples.
func TestExploreExamples(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	code := run([]string{"test", "--explore", "../../definitions"}, &stdout, &stderr)
	if code != exitOK || !regexp.MustCompile(`^[1-9][0-9]* states reached, 0 not$`).MatchString(lastLine(stdout.String())) {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}
