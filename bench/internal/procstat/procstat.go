// Package procstat reads the CPU time of processes and of the machine from /proc (Linux), for the
// benchmark drivers: each figure is -1 where it cannot be read (another system, a server in
// another container).
package procstat

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTick is USER_HZ, the unit of /proc's times: 100 on every Linux platform Go supports.
const ClockTick = 10 * time.Millisecond

// Stat reads a /proc/PID/stat file: see StatFields.
func Stat(path string) (string, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	return StatFields(string(data))
}

// StatFields returns the command name (field 2) of a /proc/PID/stat line and its fields from
// field 3 (state) on.
func StatFields(stat string) (string, []string) {
	// The name is in parentheses and may hold spaces and parentheses: cut at the last one.
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", nil
	}
	return stat[open+1 : end], strings.Fields(stat[end+1:])
}

// ProcCPU reads utime + stime (fields 14, 15) of a /proc/PID/stat file, with the reaped children's
// cutime + cstime (16, 17) when children is set; -1 when it cannot.
func ProcCPU(path string, children bool) time.Duration {
	_, f := Stat(path)
	return StatCPU(f, children)
}

func StatCPU(f []string, children bool) time.Duration {
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
	return time.Duration(ticks) * ClockTick
}

// PostgresCPU adds up the CPU time of the processes named postgres with their reaped children's:
// the backends, and through the postmaster's children times those that have exited. -1 when there
// are none (a server in another container, or not on Linux).
func PostgresCPU() time.Duration {
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
		comm, f := Stat("/proc/" + d.Name() + "/stat")
		if comm != "postgres" {
			continue
		}
		if t := StatCPU(f, true); t >= 0 {
			total += t
			found = true
		}
	}
	if !found {
		return -1
	}
	return total
}

// MachineBusy reads the time every CPU spent neither idle nor waiting for I/O, from /proc/stat.
func MachineBusy() time.Duration {
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
	return time.Duration(busy) * ClockTick
}
