package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// serveBenchDefinitions is how many definitions BenchmarkServeReady starts with (issue 3: ready in
// under 1 s with 100 definitions).
const serveBenchDefinitions = 100

// BenchmarkServeReady is the time from calling serve to /readyz answering 200, with 100 definitions
// of 20 states in the folder:
//
//   - first: a database fsmd has never seen, so every definition is registered (on SQLite a new
//     file, migrations included; on PostgreSQL a new database that dbtest has migrated already);
//   - restart: the same database again, every definition registered already (a deploy or a
//     restart: each definition is only looked up by its hash).
//
// go test -run '^$' -bench ServeReady ./cmd/fsmd
func BenchmarkServeReady(b *testing.B) {
	defs := b.TempDir()
	for i := range serveBenchDefinitions {
		name := fmt.Sprintf("process_%03d", i)
		if err := os.WriteFile(filepath.Join(defs, name+".yaml"), []byte(serveBenchDefinition(name, i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	set, diags, err := machine.Load(defs)
	if err != nil || len(diags) > 0 || len(set.ByName) != serveBenchDefinitions {
		b.Fatalf("the generated definitions: %v, %d diagnostics %v", err, len(diags), diags)
	}
	databases := []struct {
		name  string
		fresh func(b *testing.B) string // a database URL serve has not seen
	}{
		{"sqlite", func(b *testing.B) string { return dbtest.SQLiteURL(b) }},
		{"postgres", func(b *testing.B) string { return dbtest.PostgresDatabaseURL(b) }},
	}
	for _, d := range databases {
		b.Run(d.name+"/first", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				u := d.fresh(b)
				b.StartTimer()
				serveUntilReady(b, u, defs)
			}
		})
		b.Run(d.name+"/restart", func(b *testing.B) {
			u := d.fresh(b)
			serveUntilReady(b, u, defs)
			for b.Loop() {
				serveUntilReady(b, u, defs)
			}
		})
	}
}

// serveUntilReady runs serve on database u with the definitions in defs until /readyz answers 200,
// then stops it (out of the timer) and waits for it to return.
func serveUntilReady(b *testing.B, u, defs string) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	log := slog.New(&serveLogHandler{addr: addr})
	errc := make(chan error, 1)
	go func() {
		errc <- serve(ctx, serveConfig{Addr: "127.0.0.1:0", DatabaseURL: u, Definitions: defs, Shutdown: 5 * time.Second}, log, io.Discard)
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-errc:
		b.Fatalf("serve returned before serving: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("serve did not listen within a minute")
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("/readyz: not 200 within a minute (%v)", err)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatalf("serve: %v", err)
	}
	b.StartTimer()
}

// serveLogHandler discards the log but for the address of the "fsmd serving" line, which it sends
// on addr.
type serveLogHandler struct{ addr chan<- string }

func (h *serveLogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *serveLogHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *serveLogHandler) WithGroup(string) slog.Handler            { return h }

func (h *serveLogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "fsmd serving" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "addr" {
			h.addr <- a.Value.String()
			return false
		}
		return true
	})
	return nil
}

// serveBenchDefinition writes a definition of 20 states in the style of definitions/order.yaml: a
// typed context with a nested object and a list, events with payloads, and in each of the 18 steps
// a guarded branch with a set, a fallback branch, a self-transition that appends to a list, a
// cancellation with a reason, and every third step a timer. The thresholds differ from definition
// to definition, so every file is content of its own.
func serveBenchDefinition(name string, n int) string {
	const steps = 18
	var s strings.Builder
	fmt.Fprintf(&s, "name: %s\ndescription: Generated for BenchmarkServeReady; a case going through %d reviewed steps.\ninitial: step_00\n", name, steps)
	s.WriteString(`
context:
  amount: float
  currency: {type: string, default: EUR}
  customer:
    id: string
    tier: string
  owner: string
  level: int
  rounds: int
  notes: [string]
  approved_by: string
  approved_at: time
  cancel_reason: string

events:
  approve:
    by: string
    amount: float
  comment:
    by: string
    text: string
  cancel:
    reason: string

states:
`)
	for i := range steps {
		next := fmt.Sprintf("step_%02d", i+1)
		if i == steps-1 {
			next = "done"
		}
		fmt.Fprintf(&s, "  step_%02d:\n    description: Step %d of %d; waits for an approval.\n    on:\n      approve:\n", i, i+1, steps)
		fmt.Fprintf(&s, "        - to: %s\n", next)
		fmt.Fprintf(&s, "          guard: event.by != ctx.owner && event.amount >= ctx.amount * %d.%d\n", 1+i%3, n%10)
		fmt.Fprintf(&s, "          guard_message: someone other than the owner must approve at least %d.%d times the amount\n", 1+i%3, n%10)
		s.WriteString("          set:\n            approved_by: event.by\n            approved_at: now\n            level: ctx.level + 1\n")
		fmt.Fprintf(&s, "        - to: step_%02d\n          guard: ctx.customer.tier == \"gold\" || ctx.rounds < %d\n", i, 3+n%4)
		fmt.Fprintf(&s, "          set:\n            rounds: ctx.rounds + 1\n            notes: concat(ctx.notes, [\"short at step %d\"])\n", i)
		s.WriteString("      comment:\n        to: " + fmt.Sprintf("step_%02d", i) + "\n        guard: event.text != \"\"\n")
		s.WriteString("        set:\n          notes: 'concat(ctx.notes, [event.by + \": \" + event.text])'\n")
		s.WriteString("      cancel:\n        to: cancelled\n        set:\n          cancel_reason: event.reason\n")
		if i%3 == 2 {
			fmt.Fprintf(&s, "      expire:\n        to: cancelled\n        set:\n          cancel_reason: '\"step %d expired\"'\n", i)
			fmt.Fprintf(&s, "    timers:\n      - after: %dh\n        event: expire\n", 24*(1+i%5))
		}
	}
	s.WriteString("  done:\n    description: Approved at every step.\n    final: true\n")
	s.WriteString("  cancelled:\n    description: Cancelled or expired.\n    final: true\n")
	return s.String()
}
