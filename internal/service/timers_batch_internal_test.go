package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

const remindDef = `name: remind
initial: open
states:
  open:
    on: {remind: reminded, answer: answered}
    timers: [{after: 1h, event: remind}]
  reminded: {on: {answer: answered}}
  answered: {final: true}
`

// batchService is a service over db with remindDef registered and the instances a, b and c created
// at t0, and the time an hour later, when their timers are due.
func batchService(t *testing.T, db *persistence.DB) (*Service, time.Time) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	now := t0
	s := New(db, Options{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(s.Close)
	def, diags := machine.Parse("remind.yaml", []byte(remindDef))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	if err := s.Register(ctx, &machine.Set{ByName: map[string]*machine.Definition{"remind": def}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := s.CreateInstance(ctx, CreateInstance{Definition: "remind", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(time.Hour) // the service's clock too
	return s, now
}

// states is each instance's state, revision and timer events, and its history's events.
func states(t *testing.T, s *Service, ids ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		inst, err := s.GetInstance(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.History(context.Background(), id, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var timers, history []string
		for _, tm := range inst.Timers {
			timers = append(timers, tm.Event)
		}
		for _, r := range h.Items {
			history = append(history, r.Source+":"+r.Event)
		}
		out[id] = fmt.Sprintf("%s@%d timers %v history %v", inst.State, inst.Revision, timers, history)
	}
	return out
}

// TestTimerBatchMoved: an instance that moved between the batch's read and its write (an event came
// first) is not written by the batch, whose others are; the single path then finds its timer gone
// with the state it left, and fires nothing.
func TestTimerBatchMoved(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		s, now := batchService(t, db)
		due, err := persistence.TimersClaimDue(ctx, db, now, 10)
		if err != nil || len(due) != 3 {
			t.Fatalf("claimed %d, %v; want a, b and c", len(due), err)
		}
		b := s.decideBatch(ctx, due, now)
		if len(b.firings) != 3 || len(b.slow) != 0 {
			t.Fatalf("decided %d firings, %d for the single path; want 3 and none", len(b.firings), len(b.slow))
		}
		if _, _, err := s.SendEvent(ctx, SendEvent{InstanceID: "b", Event: "answer", RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
		if err := db.WithTx(ctx, func(tx *persistence.Tx) error { return s.writeBatch(ctx, tx, &b) }); err != nil {
			t.Fatal(err)
		}
		if len(b.slow) != 1 || b.slow[0].row.ID != "b" || !b.slow[0].stale {
			t.Fatalf("left to the single path: %+v; want b, stale", b.slow)
		}
		if err := s.fireFirst(ctx, b.slow[0].row, TimerOptions{}.withDefaults(), true); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"a": "reminded@1 timers [] history [timer:remind]",
			"b": "answered@1 timers [] history [api:answer]",
			"c": "reminded@1 timers [] history [timer:remind]",
		}
		for id, got := range states(t, s, "a", "b", "c") {
			if got != want[id] {
				t.Errorf("%s: %s, want %s", id, got, want[id])
			}
		}
	})
}

// TestTimerBatchFailed: a batch whose write fails (a timer fired is not there any more) writes
// nothing of any of its instances: all of them go to the single path, which fires each once.
func TestTimerBatchFailed(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		s, now := batchService(t, db)
		due, err := persistence.TimersClaimDue(ctx, db, now, 10)
		if err != nil || len(due) != 3 {
			t.Fatalf("claimed %d, %v; want a, b and c", len(due), err)
		}
		b := s.decideBatch(ctx, due, now)
		// c's timer goes without its instance moving (no writer does this: the batch's check).
		if _, err := db.X.ExecContext(ctx, `DELETE FROM timers WHERE instance_id = 'c'`); err != nil {
			t.Fatal(err)
		}
		err = db.WithTx(ctx, func(tx *persistence.Tx) error { return s.writeBatch(ctx, tx, &b) })
		if err := s.batchFailed(&b, err); err != nil {
			t.Fatalf("the batch's failure: %v, want a conflict", err)
		}
		if len(b.slow) != 3 {
			t.Fatalf("left to the single path: %+v; want all three", b.slow)
		}
		for id, got := range states(t, s, "a", "b", "c") {
			if want := "open@0 timers [remind] history []"; id != "c" && got != want {
				t.Errorf("%s after the failed batch: %s, want %s", id, got, want)
			}
		}
		for _, r := range b.slow {
			if err := s.fireFirst(ctx, r.row, TimerOptions{}.withDefaults(), r.stale); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]string{
			"a": "reminded@1 timers [] history [timer:remind]",
			"b": "reminded@1 timers [] history [timer:remind]",
			"c": "open@0 timers [] history []",
		}
		for id, got := range states(t, s, "a", "b", "c") {
			if got != want[id] {
				t.Errorf("%s: %s, want %s", id, got, want[id])
			}
		}
	})
}
