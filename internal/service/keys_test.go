package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// ticketDef takes the number "T-1" by a timer an hour after it opens.
const ticketDef = `name: ticket
initial: open
context:
  number: string
keys: [number]
states:
  open:
    on:
      claim: {set: {number: '"T-1"'}}
      close: closed
    timers:
      - {after: 1h, event: claim}
  closed: {final: true}
`

// TestKeyTakenByTimer: a timer's event whose set would take a key another running instance has
// writes nothing and is tried again with backoff, its error the key's; once the key is free it
// fires.
func TestKeyTakenByTimer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
		svc := service.New(db, service.Options{Now: c.now})
		t.Cleanup(svc.Close)
		err := svc.Register(ctx, set(t, ticketDef))
		if err != nil {
			t.Fatal(err)
		}
		create(t, svc, "ticket", "a")
		if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: "a", Event: "claim", RequestID: "r1"}); err != nil {
			t.Fatal(err)
		}
		create(t, svc, "ticket", "b")
		_, _, err = svc.SendEvent(ctx, service.SendEvent{InstanceID: "b", Event: "claim", RequestID: "r2"})
		var ke *service.KeyExistsError
		if !errors.As(err, &ke) || code.Of(err) != code.KeyExists || ke.Key != "number" || ke.Value != "T-1" {
			t.Fatalf("b claims T-1: %v, want key_exists of number T-1", err)
		}
		c.advance(time.Hour + time.Second)
		if _, err := svc.FireDue(ctx, service.TimerOptions{Backoff: time.Minute, MaxWait: time.Hour}); err != nil {
			t.Fatal(err)
		}
		b, err := svc.GetInstance(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		if b.Revision != 0 || len(b.Timers) != 1 || b.Timers[0].Attempts != 1 || !strings.Contains(b.Timers[0].LastError, "T-1") {
			t.Fatalf("b after its timer: revision %d, timers %+v", b.Revision, b.Timers)
		}
		send(t, svc, "a", "close") // frees T-1
		c.advance(time.Hour)
		if _, err := svc.FireDue(ctx, service.TimerOptions{Backoff: time.Minute, MaxWait: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if b, err = svc.GetInstance(ctx, "b"); err != nil || b.Context["number"] != "T-1" || len(b.Timers) != 0 {
			t.Errorf("b once T-1 is free: %+v, %v", b, err)
		}
	})
}
