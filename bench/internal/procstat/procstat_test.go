package procstat

import "testing"

func TestStatCPU(t *testing.T) {
	t.Parallel()
	// /proc/PID/stat of a process whose name holds a space and a parenthesis.
	stat := "1234 (post gres)) S 1 1234 1234 0 -1 4194560 1000 0 0 0 150 50 7 3 20 0 1 0 100 0 0"
	comm, f := StatFields(stat)
	if comm != "post gres)" {
		t.Errorf("comm %q", comm)
	}
	if got := StatCPU(f, false); got != 200*ClockTick {
		t.Errorf("utime+stime = %v, want %v", got, 200*ClockTick)
	}
	if got := StatCPU(f, true); got != 210*ClockTick {
		t.Errorf("with children = %v, want %v", got, 210*ClockTick)
	}
	if got := StatCPU(f[:5], false); got != -1 {
		t.Errorf("a short line = %v, want -1", got)
	}
}
