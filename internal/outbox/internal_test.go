package outbox

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestGuard(t *testing.T) {
	t.Parallel()
	def := newGuard(nil, nil)
	private := newGuard(nil, PrivateNetworks)
	allowing := newGuard([]netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("10.1.0.0/16")}, PrivateNetworks)
	tests := []struct {
		addr                    string
		byDefault, priv, allows bool // refused?
	}{
		{"93.184.216.34", false, false, false},
		{"2606:2800:220:1::1", false, false, false},
		{"127.0.0.1", false, true, true},
		{"::1", false, true, true},
		{"10.1.2.3", false, true, false},
		{"10.2.0.1", false, true, true},
		{"192.168.1.1", false, true, true},
		{"fd12::1", false, true, true},
		{"169.254.169.254", true, true, false},
		{"169.254.1.1", true, true, false},
		{"::ffff:169.254.169.254", true, true, false},
		{"64:ff9b::a9fe:a9fe", true, true, false}, // NAT64 of 169.254.169.254
		{"fe80::1", true, true, true},
		{"fd00:ec2::254", true, true, true},
		{"100.100.100.200", true, true, true},
		{"0.0.0.0", true, true, true},
		{"::", true, true, true},
		{"224.0.0.1", true, true, true},
		{"255.255.255.255", true, true, true},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		for _, g := range []struct {
			name    string
			g       *guard
			refused bool
		}{{"default", def, tt.byDefault}, {"deny private", private, tt.priv}, {"allow", allowing, tt.allows}} {
			err := g.g.checkAddr("h", a)
			var re *RefusedError
			if (err != nil) != g.refused || err != nil && !errors.As(err, &re) {
				t.Errorf("%s: checkAddr(%s) = %v, want refused %v", g.name, tt.addr, err, g.refused)
			}
		}
	}
	err := def.control("tcp4", "169.254.169.254:80", nil)
	if err == nil || !strings.Contains(err.Error(), "refused: 169.254.169.254 is a cloud metadata address (in 169.254.169.254/32)") {
		t.Errorf("control = %v", err)
	}
	if err := def.control("tcp6", "[2606:2800:220:1::1]:443", nil); err != nil {
		t.Errorf("control = %v", err)
	}
	for _, host := range []string{"metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata.goog"} {
		if err := def.checkHost(host); err == nil {
			t.Errorf("checkHost(%s) = nil", host)
		}
		if err := allowing.checkHost(host); err != nil {
			t.Errorf("allowing: checkHost(%s) = %v", host, err)
		}
	}
	if err := def.checkHost("example.com"); err != nil {
		t.Errorf("checkHost(example.com) = %v", err)
	}
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	var changes []string
	bs := newBreakers(3, time.Minute, func(dest, from, to string) { changes = append(changes, dest+" "+from+"->"+to) })
	t0 := time.Unix(1000, 0)
	allow := func(dest string, at time.Time) bool {
		ok, _ := bs.allow(dest, at)
		return ok
	}
	if !allow("a", t0) || bs.state("a", t0) != BreakerClosed {
		t.Fatal("a new destination is not closed")
	}
	bs.failure("a", t0)
	bs.failure("a", t0)
	bs.success("a") // resets the count
	bs.failure("a", t0)
	bs.failure("a", t0)
	if !allow("a", t0) || bs.state("a", t0) != BreakerClosed {
		t.Fatal("two failures opened the breaker")
	}
	bs.failure("a", t0)
	if allow("a", t0.Add(time.Second)) || bs.state("a", t0) != BreakerOpen {
		t.Fatal("three failures did not open the breaker")
	}
	if skip := bs.skip(t0.Add(time.Second)); !slices.Equal(skip, []string{"a"}) {
		t.Errorf("skip = %v", skip)
	}
	if ok, retry := bs.allow("a", t0.Add(time.Second)); ok || !retry.Equal(t0.Add(time.Minute)) {
		t.Errorf("allow while open = %v, %v", ok, retry)
	}
	if !allow("b", t0) {
		t.Error("another destination is held up")
	}
	// After the cool-down one probe goes; the others wait for it.
	t1 := t0.Add(time.Minute)
	if bs.state("a", t1) != BreakerHalfOpen || len(bs.skip(t1)) != 0 {
		t.Errorf("after the cool-down: %s, skip %v", bs.state("a", t1), bs.skip(t1))
	}
	if !allow("a", t1) || allow("a", t1) {
		t.Fatal("half-open: not exactly one probe")
	}
	if skip := bs.skip(t1); !slices.Equal(skip, []string{"a"}) {
		t.Errorf("skip while probing = %v", skip)
	}
	bs.failure("a", t1) // the probe failed: open again
	if allow("a", t1.Add(time.Second)) || bs.state("a", t1) != BreakerOpen {
		t.Fatal("a failed probe did not open the breaker")
	}
	t2 := t1.Add(time.Minute)
	if !allow("a", t2) {
		t.Fatal("no probe after the second cool-down")
	}
	bs.done("a") // canceled: another probe may go
	if !allow("a", t2) {
		t.Fatal("no probe after a canceled one")
	}
	bs.success("a")
	first, second := allow("a", t2), allow("a", t2) // closed: every attempt goes
	if !first || !second || bs.state("a", t2) != BreakerClosed {
		t.Fatal("a successful probe did not close the breaker")
	}
	want := []string{"a closed->open", "a open->half-open", "a half-open->open", "a open->half-open", "a half-open->closed"}
	if !slices.Equal(changes, want) {
		t.Errorf("changes:\n got %v\nwant %v", changes, want)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	d := &Dispatcher{cfg: Config{BackoffBase: 10 * time.Millisecond, BackoffCap: time.Second}}
	for n, ceiling := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 4: 80 * time.Millisecond,
		7: 640 * time.Millisecond, 8: time.Second, 100: time.Second, 1 << 30: time.Second} {
		var most time.Duration
		for range 2000 {
			b := d.backoff(n)
			if b < 0 || b > ceiling {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, b, ceiling)
			}
			most = max(most, b)
		}
		if most < ceiling/2 { // full jitter spreads over the whole range
			t.Errorf("backoff(%d): at most %v of %v in 2000 draws", n, most, ceiling)
		}
	}
	huge := &Dispatcher{cfg: Config{BackoffBase: time.Hour, BackoffCap: 1<<63 - 1}}
	if b := huge.backoff(200); b < 0 {
		t.Errorf("backoff overflowed: %v", b)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	got := clean("HTTP 500: \x00bad\xffbytes\nline" + strings.Repeat("é", 2000))
	if !utf8.ValidString(got) || strings.ContainsAny(got, "\x00\n") || len(got) > maxErrorBytes+3 || !strings.HasPrefix(got, "HTTP 500:  bad\uFFFDbytes line") {
		t.Errorf("clean = %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (Config{Secret: []byte("s")}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	c := Config{Secret: []byte("s")}.withDefaults()
	if c.Lease != DefaultTimeout+defaultLeaseMargin || c.PollInterval != DefaultPollInterval || c.MaxAttempts != DefaultMaxAttempts {
		t.Errorf("defaults = %+v", c)
	}
	for name, c := range map[string]Config{
		"no secret":        {},
		"negative timeout": {Secret: []byte("s"), Timeout: -time.Second},
		"negative batch":   {Secret: []byte("s"), BatchSize: -1},
		"cap below base":   {Secret: []byte("s"), BackoffBase: time.Minute, BackoffCap: time.Second},
		"short lease":      {Secret: []byte("s"), Timeout: time.Minute, Lease: time.Second},
		"invalid network":  {Secret: []byte("s"), Deny: []netip.Prefix{{}}},
		"negative body":    {Secret: []byte("s"), MaxResponseBytes: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
