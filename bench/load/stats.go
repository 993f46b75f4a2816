package main

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/bench/internal/procstat"
)

// latencies summarizes a phase's request times.
type latencies struct {
	p50, p90, p99, max time.Duration
}

// summarize sorts d (in place) and takes its percentiles by nearest rank.
func summarize(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	slices.Sort(d)
	return latencies{p50: percentile(d, 50), p90: percentile(d, 90), p99: percentile(d, 99), max: d[len(d)-1]}
}

// percentile is the nearest-rank percentile p of sorted, non-empty d: the smallest value with at
// least p percent of the values at or below it.
func percentile(d []time.Duration, p int) time.Duration {
	rank := (p*len(d) + 99) / 100 // ceil(p/100 * n)
	return d[max(rank, 1)-1]
}

// cpuSample is the CPU time used so far by the fsmd server, this process (and its children that
// have exited: pgbench), PostgreSQL (every process
// named postgres, and the children the postmaster has reaped) and the whole machine, read from /proc
// (Linux). A part that cannot be read is negative.
type cpuSample struct {
	at                       time.Time
	server, client, postgres time.Duration
	busy                     time.Duration
}

// cpuUse is the CPU used between two samples, in cores (1.0: one core busy all along); a part that
// could not be read is negative.
type cpuUse struct {
	server, client, postgres, machine float64
	cores                             int
	elapsed                           time.Duration
}

// sampleCPU reads the counters; pid is fsmd's, or 0 when it is not running.
func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now(), server: -1}
	if pid > 0 {
		s.server = procstat.ProcCPU("/proc/"+strconv.Itoa(pid)+"/stat", false)
	}
	s.client = procstat.ProcCPU("/proc/self/stat", true) // with pgbench once it has exited
	s.postgres = procstat.PostgresCPU()
	s.busy = procstat.MachineBusy()
	return s
}

func (s cpuSample) use(end cpuSample) cpuUse {
	el := end.at.Sub(s.at)
	u := cpuUse{cores: runtime.NumCPU(), elapsed: el}
	cores := func(a, b time.Duration) float64 {
		if a < 0 || b < 0 || el <= 0 {
			return -1
		}
		return float64(b-a) / float64(el)
	}
	u.server, u.client = cores(s.server, end.server), cores(s.client, end.client)
	u.postgres, u.machine = cores(s.postgres, end.postgres), cores(s.busy, end.busy)
	return u
}

// peakRSS is the peak resident set size of process pid (VmHWM in /proc/PID/status, Linux), in
// bytes, read while it runs; -1 when it cannot be read.
func peakRSS(pid int) int64 { return procStatus(pid, "VmHWM") }

// procStatus reads a size field of /proc/PID/status (VmHWM, VmRSS), in bytes; -1 when it cannot.
func procStatus(pid int, field string) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	return parseStatusSize(string(data), field)
}

// parseStatusSize reads the line field of a /proc/PID/status ("VmHWM:     51234 kB"), in bytes; -1
// without one.
func parseStatusSize(status, field string) int64 {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return -1
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return -1
		}
		return kb << 10
	}
	return -1
}

// mib writes bytes in MiB with one decimal, "-" when unknown.
func mib(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64)
}
