package persistence_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// BenchmarkAdvanceGroup writes groups of n transitions of different instances, one group after the
// other (as the group commit's writer does), per event: n=1 is an event written alone.
func BenchmarkAdvanceGroup(b *testing.B) {
	for _, name := range []string{"postgres", "sqlite"} {
		for _, n := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/group=%d", name, n), func(b *testing.B) {
				var db *persistence.DB
				if name == "postgres" {
					db = dbtest.Postgres(b)
				} else {
					db = dbtest.SQLite(b)
				}
				ctx := context.Background()
				var insts []persistence.InstanceRow
				for i := range n {
					insts = append(insts, instance(fmt.Sprint("i-", i), "order", 1, "created"))
				}
				seed(b, db, []persistence.DefinitionRow{definition("order", 1)}, insts)
				items := make([]persistence.Advance, n)
				b.ResetTimer()
				for rev := int64(1); rev <= int64(b.N); rev++ {
					for i := range items {
						u, r := groupAdvance(fmt.Sprint("i-", i), rev, "")
						u.Timers = nil
						items[i] = persistence.Advance{Update: u, Row: r}
					}
					for _, err := range persistence.AdvanceGroup(ctx, db, items) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/event")
			})
		}
	}
}
