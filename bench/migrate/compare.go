package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// With -old, the driver compares two builds side by side: in each round it runs the binary at -old
// (this benchmark built from another commit, e.g. the base of a change) and itself, each as a child
// process on a database of its own with the same flags, in alternating order (old first in odd
// rounds), and prints both figures, their ratios and the load average before each run. On a
// shared machine only such ratios, measured in one run, say whether a change made it faster.

// maxRounds bounds -rounds: each round creates and migrates the instances twice.
const maxRounds = 10

// build is one side of a comparison: a binary and the extra flags it gets.
type build struct {
	name string
	path string
	args []string
}

// sample is one run of a build: its RESULT figures and the load average before it.
type sample struct {
	round       int
	build       string
	plan, run   float64 // seconds
	load1       string
	load1After  string
	resultExtra string // the rest of the RESULT line, as printed
}

// compare runs rounds of old and self, alternating, and prints the figures. common are the flags
// both get; newArgs those only this build knows (old may predate them).
func compare(ctx context.Context, oldPath string, rounds int, common, newArgs []string, out io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := os.Stat(oldPath); err != nil {
		return fmt.Errorf("-old: %w", err)
	}
	builds := []build{{"old", oldPath, common}, {"new", self, append(slices.Clone(common), newArgs...)}}
	var samples []sample
	for r := 1; r <= rounds; r++ {
		order := builds
		if r%2 == 0 {
			order = []build{builds[1], builds[0]}
		}
		for _, b := range order {
			s, err := runChild(ctx, b, out)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, b.name, err)
			}
			s.round = r
			samples = append(samples, s)
		}
	}
	printComparison(out, samples)
	return nil
}

// runChild runs one build to the end, copying its output with the build's name before each line,
// and returns its figures.
func runChild(ctx context.Context, b build, out io.Writer) (sample, error) {
	s := sample{build: b.name, load1: loadAverage()}
	cmd := exec.CommandContext(ctx, b.path, b.args...)
	cmd.Stderr = os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // so that it drops its database
	cmd.WaitDelay = 30 * time.Second
	var buf bytes.Buffer
	cmd.Stdout = &buf
	err := cmd.Run()
	sc := bufio.NewScanner(&buf)
	var result string
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(out, "%s| %s\n", b.name, line)
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			result = rest
		}
	}
	if err != nil {
		return s, err
	}
	s.load1After = loadAverage()
	f := resultFields(result)
	var perr error
	if s.plan, perr = strconv.ParseFloat(f["plan_s"], 64); perr != nil {
		return s, fmt.Errorf("no plan_s in its RESULT line %q", result)
	}
	if s.run, perr = strconv.ParseFloat(f["run_s"], 64); perr != nil {
		return s, fmt.Errorf("no run_s in its RESULT line %q", result)
	}
	s.resultExtra = result
	return s, nil
}

// resultFields splits a RESULT line's key=value pairs.
func resultFields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// loadAverage is the one-minute load average of the machine, "?" where /proc has none.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// printComparison prints every run and, per round, new's figures over old's.
func printComparison(w io.Writer, samples []sample) {
	fmt.Fprintf(w, "\n%-6s %-4s %8s %8s %s\n", "round", "", "plan s", "run s", "load average before/after")
	byRound := map[int]map[string]sample{}
	for _, s := range samples {
		fmt.Fprintf(w, "%-6d %-4s %8.2f %8.2f %s/%s\n", s.round, s.build, s.plan, s.run, s.load1, s.load1After)
		if byRound[s.round] == nil {
			byRound[s.round] = map[string]sample{}
		}
		byRound[s.round][s.build] = s
	}
	var planRatios, runRatios []string
	for r := 1; r <= len(byRound); r++ {
		o, n := byRound[r]["old"], byRound[r]["new"]
		if o.plan > 0 && o.run > 0 {
			planRatios = append(planRatios, fmt.Sprintf("%.2f", n.plan/o.plan))
			runRatios = append(runRatios, fmt.Sprintf("%.2f", n.run/o.run))
		}
	}
	fmt.Fprintf(w, "new/old per round: plan %s; run %s\n", strings.Join(planRatios, " "), strings.Join(runRatios, " "))
}
