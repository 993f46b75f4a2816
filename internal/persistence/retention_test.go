package persistence_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestRetentionPageUsesIndex: the retention job's page query reads a range of the partial index
// instances_ended_idx, on both databases, among many running instances of the definition
// (which the index leaves out) and final ones of others, at the start of a pass and mid-way.
func TestRetentionPageUsesIndex(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("shop", 1), definition("other", 1)}, nil)
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		at := func(days int) string { return now.AddDate(0, 0, days).Format("2006-01-02T15:04:05.000000000Z07:00") }
		for _, g := range []struct {
			def, prefix string
			final       bool
			n           int
		}{{"shop", "run", false, 20000}, {"shop", "fin", true, 2000}, {"other", "oth", true, 5000}} {
			values := make([]string, 0, 500)
			args := make([]any, 0, 1000)
			flush := func() {
				if len(values) == 0 {
					return
				}
				_, err := db.X.ExecContext(ctx, db.X.Rebind(`INSERT INTO instances (id, definition, version, state, context, revision, final,
					create_hash, created_at, updated_at, entered_at) VALUES `+strings.Join(values, ", ")), args...)
				if err != nil {
					t.Fatal(err)
				}
				values, args = values[:0], args[:0]
			}
			for i := range g.n {
				values = append(values, "(?, '"+g.def+"', 1, 's', '{}', 1, ?, 'h', ?, ?, ?)")
				stamp := at(-i % 400)
				args = append(args, fmt.Sprintf("%s-%06d", g.prefix, i), g.final, stamp)
				args = append(args, stamp, stamp)
				if len(values) == 300 {
					flush()
				}
			}
			flush()
		}
		if _, err := db.X.ExecContext(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []persistence.RetentionPage{
			{Definition: "shop", Before: now.AddDate(0, 0, -90), Limit: 1000},
			{Definition: "shop", Before: now.AddDate(0, 0, -90), AfterAt: now.AddDate(0, 0, -200), AfterID: "fin-000200", Limit: 1000},
		} {
			query, args := persistence.RetentionPageSQL(db, p)
			explain := "EXPLAIN "
			if db.Dialect == persistence.SQLite {
				explain = "EXPLAIN QUERY PLAN "
			}
			rows, err := db.X.QueryContext(ctx, explain+query, args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				for i := range vals {
					vals[i] = new(any)
				}
				if err := rows.Scan(vals...); err != nil {
					t.Fatal(err)
				}
				for _, v := range vals {
					if s, ok := (*v.(*any)).(string); ok {
						plan = append(plan, s)
					}
				}
			}
			rows.Close()
			if text := strings.Join(plan, "\n"); !strings.Contains(text, "instances_ended_idx") {
				t.Errorf("the page after %q does not read instances_ended_idx:\n%s", p.AfterID, text)
			}
		}
		got, err := persistence.InstanceListFinalDue(ctx, db, persistence.RetentionPage{Definition: "shop", Before: now.AddDate(0, 0, -90), Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		// Of the 2,000 final ones, a day each from 0 to 399 days back: those over 90 days.
		if want := 2000 - 5*91; len(got) != want {
			t.Errorf("%d due, want %d", len(got), want)
		}
		for i := 1; i < len(got); i++ {
			if a, b := got[i-1], got[i]; a.At().After(b.At()) || a.At().Equal(b.At()) && a.ID >= b.ID {
				t.Fatalf("not in (updated_at, id) order: %v then %v", a, b)
			}
		}
	})
}
