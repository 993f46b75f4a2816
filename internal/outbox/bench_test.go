package outbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// BenchmarkDispatch measures deliveries per second to a fast local receiver (it answers 204 at
// once), on each database, with the default batch size (100) and the default concurrency (16 in
// flight) or 64: b.N rows spread over instances of perInstance transitions each (one webhook),
// inserted before the clock starts; the clock stops when the last delivery is recorded.
//
//	go test -run '^$' -bench Dispatch -benchtime 20000x ./internal/outbox
func BenchmarkDispatch(b *testing.B) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		for _, perInstance := range []int{1, 10} {
			for _, concurrency := range []int{outbox.DefaultConcurrency, 64} {
				b.Run(fmt.Sprintf("%s/per_instance=%d/concurrency=%d", dialect, perInstance, concurrency), func(b *testing.B) {
					var db *persistence.DB
					if dialect == "postgres" {
						db = dbtest.Postgres(b)
					} else {
						db = dbtest.SQLite(b)
					}
					benchDispatch(b, db, perInstance, concurrency)
				})
			}
		}
	}
}

func benchDispatch(b *testing.B, db *persistence.DB, perInstance, concurrency int) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	def := parse(b, fmt.Sprintf(`name: bench
initial: on
states:
  on: {on: {tick: on}}
notify:
  - {name: hook, url: %q}
`, srv.URL))
	insertBench(b, db, def, b.N, perInstance)
	d, err := outbox.New(db, outbox.Config{Secret: secret, PollInterval: 10 * time.Millisecond, Concurrency: concurrency,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- d.Run(ctx) }()
	for d.Stats().Delivered < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/took.Seconds(), "deliveries/s")
	if n := got.Load(); n < int64(b.N) {
		b.Errorf("the receiver got %d of %d", n, b.N)
	}
}

// insertBench inserts n rows: n/perInstance instances with perInstance transitions each.
func insertBench(b *testing.B, db *persistence.DB, def *machine.Definition, n, perInstance int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	tr := &machine.Transition{Event: "tick", From: "on", To: "on", At: now, Payload: map[string]any{},
		ContextBefore: map[string]any{}, ContextAfter: map[string]any{}}
	var batch []persistence.OutboxRow
	flush := func() {
		if err := db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.OutboxInsert(ctx, tx, batch) }); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		rows, err := outbox.Rows(outbox.RowsParams{Definition: def, Version: 1, InstanceID: fmt.Sprintf("i-%08d", i/perInstance),
			Seq: int64(i%perInstance + 1), Source: "api", Transition: tr, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, rows...)
		if len(batch) == 1000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}
