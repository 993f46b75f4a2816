package main

import (
	"fmt"
	"io"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "[--format text|json] [PATH...]", stdout, stderr)
	format := fs.String("format", "text", "output format: text (path:line:col: error: message) or json")
	paths, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "fsmd validate: --format must be text or json, not %q\n", *format)
		return exitUsage
	}
	if len(paths) == 0 {
		paths = []string{defaultPath}
	}
	set, diags, err := machine.Load(paths...)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd validate: %v\n", err)
		return exitUsage
	}
	if *format == "json" {
		writeJSON(stdout, set, diags)
	} else {
		diags.WriteText(stdout)
		fmt.Fprintf(stdout, "%s, %s, %s\n", plural(len(set.ByName), "definition"), plural(diags.Errors(), "error"), plural(diags.Warnings(), "warning"))
	}
	if diags.Errors() > 0 {
		return exitFailed
	}
	return exitOK
}

// report is the JSON form of a validation.
type report struct {
	Definitions []string           `json:"definitions"`
	Errors      int                `json:"errors"`
	Warnings    int                `json:"warnings"`
	Diagnostics source.Diagnostics `json:"diagnostics"`
}

func writeJSON(w io.Writer, set *machine.Set, diags source.Diagnostics) {
	if diags == nil {
		diags = source.Diagnostics{}
	}
	printJSON(w, report{Definitions: set.Names(), Errors: diags.Errors(), Warnings: diags.Warnings(), Diagnostics: diags})
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
