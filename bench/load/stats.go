package main

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
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

// clockTick is USER_HZ, the unit of /proc's times: 100 on every Linux platform Go supports.
const clockTick = 10 * time.Millisecond

// sampleCPU reads the counters; pid is fsmd's, or 0 when it is not running.
func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now(), server: -1}
	if pid > 0 {
		s.server = procCPU("/proc/"+strconv.Itoa(pid)+"/stat", false)
	}
	s.client = procCPU("/proc/self/stat", true) // with pgbench once it has exited
	s.postgres = postgresCPU()
	s.busy = machineBusy()
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

// procStat reads a /proc/PID/stat file: see procStatFields.
func procStat(path string) (string, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	return procStatFields(string(data))
}

// procStatFields returns the command name (field 2) of a /proc/PID/stat line and its fields from
// field 3 (state) on.
func procStatFields(stat string) (string, []string) {
	// The name is in parentheses and may hold spaces and parentheses: cut at the last one.
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", nil
	}
	return stat[open+1 : end], strings.Fields(stat[end+1:])
}

// procCPU reads utime + stime (fields 14, 15) of a /proc/PID/stat file, with the reaped children's
// cutime + cstime (16, 17) when children is set; -1 when it cannot.
func procCPU(path string, children bool) time.Duration {
	_, f := procStat(path)
	return statCPU(f, children)
}

func statCPU(f []string, children bool) time.Duration {
	last := 12 // f[0] is field 3
	if children {
		last = 14
	}
	if len(f) <= last {
		return -1
	}
	var ticks int64
	for i := 11; i <= last; i++ {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return -1
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}

// postgresCPU adds up the CPU time of the processes named postgres with their reaped children's:
// the backends, and through the postmaster's children times those that have exited. -1 when there
// are none (a server in another container, or not on Linux).
func postgresCPU() time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	var total time.Duration
	found := false
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		comm, f := procStat("/proc/" + d.Name() + "/stat")
		if comm != "postgres" {
			continue
		}
		if t := statCPU(f, true); t >= 0 {
			total += t
			found = true
		}
	}
	if !found {
		return -1
	}
	return total
}

// machineBusy reads the time every CPU spent neither idle nor waiting for I/O, from /proc/stat.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		switch i {
		case 3, 4: // idle, iowait
		case 8, 9: // guest, guest_nice: counted in user and nice already
		default:
			busy += n
		}
	}
	return time.Duration(busy) * clockTick
}
