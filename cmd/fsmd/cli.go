package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
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
		{"keys", keysArgs, "make a new API key and the line of the keys file that grants it a role", runKeys},
		{"validate", "[--format text|json] [PATH...]", "check definition files and report every problem", runValidate},
		{"test", "[-run REGEX] [-v] [--coverage] [PATH...]", "run the transition tables (*.test.yaml)", runTest},
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

// newFlags makes the flag set of a command; its usage text goes to stdout for -h, stderr otherwise.
func newFlags(name, args string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fsmd "+name, flag.ContinueOnError)
	errs := &errWriter{w: stderr}
	fs.SetOutput(errs)
	fs.Usage = func() {
		// The flag package reports a wrong flag on the output before it calls Usage; -h it does not.
		w := stdout
		if errs.used {
			w = stderr
		}
		fs.SetOutput(w)
		defer fs.SetOutput(errs)
		fmt.Fprintf(w, "Usage: %s\n", strings.TrimSpace("fsmd "+name+" "+args))
		for _, c := range commands() {
			if c.name == name {
				fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
			}
		}
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nFlags (-name and --name alike):\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// errWriter remembers whether anything was written to stderr.
type errWriter struct {
	w    io.Writer
	used bool
}

func (e *errWriter) Write(p []byte) (int, error) {
	e.used = true
	return e.w.Write(p)
}

// parse parses flags and positional arguments in any order (fsmd test definitions/ -v), as users
// type them. On failure it returns the exit code: 0 for -h, 2 for a wrong flag.
func parse(fs *flag.FlagSet, args []string) (positional []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, exitOK, true
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), exitOK, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
