package main

// The reports of a run against pgbench (PostgreSQL) and of a run on SQLite, with the targets they
// are read against.

import (
	"fmt"
	"io"
	"time"
)

// Targets: issue 3's, fsmd at least 0.6 times pgbench -N at 8 clients with p99 under 20 ms (the
// RESULT line's target); issue 18's, fsmd at least 0.85 times the ceiling (the database's rate of
// fsmd's own write) with p99 under 10 ms (ceiling_target), at least 5,000 events/s on SQLite, and
// fsmd's peak RSS under 200 MiB (with 100,000 instances).
const (
	targetRatio        = 0.6
	targetP99          = 20 * time.Millisecond
	targetCeilingRatio = 0.85
	targetCeilingP99   = 10 * time.Millisecond
	targetSQLiteRate   = 5000
	targetRSS          = 200 << 20
)

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// eventsRow is the name of fsmd's row in the reports.
func (b *bench) eventsRow() string {
	if b.c.IdempotencyKey {
		return "fsmd events (idem. key)"
	}
	return "fsmd events"
}

// latencyHeader and latencyRow write the table of rates and latencies.
func latencyHeader(w io.Writer) {
	fmt.Fprintf(w, "%-22s %8s %10s %9s %9s %9s %9s %7s\n", "", "count", "per s", "p50", "p90", "p99", "max", "errors")
}

func latencyRow(w io.Writer, name string, n int, rate float64, l latencies, errs int) {
	fmt.Fprintf(w, "%-22s %8d %10.1f %9s %9s %9s %9s %7d\n", name, n, rate, ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max), errs)
}

// perEventUS is the CPU of cores (over u's elapsed time) per operation of n, in microseconds; -1
// when unknown.
func perEventUS(cores float64, u cpuUse, n int) float64 {
	if cores < 0 || n == 0 {
		return -1
	}
	return cores * u.elapsed.Seconds() * 1e6 / float64(n)
}

func (b *bench) report(version string, f fsmdResult, c, p pgbenchResult) {
	w := b.out
	events := b.fsmdLatency(f, version)
	latencyRow(w, "ceiling (fsmd's write)", c.count, c.tps, c.lat, c.failed)
	latencyRow(w, "pgbench -N", p.count, p.tps, p.lat, p.failed)
	if f.cpu.machine >= 0 {
		fmt.Fprintf(w, "CPU per event or transaction, in microseconds (%d cores; busy: the whole machine):\n", f.cpu.cores)
		fmt.Fprintf(w, "%-22s %8s %10s %9s %9s\n", "", "fsmd", "PostgreSQL", "client", "busy")
		cpuRow(w, events, f.cpu, f.count)
		cpuRow(w, "ceiling (fsmd's write)", c.cpu, c.count)
		cpuRow(w, "pgbench -N", p.cpu, p.count)
	}
	fmt.Fprintf(w, "audit check: %d events acknowledged, %d counted in the instances' revisions\n", f.acked, f.revisions)
	fmt.Fprintf(w, "ceiling check: each of its %d transactions updated one instance and wrote one audit row\n", c.count)
	rssOK := f.peakRSS >= 0 && f.peakRSS < targetRSS
	fmt.Fprintf(w, "fsmd peak RSS (VmHWM) %s MiB (target < %s MiB with 100,000 instances: %s)\n", mib(f.peakRSS), mib(targetRSS), verdict(rssOK))
	ratio := func(x, y float64) float64 {
		if y <= 0 {
			return 0
		}
		return x / y
	}
	r, rc := ratio(f.rate, p.tps), ratio(f.rate, c.tps)
	ratioOK, p99OK := r >= targetRatio, f.lat.p99 < targetP99
	ceilingOK := rc >= targetCeilingRatio && f.lat.p99 < targetCeilingP99
	fmt.Fprintf(w, "ratio fsmd/ceiling %.2f, fsmd p99 %s ms (target >= %.2f and < %s ms at 8 clients: %s)\n",
		rc, ms(f.lat.p99), targetCeilingRatio, ms(targetCeilingP99), verdict(ceilingOK))
	fmt.Fprintf(w, "ratio fsmd/pgbench %.2f (target >= %.1f: %s), fsmd p99 %s ms (target < %s ms: %s)\n",
		r, targetRatio, verdict(ratioOK), ms(f.lat.p99), ms(targetP99), verdict(p99OK))
	fmt.Fprintf(w, "RESULT database=postgres clients=%d duration=%s fsmd_events_per_s=%.1f fsmd_p50_ms=%s fsmd_p90_ms=%s fsmd_p99_ms=%s fsmd_max_ms=%s fsmd_cpu_us=%.0f fsmd_peak_rss_mib=%s ceiling_tps=%.1f ceiling_p99_ms=%s ceiling_ratio=%.2f ceiling_target=%s pgbench_tps=%.1f pgbench_p99_ms=%s ratio=%.2f target=%s\n",
		b.c.Clients, b.c.Duration, f.rate, ms(f.lat.p50), ms(f.lat.p90), ms(f.lat.p99), ms(f.lat.max),
		perEventUS(f.cpu.server, f.cpu, f.count), mib(f.peakRSS),
		c.tps, ms(c.lat.p99), rc, verdict(ceilingOK), p.tps, ms(p.lat.p99), r, verdict(ratioOK && p99OK))
}

// reportSQLite reports a run on SQLite: fsmd alone, SQLite's work inside its process; or on Citus
// (-database citus), fsmd alone too, its servers' work in the machine's.
func (b *bench) reportSQLite(f fsmdResult) {
	if b.c.Database == "citus" {
		b.reportCitus(f)
		return
	}
	w := b.out
	events := b.fsmdLatency(f, "")
	fmt.Fprintf(w, "no pgbench: SQLite runs inside fsmd, there is no database server to compare with\n")
	aloneCPU(w, events, f, "fsmd includes SQLite; busy: the whole machine")
	fmt.Fprintf(w, "audit check: %d events acknowledged, %d counted in the instances' revisions\n", f.acked, f.revisions)
	rssOK := f.peakRSS >= 0 && f.peakRSS < targetRSS
	fmt.Fprintf(w, "fsmd peak RSS (VmHWM) %s MiB (target < %s MiB with 100,000 instances: %s)\n", mib(f.peakRSS), mib(targetRSS), verdict(rssOK))
	ok := f.rate >= targetSQLiteRate
	fmt.Fprintf(w, "fsmd %.1f events/s, p99 %s ms (target >= %d events/s at 8 clients: %s)\n", f.rate, ms(f.lat.p99), targetSQLiteRate, verdict(ok))
	fmt.Fprintf(w, "RESULT database=sqlite clients=%d duration=%s fsmd_events_per_s=%.1f fsmd_p50_ms=%s fsmd_p90_ms=%s fsmd_p99_ms=%s fsmd_max_ms=%s fsmd_cpu_us=%.0f fsmd_peak_rss_mib=%s target=%s\n",
		b.c.Clients, b.c.Duration, f.rate, ms(f.lat.p50), ms(f.lat.p90), ms(f.lat.p99), ms(f.lat.max),
		perEventUS(f.cpu.server, f.cpu, f.count), mib(f.peakRSS), verdict(ok))
}

// cpuRow writes the CPU a phase used per operation, in microseconds.
func cpuRow(w io.Writer, name string, u cpuUse, n int) {
	per := func(cores float64) string {
		if us := perEventUS(cores, u, n); us >= 0 {
			return fmt.Sprintf("%.0f", us)
		}
		return "-"
	}
	fmt.Fprintf(w, "%-22s %8s %10s %9s %9s\n", name, per(u.server), per(u.postgres), per(u.client), per(u.machine))
}

// reportCitus reports a run on Citus: fsmd alone. Its yardstick is fsmd on plain PostgreSQL on the
// same machine (a -database postgres run beside it): no pgbench replays fsmd's statements on Citus.
func (b *bench) reportCitus(f fsmdResult) {
	w := b.out
	events := b.fsmdLatency(f, b.citusVersion)
	fmt.Fprintf(w, "no pgbench on Citus: compare with a -database postgres run beside it (target: Citus >= 0.6 x its events/s)\n")
	aloneCPU(w, events, f, "busy: the whole machine, Citus's coordinator and workers included")
	fmt.Fprintf(w, "audit check: %d events acknowledged, %d counted in the instances' revisions\n", f.acked, f.revisions)
	fmt.Fprintf(w, "RESULT database=citus clients=%d duration=%s fsmd_events_per_s=%.1f fsmd_p50_ms=%s fsmd_p90_ms=%s fsmd_p99_ms=%s fsmd_max_ms=%s fsmd_cpu_us=%.0f fsmd_peak_rss_mib=%s\n",
		b.c.Clients, b.c.Duration, f.rate, ms(f.lat.p50), ms(f.lat.p90), ms(f.lat.p99), ms(f.lat.max),
		perEventUS(f.cpu.server, f.cpu, f.count), mib(f.peakRSS))
}

// fsmdLatency writes a report's title (the database of that version) and the latency table's
// header and fsmd's row, and returns the row's name.
func (b *bench) fsmdLatency(f fsmdResult, version string) string {
	w := b.out
	fmt.Fprintf(w, "\nfsmd load: %d clients, %v measured after %v warm-up, %d instances, %s\n",
		b.c.Clients, b.c.Duration, b.c.Warmup, b.c.Instances, b.databaseName(version))
	latencyHeader(w)
	events := b.eventsRow()
	latencyRow(w, events, f.count, f.rate, f.lat, f.errors)
	return events
}

// aloneCPU writes the CPU per event of a run without a PostgreSQL server of the machine's (its
// column is not used: whatever that server does meanwhile is others' work), its note in the header.
func aloneCPU(w io.Writer, events string, f fsmdResult, note string) {
	if f.cpu.machine < 0 {
		return
	}
	fmt.Fprintf(w, "CPU per event, in microseconds (%d cores; %s):\n", f.cpu.cores, note)
	fmt.Fprintf(w, "%-22s %8s %10s %9s %9s\n", "", "fsmd", "PostgreSQL", "client", "busy")
	u := f.cpu
	u.postgres = -1
	cpuRow(w, events, u, f.count)
}
