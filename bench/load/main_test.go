package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	want := latencies{p50: 50 * time.Millisecond, p90: 90 * time.Millisecond, p99: 99 * time.Millisecond, max: 100 * time.Millisecond}
	if l != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", l, want)
	}
	if l := summarize([]time.Duration{7}); l.p50 != 7 || l.p99 != 7 || l.max != 7 {
		t.Errorf("summarize of one value = %+v", l)
	}
	if l := summarize(nil); l != (latencies{}) {
		t.Errorf("summarize(nil) = %+v", l)
	}
}

func TestParsePgbench(t *testing.T) {
	t.Parallel()
	out := `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: <builtin: simple update>
scaling factor: 10
query mode: simple
number of clients: 8
number of threads: 8
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 27442
number of failed transactions: 0 (0.000%)
latency average = 2.914 ms
initial connection time = 27.448 ms
tps = 2745.075679 (without initial connection time)
`
	r, err := parsePgbench(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.tps != 2745.075679 || r.count != 27442 || r.failed != 0 {
		t.Errorf("parsePgbench = %+v", r)
	}
	if _, err := parsePgbench("pgbench: error: connection refused\n"); err == nil {
		t.Error("parsePgbench of an error: no error")
	}
}

func TestReadPgbenchLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pgbench_log.1")
	log := "0 0 1520 0 1763709534 123456\n0 1 980 0 1763709534 124500\n3 0 20011 0 1763709534 130000\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := readPgbenchLog(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{1520 * time.Microsecond, 980 * time.Microsecond, 20011 * time.Microsecond}
	if len(d) != len(want) {
		t.Fatalf("read %v, want %v", d, want)
	}
	for i := range d {
		if d[i] != want[i] {
			t.Errorf("line %d: %v, want %v", i, d[i], want[i])
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := config{Clients: 8, Duration: 20 * time.Second, Warmup: 2 * time.Second, Instances: 1000,
		DatabaseURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", PgbenchScale: 10,
		Rounds: 3, TokenAlg: "EdDSA", Database: "postgres"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	tests := []struct {
		name   string
		change func(c *config)
		want   string
	}{
		{"no clients", func(c *config) { c.Clients = 0 }, "-clients"},
		{"too many clients", func(c *config) { c.Clients = maxClients + 1 }, "-clients"},
		{"too long", func(c *config) { c.Duration = time.Hour }, "-duration"},
		{"warm-up longer than the run", func(c *config) { c.Warmup = time.Minute }, "-warmup"},
		{"too many instances", func(c *config) { c.Instances = maxInstances + 1 }, "-instances"},
		{"another machine", func(c *config) { c.DatabaseURL = "postgres://u@db.example.com/x" }, "on this machine"},
		{"not postgres", func(c *config) { c.DatabaseURL = "mysql://127.0.0.1/x" }, "postgres://"},
		{"no rounds", func(c *config) { c.Rounds = 0 }, "-rounds"},
		{"too many rounds", func(c *config) { c.Rounds = maxRounds + 1 }, "-rounds"},
		{"an unknown token algorithm", func(c *config) { c.TokenAlg = "HS256" }, "-token-alg"},
		{"auth-compare with a key", func(c *config) { c.AuthCompare, c.APIKey = true, true }, "-auth-compare"},
		{"auth-compare with definitions", func(c *config) { c.AuthCompare, c.Definitions = true, "x" }, "-auth-compare"},
		{"auth-compare with a profile", func(c *config) { c.AuthCompare, c.CPUProfile = true, "x" }, "-auth-compare"},
		{"another database", func(c *config) { c.Database = "mysql" }, "-database"},
		{"an unknown log level", func(c *config) { c.LogLevel = "verbose" }, "-log-level"},
		{"log-compare with a log level", func(c *config) { c.LogCompare, c.LogLevel = true, "warn" }, "-log-compare"},
		{"log-compare with auth-compare", func(c *config) { c.LogCompare, c.AuthCompare = true, true }, "-log-compare"},
		{"fewer instances than clients", func(c *config) { c.Instances = 4 }, "the ceiling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error about %s", err, tt.want)
			}
		})
	}
	for name, change := range map[string]func(c *config){
		"sqlite, whatever the URL":                func(c *config) { c.Database, c.DatabaseURL = "sqlite", "" },
		"fewer instances than clients, on SQLite": func(c *config) { c.Database, c.Instances = "sqlite", 4 },
		"fewer instances than clients, comparing": func(c *config) { c.LogCompare, c.Instances = true, 4 },
		"a log level": func(c *config) { c.LogLevel = "warn" },
	} {
		c := ok
		change(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]"} {
		c := ok
		c.DatabaseURL = "postgres://postgres@" + host + ":5432/postgres"
		if err := c.Validate(); err != nil {
			t.Errorf("host %s: %v", host, err)
		}
	}
}

// TestNewToken checks that the token -auth-compare sends is one fsmd accepts, as fsmd serve's
// --jwt-* flags configure it, and names the caller the allow definition lets deposit.
func TestNewToken(t *testing.T) {
	t.Parallel()
	for alg := range tokenAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			jwks, token, err := newToken(alg, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "jwks.json")
			if err := os.WriteFile(file, jwks, 0o600); err != nil {
				t.Fatal(err)
			}
			tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: file, Issuer: tokenIssuer, Audience: tokenAudience})
			if err != nil {
				t.Fatal(err)
			}
			p, err := tokens.Verify(token)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != benchName || p.Role != auth.Write || !slices.Equal(p.Groups, []string{benchGroup}) {
				t.Errorf("Verify = %+v, want %s, write, [%s]", p, benchName, benchGroup)
			}
			other, err := auth.NewTokens(auth.TokenConfig{JWKSFile: file, Issuer: tokenIssuer, Audience: "another"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Verify(token); err == nil {
				t.Error("a server with another audience accepted the token")
			}
		})
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}
