package persistence_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// BenchmarkEventPath is the database work of one event: lock the instance, update it, append its
// transition, commit; 8 concurrent clients (b.SetParallelism over GOMAXPROCS), each on instances
// of its own. Compare with pgbench -N -c 8 on the same server.
func BenchmarkEventPath(b *testing.B) {
	for _, name := range []string{"postgres", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			var db *persistence.DB
			if name == "postgres" {
				db = dbtest.Postgres(b)
			} else {
				db = dbtest.SQLite(b)
			}
			ctx := context.Background()
			const instances = 64
			var insts []persistence.InstanceRow
			for i := range instances {
				insts = append(insts, instance(fmt.Sprint("i-", i), "order", 1, "created"))
			}
			seed(b, db, []persistence.DefinitionRow{definition("order", 1)}, insts)
			var next atomic.Int64
			clients := 8
			b.SetParallelism(max(1, clients/runtimeProcs()))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprint("i-", next.Add(1)%instances)
				for pb.Next() {
					err := db.WithTx(ctx, func(tx *persistence.Tx) error {
						cur, err := persistence.InstanceGetForUpdate(ctx, tx, id)
						if err != nil {
							return err
						}
						seq := cur.Revision + 1
						if err := persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
							ID: id, ExpectRevision: cur.Revision, Version: 1, State: "created",
							Context: fmt.Appendf(nil, `{"n":%d}`, seq), Revision: seq,
							UpdatedAt: now(), EnteredAt: cur.EnteredAt,
						}); err != nil {
							return err
						}
						return persistence.TransitionInsert(ctx, tx, persistence.TransitionRow{
							InstanceID: id, Seq: seq, Event: "inc", From: "created", To: "created",
							Payload: []byte(`{"by":1}`), ContextBefore: cur.Context,
							ContextAfter: fmt.Appendf(nil, `{"n":%d}`, seq),
							Source:       "api", RequestID: "r", DefinitionVersion: 1, At: now(),
						})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
