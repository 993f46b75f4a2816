// Command find measures the lists of issue 16's Find on PostgreSQL (its speed target: a filtered
// list over 1,000,000 instances on an `index:`ed path under 50 ms):
//
//	go run ./bench/find -instances 1000000
//
// It creates a fresh database, registers bench/find/testdata/parcel.yaml (keys: [number]; index:
// [customer.tier, weight, shipped_at]: the indexes are made then), creates the instances with one
// set-based INSERT ... SELECT generate_series, ANALYZEs, and times GET /v1/instances with ctx.
// filters through the HTTP API (server and service in-process, one client), each query -requests
// times after one warm-up, and an event sent by key. It prints each query's median, p95 and max,
// the plan PostgreSQL chose for the second, a last line starting with "RESULT" for scripts, and
// drops the database.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

const maxInstances = 10_000_000

func main() {
	var (
		instances = flag.Int("instances", 1_000_000, "instances to create")
		requests  = flag.Int("requests", 50, "times each query is sent")
		dbURL     = flag.String("database-url", dbtest.DefaultPostgresURL, "the PostgreSQL server (its database part is replaced)")
		dir       = flag.String("definitions", "bench/find/testdata", "the folder of parcel.yaml")
		keep      = flag.Bool("keep", false, "keep the database (its URL is printed), to look at its plans")
	)
	flag.Parse()
	if *instances < 1000 || *instances > maxInstances || *requests < 1 {
		fmt.Fprintf(os.Stderr, "find: -instances %d: want 1000 to %d; -requests at least 1\n", *instances, maxInstances)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *instances, *requests, *dbURL, *dir, *keep, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "find: %v\n", err)
		os.Exit(1)
	}
}

// queries are the lists timed: an equality on an index:ed path that a third of the instances
// match (a page of 100 in id order), one that few match, ranges on an int and a time path, and a
// page deep into the matches.
var queries = []struct{ name, query string }{
	{"tier=gold (1/3 match)", "definition=parcel&ctx.customer.tier=gold&limit=100"},
	{"tier=platinum (1/1000)", "definition=parcel&ctx.customer.tier=platinum&limit=100"},
	{"weight in [500,510)", "definition=parcel&ctx.weight%5Bgte%5D=500&ctx.weight%5Blt%5D=510&limit=100"},
	{"shipped_at in 10 minutes", "definition=parcel&ctx.shipped_at%5Bgte%5D=2026-01-01T10:00:00Z&ctx.shipped_at%5Blt%5D=2026-01-01T10:10:00Z&limit=100"},
	{"tier=gold, after the middle", "definition=parcel&ctx.customer.tier=gold&limit=100&after=parcel-00500000"},
	{"tier=gold, state=shipped", "definition=parcel&ctx.customer.tier=gold&state=shipped&limit=100"},
}

func run(ctx context.Context, n, requests int, serverURL, dir string, keep bool, out io.Writer) error {
	src, err := os.ReadFile(filepath.Join(dir, "parcel.yaml"))
	if err != nil {
		return err
	}
	dbURL, drop, err := dbtest.NewPostgresDatabase(ctx, serverURL, "fsmd_bench_find_")
	if err != nil {
		return err
	}
	defer func() {
		if keep {
			fmt.Fprintf(out, "kept the database: %s\n", persistence.Redact(dbURL))
			return
		}
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := service.New(db, service.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer svc.Close()
	if _, err := svc.PutDefinition(ctx, "parcel", src); err != nil {
		return fmt.Errorf("parcel: %w", err)
	}
	start := time.Now()
	if err := seed(ctx, db, n); err != nil {
		return fmt.Errorf("creating the instances: %w", err)
	}
	fmt.Fprintf(out, "created %d instances of parcel (their indexes kept up) in %s\n", n, time.Since(start).Round(time.Millisecond))

	srv := httptest.NewServer(server.New(svc, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer srv.Close()
	client := srv.Client()
	get := func(query string) (time.Duration, int, error) {
		t0 := time.Now()
		resp, err := client.Get(srv.URL + "/v1/instances?" + query)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		d := time.Since(t0)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return d, len(page.Items), err
	}
	plan, err := explain(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "the plan of %q:\n%s\n", queries[1].name, plan)
	var worst time.Duration
	for _, q := range queries {
		if _, _, err := get(q.query); err != nil { // warm-up
			return fmt.Errorf("%s: %w", q.name, err)
		}
		times := make([]time.Duration, requests)
		items := 0
		for i := range times {
			if times[i], items, err = get(q.query); err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
		}
		slices.Sort(times)
		p50, p95, mx := times[len(times)/2], times[len(times)*95/100], times[len(times)-1]
		worst = max(worst, p50)
		fmt.Fprintf(out, "%-30s %3d items  median %7s  p95 %7s  max %7s\n", q.name, items, ms(p50), ms(p95), ms(mx))
	}
	// An event by key: the lookup through the key's unique index, then the event path.
	byKey := make([]time.Duration, 0, requests)
	for i := range requests {
		body := fmt.Sprintf(`{"key": {"number": "N-%d"}, "event": "ship"}`, (i*7919)%(n/3)*3) // open ones: i % 3 == 0
		t0 := time.Now()
		resp, err := client.Post(srv.URL+"/v1/definitions/parcel/events", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict { // 409: shipped already
			return fmt.Errorf("event by key %s: status %d", body, resp.StatusCode)
		}
		byKey = append(byKey, time.Since(t0))
	}
	slices.Sort(byKey)
	fmt.Fprintf(out, "%-30s            median %7s  p95 %7s\n", "an event by key", ms(byKey[len(byKey)/2]), ms(byKey[len(byKey)*95/100]))
	fmt.Fprintf(out, "RESULT instances=%d worst_median_ms=%.1f event_by_key_median_ms=%.1f cpus=%d\n", n,
		float64(worst.Microseconds())/1000, float64(byKey[len(byKey)/2].Microseconds())/1000, runtime.NumCPU())
	return nil
}

// seed creates n instances in one set-based statement: a third of them gold, a third silver, a
// third bronze (and one in a thousand platinum), weights 0 to 999, shipped_at one a second from
// 2026-01-01T00:00:00Z, states open, shipped and closed (final) in turn, and a unique number each.
func seed(ctx context.Context, db *persistence.DB, n int) error {
	_, err := db.X.ExecContext(ctx, `
		INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash,
			created_at, updated_at, entered_at, parent_group, parent_rev, parent_index, on_final, depth, children)
		SELECT 'parcel-' || lpad(i::text, 8, '0'), 'parcel', 1, (ARRAY['open', 'shipped', 'closed'])[i % 3 + 1],
			jsonb_build_object(
				'number', 'N-' || i,
				'customer', jsonb_build_object('tier', CASE WHEN i % 1000 = 0 THEN 'platinum'
					ELSE (ARRAY['gold', 'silver', 'bronze'])[(i / 7) % 3 + 1] END),
				'weight', (i * 7919) % 1000,
				'shipped_at', to_char((timestamptz '2026-01-01T00:00:00Z' + i * interval '1 second') AT TIME ZONE 'UTC',
					'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
			0, i % 3 = 2, 'bench', now(), now(), now(), '', 0, 0, '', 0, '{}'
		FROM generate_series(0::bigint, $1::bigint - 1) AS i`, n)
	if err != nil {
		return err
	}
	_, err = db.X.ExecContext(ctx, "ANALYZE instances")
	return err
}

// explain is PostgreSQL's plan of the second query (few match: it reads the index of the path), as
// InstanceList sends it. When a third match, PostgreSQL may as well walk the primary key in id
// order and filter: it meets a page's matches at once.
func explain(ctx context.Context, db *persistence.DB) (string, error) {
	var lines []string
	err := db.X.SelectContext(ctx, &lines, `EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM instances
		WHERE definition = 'parcel' AND (context #>> '{customer,tier}') = 'platinum' ORDER BY id LIMIT 101`)
	return "  " + strings.Join(lines, "\n  "), err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
