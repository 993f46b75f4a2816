package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The CPU fsmd, PostgreSQL and the whole machine used over the delivery, read from /proc (Linux;
// elsewhere the figures are "-"). The same reading as bench/load's.

// cpuSample is the CPU time used so far.
type cpuSample struct {
	at                     time.Time
	server, postgres, busy time.Duration // -1: could not be read
}

// cpuUse is the CPU used between two samples, in cores (1.0: one core busy all along); -1 unknown.
type cpuUse struct {
	server, postgres, machine float64
	cores                     int
	elapsed                   time.Duration
}

// clockTick is USER_HZ, the unit of /proc's times.
const clockTick = 10 * time.Millisecond

func sampleCPU(pid int) cpuSample {
	_, f := procStat("/proc/" + strconv.Itoa(pid) + "/stat")
	return cpuSample{at: time.Now(), server: statCPU(f, false), postgres: postgresCPU(), busy: machineBusy()}
}

func (s cpuSample) use(end cpuSample) cpuUse {
	el := end.at.Sub(s.at)
	cores := func(a, b time.Duration) float64 {
		if a < 0 || b < 0 || el <= 0 {
			return -1
		}
		return float64(b-a) / float64(el)
	}
	return cpuUse{server: cores(s.server, end.server), postgres: cores(s.postgres, end.postgres),
		machine: cores(s.busy, end.busy), cores: runtime.NumCPU(), elapsed: el}
}

// procStat returns the command name of a /proc/PID/stat file and its fields from field 3 on.
func procStat(path string) (string, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	stat := string(data)
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", nil
	}
	return stat[open+1 : end], strings.Fields(stat[end+1:])
}

// statCPU is utime + stime (fields 14, 15), with the reaped children's (16, 17) when children is
// set; -1 when it cannot be read.
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

// postgresCPU adds up the CPU time of the processes named postgres, with their reaped children's.
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

// machineBusy is the time every CPU spent neither idle nor waiting for I/O, from /proc/stat.
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
		case 3, 4, 8, 9: // idle, iowait; guest and guest_nice are counted in user and nice already
		default:
			busy += n
		}
	}
	return time.Duration(busy) * clockTick
}
