package main

import (
	"runtime"
	"strconv"
	"time"

	"github.com/fsmd-io/fsmd/bench/internal/procstat"
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

func sampleCPU(pid int) cpuSample {
	return cpuSample{at: time.Now(), server: procstat.ProcCPU("/proc/"+strconv.Itoa(pid)+"/stat", false), postgres: procstat.PostgresCPU(),
		busy: procstat.MachineBusy()}
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
