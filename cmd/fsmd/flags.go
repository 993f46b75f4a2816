package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/outbox"
)

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

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// env is the environment variable name, or def when it is unset (set and empty is a value).
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envBool reads a boolean environment variable (1, true, 0, false, ...); unset or empty is false.
func envBool(name string) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not a boolean (true or false)", name, v)
	}
	return b, nil
}

// networks parses a comma-separated list of networks (CIDR, or one address) and "private".
func networks(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case item == "private":
			out = append(out, outbox.PrivateNetworks...)
		case strings.Contains(item, "/"):
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network (like 10.0.0.0/8): %v", item, err)
			}
			out = append(out, p.Masked())
		default:
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network (like 10.0.0.0/8) or an address: %v", item, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// values parses flag values until one fails, and keeps that failure, named by its flag: the
// parsing reads as a list, with one check at its end.
type values struct{ err error }

func (v *values) duration(flag, s string) time.Duration {
	if v.err != nil {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.err = fmt.Errorf("%s: %v", flag, err)
	}
	return d
}

func (v *values) integer(flag, s string) int {
	if v.err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		v.err = fmt.Errorf("%s: %q is not a whole number", flag, s)
	}
	return n
}

func (v *values) networks(flag, s string) []netip.Prefix {
	if v.err != nil {
		return nil
	}
	n, err := networks(s)
	if err != nil {
		v.err = fmt.Errorf("%s: %v", flag, err)
	}
	return n
}
