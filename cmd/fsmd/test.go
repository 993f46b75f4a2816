package main

import (
	"fmt"
	"io"
	"regexp"

	"github.com/fsmd-io/fsmd/internal/table"
)

const testArgs = "[-run REGEX] [-v] [--coverage] [--explore [--depth N] [--max N] [--emit-cases]] [PATH...]"

func runTest(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("test", testArgs, stdout, stderr)
	pattern := fs.String("run", "", "run only the cases whose name matches this regular expression")
	verbose := fs.Bool("v", false, "print every case and what each step did")
	coverage := fs.Bool("coverage", false, "list the transitions no case took and the guards not seen both true and false")
	ex := exploreFlags(fs)
	paths, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if ex.explore || ex.onlyWithExplore(fs) != "" {
		if bad := ex.conflict(fs); bad != "" {
			fmt.Fprintf(stderr, "fsmd test: %s\n", bad)
			return exitUsage
		}
		return runExplore(paths, ex, stdout, stderr)
	}
	opts := table.Options{Verbose: *verbose, Coverage: *coverage}
	if *pattern != "" {
		re, err := regexp.Compile(*pattern)
		if err != nil {
			fmt.Fprintf(stderr, "fsmd test: -run: %v\n", err)
			return exitUsage
		}
		opts.Run = re
	}
	if len(paths) == 0 {
		paths = []string{defaultPath}
	}
	suite, err := table.Load(paths...)
	if err != nil {
		fmt.Fprintf(stderr, "fsmd test: %v\n", err)
		return exitUsage
	}
	if sum := suite.Run(stdout, opts); sum.Failed > 0 {
		return exitFailed
	}
	return exitOK
}
