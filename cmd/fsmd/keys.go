package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/fsmd-io/fsmd/internal/auth"
)

const keysArgs = "new --role read|write|admin [--name NAME] [--groups A,B]"

// runKeys is `fsmd keys new`: a new random API key, printed once, and the line of the keys file
// (--api-keys) that grants it its role: the file holds the key's SHA-256, never the key.
func runKeys(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys", keysArgs, stdout, stderr)
	role := fs.String("role", "", "what the key may do: read (every GET), write (instances and events too), admin (everything)")
	name := fs.String("name", "", "the key's name, recorded as the actor of the events it sends")
	groups := fs.String("groups", "", "the groups of the key's holder, comma-separated (what `allow` in definitions will check)")
	rest, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) != 1 || rest[0] != "new" {
		fmt.Fprintf(stderr, "usage: fsmd keys %s\n", keysArgs)
		return exitUsage
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd keys new: --role: %v\n", err)
		return exitUsage
	}
	var gs []string
	if *groups != "" {
		gs = strings.Split(*groups, ",")
	}
	key, line, err := auth.New(r, *name, gs...)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd keys new: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "key:  %s\nline: %s\n", key, line)
	fmt.Fprintln(stderr, "Give the key to its user (it is not shown again) and add the line to the keys file (--api-keys).")
	return exitOK
}
