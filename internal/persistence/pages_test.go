package persistence_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestEventWritesFewPages counts the pages an event's commit writes to SQLite's WAL (its frames):
// a stay (an event that keeps its instance's state) without an Idempotency-Key writes its
// instance's row and its audit row, and no index of what it does not change. SQLite rewrites the
// index entries of every column an update sets, even to the same value, and the key's unique index
// held a row per event: 7 pages per event before instanceStayQuery and migration 016, 3 after.
func TestEventWritesFewPages(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	ctx := context.Background()
	const n = 200
	var insts []persistence.InstanceRow
	for i := range n {
		insts = append(insts, instance(fmt.Sprintf("p-%03d", i), "order", 1, "created"))
	}
	seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, insts)
	advance := func(i int, rev int64) {
		u, r := groupAdvance(fmt.Sprintf("p-%03d", i), rev, "")
		u.Timers, u.Stays = nil, rev > 1 // the first moves created -> on; the rest stay there
		if err := persistence.AdvanceGroup(ctx, db, []persistence.Advance{{Update: u, Row: r}})[0]; err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		advance(i, 1)
	}
	frames := func(mode string) int {
		var busy, log, done int
		if err := db.X.QueryRowxContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done); err != nil {
			t.Fatal(err)
		}
		return log
	}
	frames("TRUNCATE") // an empty WAL
	const events = 40  // fewer frames than the auto-checkpoint's 1,000
	for e := range events {
		advance(e*7%n, 2) // instances spread over the table's pages
	}
	per := float64(frames("PASSIVE")) / events
	t.Logf("%.1f pages per event", per)
	if per > 4 {
		t.Errorf("an event's commit wrote %.1f pages to the WAL, want 3 (4 at most)", per)
	}
}
