package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// nudgeDef's timer fires nudge after 1h: accepted when ctx.go (it then notifies a webhook and sends
// a message to ctx.target, and arms the next state's timer), refused otherwise (dropped). sinkDef
// takes the messages.
const (
	nudgeDef = `name: nudge
initial: waiting
context:
  go: bool
  target: string
notify:
  - name: hook
    url: https://hook.example.com/nudge
    states: [nudged]
states:
  waiting:
    on:
      nudge:
        - to: nudged
          guard: ctx.go
          send:
            - to: ctx.target
              event: nudged
    timers:
      - {after: 1h, event: nudge}
  nudged:
    on: {done: finished}
    timers:
      - {after: 1h, event: done}
  finished: {final: true}
`
	sinkDef = `name: sink
initial: idle
states:
  idle: {on: {nudged: idle}}
`
)

// TestTimerBatch: one round fires a batch of 300 due timers set-based, with everything the event
// path writes: the accepted ones move with their audit rows, the next state's timers, their outbox
// rows and their messages; the refused ones (a guard) are dropped with an audit row that says why
// and their timer is deleted; a timer put off after a failure waits; a suspended instance's timer
// is held. Nothing fires twice, and the next timers fire in the next round.
func TestTimerBatch(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
		svc := service.New(db, service.Options{Now: c.now})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, nudgeDef, sinkDef)); err != nil {
			t.Fatal(err)
		}
		create(t, svc, "sink", "sink")
		const n = 300
		id := func(i int) string { return fmt.Sprintf("n%03d", i) }
		for i := range n {
			if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "nudge", ID: id(i),
				Context: map[string]any{"go": i%3 != 0, "target": "sink"}}); err != nil {
				t.Fatal(err)
			}
		}
		create(t, svc, "nudge", "putoff") // its timer failed once: put off for a day
		err := persistence.TimerRetry(ctx, db, persistence.Timer{InstanceID: "putoff", Revision: 0, Idx: 0}, c.now().Add(24*time.Hour), "earlier failure")
		if err != nil {
			t.Fatal(err)
		}
		// Suspended with its timer not held (as when a migration armed it): the round holds it.
		create(t, svc, "nudge", "held")
		if _, err := db.X.ExecContext(ctx, `UPDATE instances SET suspended = true WHERE id = 'held'`); err != nil {
			t.Fatal(err)
		}

		c.advance(time.Hour)
		if got, err := svc.FireDue(ctx, service.TimerOptions{}); err != nil || got != n+1 {
			t.Fatalf("FireDue: %d instances, %v; want %d (held's too)", got, err, n+1)
		}
		if got, err := svc.FireDue(ctx, service.TimerOptions{}); err != nil || got != 0 {
			t.Fatalf("FireDue again: %d instances, %v; want none", got, err)
		}
		count := func(query string, args ...any) int {
			t.Helper()
			var k int
			if err := db.X.GetContext(ctx, &k, db.X.Rebind(query), args...); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			return k
		}
		for i := range n {
			inst, err := svc.GetInstance(ctx, id(i))
			if err != nil {
				t.Fatal(err)
			}
			h, err := svc.History(ctx, id(i), 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Items) != 1 || h.Items[0].Source != "timer" || h.Items[0].Event != "nudge" || inst.Revision != 1 {
				t.Fatalf("%s: revision %d, history %+v; want one row from the timer", id(i), inst.Revision, h.Items)
			}
			outbox := count(`SELECT count(*) FROM outbox WHERE instance_id = ?`, id(i))
			messages := count(`SELECT count(*) FROM messages WHERE sender = ? AND target = 'sink' AND sender_seq = 1`, id(i))
			if i%3 == 0 { // refused: dropped, its timer gone, nothing sent
				if inst.State != "waiting" || len(inst.Timers) != 0 || !strings.HasPrefix(h.Items[0].Dropped, "guard_rejected: ") ||
					outbox != 0 || messages != 0 {
					t.Errorf("%s: %s %+v, row %+v, %d outbox rows, %d messages; want waiting without timers, dropped (guard_rejected), nothing sent",
						id(i), inst.State, inst.Timers, h.Items[0], outbox, messages)
				}
				continue
			}
			if inst.State != "nudged" || len(inst.Timers) != 1 || inst.Timers[0].Event != "done" || !inst.Timers[0].DueAt.Equal(c.now().Add(time.Hour)) ||
				h.Items[0].Dropped != "" || h.Items[0].To != "nudged" || outbox != 1 || messages != 1 {
				t.Errorf("%s: %s %+v, row %+v, %d outbox rows, %d messages; want nudged with done in 1h, one outbox row and one message",
					id(i), inst.State, inst.Timers, h.Items[0], outbox, messages)
			}
		}
		for _, who := range []string{"putoff", "held"} {
			if inst, err := svc.GetInstance(ctx, who); err != nil || inst.State != "waiting" || len(inst.Timers) != 1 {
				t.Errorf("%s: %+v, %v; want waiting with its timer", who, inst, err)
			}
		}
		if timers, err := persistence.TimersOf(ctx, db, "held"); err != nil || len(timers) != 1 || !timers[0].NextTryAt.Equal(persistence.Held) {
			t.Errorf("held's timers: %+v, %v; want one, held", timers, err)
		}

		c.advance(time.Hour)
		want := n - n/3
		if got, err := svc.FireDue(ctx, service.TimerOptions{}); err != nil || got != want {
			t.Fatalf("FireDue an hour later: %d instances, %v; want %d", got, err, want)
		}
		if got := count(`SELECT count(*) FROM instances WHERE definition = 'nudge' AND state = 'finished' AND revision = 2`); got != want {
			t.Errorf("finished: %d, want %d", got, want)
		}
		if got := count(`SELECT count(*) FROM transitions WHERE source = 'timer'`); got != n+want {
			t.Errorf("timer rows: %d, want %d", got, n+want)
		}
	})
}

// TestTimerSchedulersRace: two schedulers, each with its own pool as two fsmd processes, on one
// database, race for the same 5,000 due timers: each fires exactly once (one audit row per
// instance, from the timer), and none is left.
func TestTimerSchedulersRace(t *testing.T) {
	t.Parallel()
	for _, d := range []struct {
		name string
		url  func(testing.TB) string
	}{{"postgres", dbtest.PostgresDatabaseURL}, {"sqlite", dbtest.SQLiteURL}} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			testSchedulersRace(t, d.url(t), 5000)
		})
	}
}

func testSchedulersRace(t *testing.T, url string, n int) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	var svcs []*service.Service
	var db *persistence.DB
	for range 2 {
		var err error
		if db, err = persistence.Open(ctx, url); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		svc := service.New(db, service.Options{Now: c.now})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, alarmDef)); err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, svc)
	}
	seedAlarms(t, db, n, c.now())
	c.advance(2 * time.Hour)

	var wg sync.WaitGroup
	claimed := make([]int, len(svcs))
	for i, svc := range svcs {
		wg.Go(func() {
			for idle := 0; idle < 3; {
				got, err := svc.FireDue(ctx, service.TimerOptions{Batch: 500})
				if err != nil {
					t.Errorf("scheduler %d: %v", i, err)
					return
				}
				claimed[i] += got
				if got == 0 {
					idle++
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("the schedulers claimed %v instances", claimed)
	for query, want := range map[string]int{
		`SELECT count(*) FROM transitions WHERE source = 'timer'`:                                               n,
		`SELECT count(DISTINCT instance_id) FROM transitions WHERE source = 'timer'`:                            n,
		`SELECT count(*) FROM transitions WHERE source = 'timer' AND (seq <> 1 OR event <> 'remind')`:           0,
		`SELECT count(*) FROM instances WHERE state = 'reminded' AND revision = 1`:                              n,
		`SELECT count(*) FROM timers WHERE event = 'remind'`:                                                    0,
		`SELECT count(*) FROM timers WHERE event = 'escalate_now' AND revision = 1`:                             n,
		`SELECT count(*) FROM instances i WHERE NOT EXISTS (SELECT 1 FROM timers t WHERE t.instance_id = i.id)`: 0,
	} {
		var got int
		if err := db.X.GetContext(ctx, &got, query); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
}

// seedAlarms creates n alarm instances in open, created at now (their remind timers due 1h later),
// in one transaction.
func seedAlarms(t *testing.T, db *persistence.DB, n int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		for i := range n {
			id := fmt.Sprintf("al%05d", i)
			if err := persistence.InstanceInsert(ctx, tx, persistence.InstanceRow{ID: id, Definition: "alarm", Version: 1, State: "open",
				Context: []byte(`{"escalate": false, "n": 0}`), CreateHash: "seed", CreatedAt: now, UpdatedAt: now, EnteredAt: now}); err != nil {
				return err
			}
			if err := persistence.TimersReplace(ctx, tx, id, false, 0, []persistence.Arm{{Event: "remind", DueAt: now.Add(time.Hour)}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
}
