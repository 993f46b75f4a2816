package service_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/service"
)

// fanDefs are a parent that starts n children of `task` on `go` and joins on their on_final, and
// the task.
func fanDefs(n int) []string {
	return []string{`name: task
initial: open
context:
  n: int
states:
  open:
    timers: [{after: 1h, event: expire}]
    on:
      done: closed
      expire: closed
  closed: {final: true}
`, fmt.Sprintf(`name: fan
initial: idle
states:
  idle:
    on:
      go: waiting
  waiting:
    children:
      tasks:
        definition: task
        count: %d
        context: {n: index}
        on_final: task_done
    on:
      task_done:
        - to: joined
          guard: children.tasks.running == 0
        - {}
  joined: {final: true}
`, n)}
}

// BenchmarkChildren10k measures, on PostgreSQL, the two costs of a fan-out of 10,000: the one
// transition that starts them (the bound: under 2 s), and delivering and joining their
// 10,000 on_final messages with one process (under 10 s: at least 2,000 messages/s). Finishing the
// children through the event path is not measured.
func BenchmarkChildren10k(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	for i := range b.N {
		db := dbtest.Postgres(b)
		svc := service.New(db, service.Options{})
		if err := svc.Register(ctx, set(b, fanDefs(n)...)); err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprint("fan-", i)
		if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "fan", ID: id}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: id, Event: "go"}); err != nil {
			b.Fatal(err)
		}
		started := time.Since(start)

		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for c := range work {
					if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: fmt.Sprintf("%s.tasks.1.%d", id, c), Event: "done"}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for c := range n {
			work <- c
		}
		close(work)
		wg.Wait()

		start = time.Now()
		for {
			k, err := svc.DeliverDue(ctx, service.MessageOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
		joined := time.Since(start)
		inst, err := svc.GetInstance(ctx, id)
		if err != nil || inst.State != "joined" {
			b.Fatalf("after delivering: %s %+v %v", inst.State, inst.Children, err)
		}
		b.ReportMetric(started.Seconds(), "start-s")
		b.ReportMetric(joined.Seconds(), "join-s")
		b.ReportMetric(n/joined.Seconds(), "on_final/s")
		svc.Close()
	}
}
