package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		positional []string
		run        string
		verbose    bool
		code       int
		ok         bool
	}{
		{name: "nothing", args: nil, ok: true},
		{name: "flags first", args: []string{"-run", "x", "-v", "a", "b"}, positional: []string{"a", "b"}, run: "x", verbose: true, ok: true},
		{name: "flags last", args: []string{"a", "b", "-run", "x", "-v"}, positional: []string{"a", "b"}, run: "x", verbose: true, ok: true},
		{name: "flags between", args: []string{"a", "--run=x", "b", "--v"}, positional: []string{"a", "b"}, run: "x", verbose: true, ok: true},
		{name: "-- ends the flags", args: []string{"a", "--", "-v", "b"}, positional: []string{"a", "-v", "b"}, ok: true},
		{name: "a flag's value that looks like a path", args: []string{"-run", "definitions", "a"}, positional: []string{"a"}, run: "definitions", ok: true},
		{name: "-h", args: []string{"a", "-h"}, code: exitOK},
		{name: "--help", args: []string{"--help"}, code: exitOK},
		{name: "an unknown flag", args: []string{"a", "-x"}, code: exitUsage},
		{name: "a flag without its value", args: []string{"a", "-run"}, code: exitUsage},
		{name: "a bad boolean", args: []string{"-v=maybe"}, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlags("test", "", io.Discard, io.Discard)
			run := fs.String("run", "", "")
			verbose := fs.Bool("v", false, "")
			positional, code, ok := parse(fs, tt.args)
			if ok != tt.ok || code != tt.code {
				t.Fatalf("parse(%q): code %d, ok %v; want %d, %v", tt.args, code, ok, tt.code, tt.ok)
			}
			if !ok {
				return
			}
			if !slices.Equal(positional, tt.positional) || *run != tt.run || *verbose != tt.verbose {
				t.Errorf("parse(%q): positional %q, -run %q, -v %v; want %q, %q, %v",
					tt.args, positional, *run, *verbose, tt.positional, tt.run, tt.verbose)
			}
		})
	}
}

// TestUsageOutput: help asked for goes to stdout and exits 0; help after a mistake goes to stderr.
func TestUsageOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args        []string
		code        int
		stdout      string // a substring; "" for empty
		stderr      string // a substring; "" for empty
		stdoutEmpty bool
		stderrEmpty bool
	}{
		{args: []string{"help"}, code: exitOK, stdout: "Usage:\n  fsmd COMMAND", stderrEmpty: true},
		{args: []string{"-h"}, code: exitOK, stdout: "Usage:\n  fsmd COMMAND", stderrEmpty: true},
		{args: []string{"help", "test"}, code: exitOK, stdout: "Usage: fsmd test [-run REGEX]", stderrEmpty: true},
		{args: []string{"test", "-h"}, code: exitOK, stdout: "Flags (-name and --name alike):", stderrEmpty: true},
		{args: []string{"validate", "--help"}, code: exitOK, stdout: "Usage: fsmd validate", stderrEmpty: true},
		{args: []string{"help", "version"}, code: exitOK, stdout: "Print the version.", stderrEmpty: true},
		{args: nil, code: exitUsage, stderr: "Usage:\n  fsmd COMMAND", stdoutEmpty: true},
		{args: []string{"test", "-x"}, code: exitUsage, stderr: "flag provided but not defined: -x\nUsage: fsmd test", stdoutEmpty: true},
		{args: []string{"frob"}, code: exitUsage, stderr: `fsmd: unknown command "frob" (run fsmd help)`, stdoutEmpty: true},
		{args: []string{"help", "frob"}, code: exitUsage, stderr: `unknown command "frob"`, stdoutEmpty: true},
		{args: []string{"version"}, code: exitOK, stdout: "fsmd dev (go", stderrEmpty: true},
		{args: []string{"--version"}, code: exitOK, stdout: "fsmd dev (go", stderrEmpty: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code ||
				!strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) ||
				(tt.stdoutEmpty && stdout.Len() > 0) || (tt.stderrEmpty && stderr.Len() > 0) {
				t.Errorf("run(%q): exit %d (want %d)\n--- stdout (want %q):\n%s--- stderr (want %q):\n%s",
					tt.args, code, tt.code, tt.stdout, stdout.String(), tt.stderr, stderr.String())
			}
		})
	}
}

// TestRunCommands runs validate and test in-process on a definition written for the test.
func TestRunCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("switch.yaml", "name: switch\ninitial: down\nstates:\n  down:\n    on: {flip: up, remove: gone}\n  up:\n    on: {flip: down}\n  gone: {final: true}\n")
	write("switch.test.yaml", `cases:
  - name: flipping turns it up
    when: {event: flip}
    then: {state: up}
  - name: flipping twice is wrongly expected up
    when: [{event: flip}, {event: flip}]
    then: {state: up}
`)
	empty := t.TempDir()
	tests := []struct {
		args []string
		code int
		last string // the last line of stdout
		out  string // a substring of stdout or stderr
	}{
		{args: []string{"validate", dir}, code: exitOK, last: "1 definition, 0 errors, 0 warnings"},
		{args: []string{"validate", "--format", "json", dir}, code: exitOK, out: `"definitions": [
    "switch"
  ]`},
		{args: []string{"validate", empty}, code: exitFailed, out: "no definition files"},
		{args: []string{"validate", filepath.Join(dir, "missing")}, code: exitUsage, out: filepath.Join(dir, "missing")},
		{args: []string{"validate", "--format", "yaml", dir}, code: exitUsage, out: `--format must be text or json, not "yaml"`},
		{args: []string{"test", dir}, code: exitFailed, last: "1 passed, 1 failed", out: "state: expected up, got down"},
		{args: []string{"test", dir, "-run", "turns"}, code: exitOK, last: "1 passed, 0 failed"},
		{args: []string{"test", "-run", "[", dir}, code: exitUsage, out: "-run: error parsing regexp"},
		{args: []string{"test", "--coverage", "-run", "turns", dir}, code: exitOK, out: "not taken: down --remove[1]--> gone"},
		{args: []string{"test", empty}, code: exitFailed, last: "0 passed, 1 failed", out: "no transition tables"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			code := run(tt.args, &stdout, &stderr)
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if code != tt.code || (tt.last != "" && lines[len(lines)-1] != tt.last) ||
				!strings.Contains(stdout.String()+stderr.String(), tt.out) {
				t.Errorf("run(%q): exit %d (want %d), last line want %q, output want %q\n--- stdout:\n%s--- stderr:\n%s",
					tt.args, code, tt.code, tt.last, tt.out, stdout.String(), stderr.String())
			}
		})
	}
}

// TestFlagsOfEveryCommand: every command accepts -h, and its usage names it.
func TestFlagsOfEveryCommand(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		if c.name == "help" {
			continue
		}
		var stdout strings.Builder
		if code := c.run([]string{"-h"}, &stdout, io.Discard); code != exitOK || !strings.Contains(stdout.String(), "Usage: fsmd "+c.name) {
			t.Errorf("fsmd %s -h: exit %d\n%s", c.name, code, stdout.String())
		}
	}
}
