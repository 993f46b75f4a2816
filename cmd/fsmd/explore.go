package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/fsmd-io/fsmd/internal/explore"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// exploreOptions are the flags of fsmd test --explore.
type exploreOptions struct {
	explore, emitCases bool
	depth, max         int
}

func exploreFlags(fs *flag.FlagSet) *exploreOptions {
	o := &exploreOptions{}
	fs.BoolVar(&o.explore, "explore", false, "walk each definition from its initial state with generated events and report the states never reached")
	fs.IntVar(&o.depth, "depth", explore.DefaultDepth, "with --explore: steps (events and clock advances) from the initial state")
	fs.IntVar(&o.max, "max", explore.DefaultMax, "with --explore: instances visited at most per definition")
	fs.BoolVar(&o.emitCases, "emit-cases", false, "with --explore: print a transition-table case reaching each state, as YAML (the report goes to stderr)")
	return o
}

// onlyWithExplore names a flag of --explore given without it, or "".
func (o *exploreOptions) onlyWithExplore(fs *flag.FlagSet) string {
	for _, name := range []string{"depth", "max", "emit-cases"} {
		if isSet(fs, name) {
			return name
		}
	}
	return ""
}

// conflict says what is wrong with the flags of an exploration, or "".
func (o *exploreOptions) conflict(fs *flag.FlagSet) string {
	switch {
	case !o.explore:
		return "--" + o.onlyWithExplore(fs) + " needs --explore"
	case isSet(fs, "run") || isSet(fs, "coverage") || isSet(fs, "v"):
		return "--explore runs no transition table: -run, -v and --coverage do not apply"
	case o.depth < 1 || o.depth > 1000:
		return fmt.Sprintf("--depth must be between 1 and 1000, not %d", o.depth)
	case o.max < 1:
		return fmt.Sprintf("--max must be at least 1, not %d", o.max)
	}
	return ""
}

// runExplore explores the definitions under paths. Its last line is "N states reached, M not"; it
// exits 1 when a state was not reached or a definition file is invalid. With --emit-cases the cases
// are the output (stdout, one YAML document per definition) and the report goes to stderr.
func runExplore(paths []string, o *exploreOptions, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		paths = []string{defaultPath}
	}
	set, diags, err := machine.Load(paths...)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd test: %v\n", err)
		return exitUsage
	}
	report, cases := stdout, io.Discard
	if o.emitCases {
		report, cases = stderr, stdout
	}
	var errs source.Diagnostics
	for _, d := range diags {
		if d.Severity == source.SevError {
			errs = append(errs, d)
		}
	}
	errs.WriteText(report)
	reached, not := 0, 0
	for i, name := range set.Names() {
		r := explore.Explore(set.ByName[name], explore.Options{Depth: o.depth, Max: o.max})
		r.WriteText(report)
		reached, not = reached+len(r.Reached), not+len(r.Unreached)
		if o.emitCases {
			data, err := r.Cases()
			if err != nil {
				fmt.Fprintf(stderr, "fsmd test: writing the cases of %s: %v\n", name, err)
				return exitFailed
			}
			if i > 0 {
				fmt.Fprintln(cases, "---")
			}
			cases.Write(data)
		}
	}
	if n := errs.Errors(); n > 0 {
		fmt.Fprintf(report, "%s could not be explored\n", plural(n, "error"))
	}
	fmt.Fprintf(report, "%d states reached, %d not\n", reached, not)
	if not > 0 || errs.Errors() > 0 {
		return exitFailed
	}
	return exitOK
}
