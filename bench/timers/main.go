// Command timers measures how late durable timers fire, and how many one scheduler fires a second
// (issue 5's benchmark, issue 18's target 5):
//
//	go run ./bench/timers -timers 10000 -over 1m
//	go run ./bench/timers -timers 100000 -over 1m -fsmd /tmp/old/fsmd,/tmp/new/fsmd
//	go run ./bench/timers -timers 100000 -start -1m -over 1m -fsmd /tmp/old/fsmd,/tmp/new/fsmd
//
// Each run creates a fresh database (PostgreSQL, or with -sqlite a file), registers the ping
// definition of tests/testdata/timers (a timer at ctx.due), and creates the instances and their
// timers (as creating them through the API would arm them), due evenly over -over from -start after
// they are written (a negative -start: already due). The schedulers are this tree's
// (service.RunTimers in this process, -processes of them each with its own pool, -poll as
// --timer-poll) or, with -fsmd, -processes `fsmd serve` children of each binary listed, one run
// per binary, repeated -rounds times in turn so that the binaries are measured side by side.
//
// It reads the lag of each timer two ways: from its audit row (its time minus the due time: what
// fsmd recorded, which for a batch is the time it was claimed) and as observed (when the count of
// fired timers, read every 50 ms, first covered it, minus its due time, in due order: what a
// client would see, to 50 ms), and the rate: the timers fired a second from the first due time (or
// the write, when they were due already) to the last commit observed. It fails when a timer fired
// twice, never, or early. The last lines start with "RESULT".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// config is a benchmark's flags.
type config struct {
	n          int
	over       time.Duration
	start      time.Duration
	poll       time.Duration
	processes  int
	serverURL  string
	defs       string
	sqlite     bool
	binaries   []string // "" for this tree's scheduler in this process
	rounds     int
	parallel   int // TimerOptions.Rounds of the in-process schedulers
	runTimeout time.Duration
}

func main() {
	var c config
	var bins string
	flag.IntVar(&c.n, "timers", 10_000, "timers (one instance each)")
	flag.DurationVar(&c.over, "over", time.Minute, "the due times are spread evenly over this")
	flag.DurationVar(&c.start, "start", 5*time.Second, "the first due time, from when the timers are written (negative: already due)")
	flag.DurationVar(&c.poll, "poll", 200*time.Millisecond, "the schedulers' poll interval (fsmd serve --timer-poll)")
	flag.IntVar(&c.processes, "processes", 1, "schedulers on the database, each with its own pool, as fsmd processes")
	flag.StringVar(&c.serverURL, "database-url", dbtest.DefaultPostgresURL, "the PostgreSQL server (its database part is replaced)")
	flag.StringVar(&c.defs, "definitions", "tests/testdata/timers", "the folder of ping.yaml")
	flag.BoolVar(&c.sqlite, "sqlite", false, "run on SQLite (a file in a temporary folder) instead of PostgreSQL")
	flag.StringVar(&bins, "fsmd", "", "comma-separated fsmd binaries to run as the schedulers (fsmd serve), one run each, in turn; empty: this tree's, in process")
	flag.IntVar(&c.rounds, "rounds", 1, "how many times to run the list of -fsmd binaries, in turn")
	flag.IntVar(&c.parallel, "parallel", 0, "the in-process schedulers' rounds at once on PostgreSQL (service.TimerOptions.Rounds; 0: its default)")
	flag.DurationVar(&c.runTimeout, "timeout", 2*time.Minute, "how long after the last due time a run may take")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process to the file (the in-process scheduler's runs)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	c.binaries = []string{""}
	if bins != "" {
		c.binaries = strings.Split(bins, ",")
	}
	if c.n < 1 || c.n > 1_000_000 || c.over <= 0 || c.processes < 1 || c.processes > 16 || c.rounds < 1 || c.rounds > 20 ||
		len(c.binaries) > 8 || c.start < -time.Hour || c.start > time.Hour {
		fmt.Fprintln(os.Stderr, "timers: want 1 to 1000000 timers, a positive -over, -start within an hour, 1 to 16 processes, 1 to 20 rounds, at most 8 binaries")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var results []result
	for round := range c.rounds {
		for _, bin := range c.binaries {
			r, err := run(ctx, c, bin)
			if err != nil {
				fmt.Fprintf(os.Stderr, "timers: %s: %v\n", label(bin), err)
				pprof.StopCPUProfile()
				os.Exit(1)
			}
			r.round = round + 1
			fmt.Println(r.line())
			results = append(results, r)
		}
	}
	fmt.Println()
	for _, r := range results {
		fmt.Println(r.resultLine())
	}
}

// label names a run's scheduler: the binary's path, or this tree's.
func label(bin string) string {
	if bin == "" {
		return "in-process"
	}
	return bin
}
