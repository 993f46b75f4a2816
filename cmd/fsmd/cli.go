package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// Exit codes: 0 all good, 1 the input has problems (invalid definitions, failing cases), 2 the command
// itself was wrong (unknown flag, missing path).
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	defaultPath = "definitions"
)

// version is set at build time (make build) with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, args, summary string
	run                 func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", serveArgs, "run the service: the REST API and Swagger UI", runServe},
		{"migrate", migrateArgs, "plan (dry run) or run the migration of a definition's running instances to a newer version", runMigrate},
		{"stats", statsArgs, "print a definition's process stats from the audit log, as JSON", runStats},
		{"export", exportArgs, "write a definition's instances with their histories, as NDJSON", runExport},
		{"keys", keysArgs, "make a new API key and the line of the keys file that grants it a role", runKeys},
		{"validate", "[--format text|json] [PATH...]", "check definition files and report every problem", runValidate},
		{"test", testArgs, "run the transition tables (*.test.yaml), or explore the definitions (--explore)", runTest},
		{"version", "", "print the version", runVersion},
		{"help", "[COMMAND]", "show help for fsmd or a command", runHelp},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "fsmd: unknown command %q (run fsmd help)\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "fsmd: rule-driven state machines, defined in YAML.\n\nUsage:\n  fsmd COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nPATH is a definition file or a folder of them; the default is ./%s.\n", defaultPath)
	fmt.Fprintf(w, "Exit status: 0 success, 1 problems in the definitions or failing cases, 2 wrong usage.\n")
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run([]string{"-h"}, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "fsmd help: unknown command %q\n", args[0])
	return exitUsage
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", stdout, stderr)
	if _, code, ok := parse(fs, args); !ok {
		return code
	}
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	fmt.Fprintf(stdout, "fsmd %s (%s %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// signalContext is the context of a command: it ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// printJSON writes v as indented JSON, as every command that answers in JSON does.
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
