package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// bellDef stays in ringing on note and on its remind timer (no `to`), and leaves it when close
// fires.
const bellDef = `name: bell
initial: ringing
context:
  n: int
states:
  ringing:
    on:
      note: {set: {n: ctx.n + 10}}
      remind: {set: {n: ctx.n + 1}}
      close: silent
    timers:
      - {after: 1h, event: remind}
      - {after: 3h, event: close}
  silent: {final: true}
`

// TestStay: an event or a timer whose branch stays keeps entered_at and the pending timers (the
// fired one is gone, not re-armed), writes a history row from the state to itself, and counts in
// no stats: the time in the state runs on from when it was entered.
func TestStay(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
		c := &clock{t: t0}
		svc := service.New(db, service.Options{Now: c.now})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, bellDef)); err != nil {
			t.Fatal(err)
		}
		create(t, svc, "bell", "b")
		state := func() string {
			t.Helper()
			inst, err := svc.GetInstance(ctx, "b")
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, tm := range inst.Timers {
				parts = append(parts, tm.Event+"@"+tm.DueAt.Sub(t0).String())
			}
			return inst.State + " entered+" + inst.EnteredAt.Sub(t0).String() + " n=" + fmt.Sprint(inst.Context["n"]) +
				" [" + strings.Join(parts, " ") + "]"
		}
		fire := func(want int) {
			t.Helper()
			if n, err := svc.FireDue(ctx, service.TimerOptions{}); err != nil || n != want {
				t.Fatalf("FireDue: %d instances, %v; want %d", n, err, want)
			}
		}

		c.advance(30 * time.Minute)
		if res := send(t, svc, "b", "note"); res.Transition.From != "ringing" || res.Transition.To != "ringing" ||
			!res.Instance.EnteredAt.Equal(t0) {
			t.Errorf("note: %+v", res)
		}
		if got, want := state(), "ringing entered+0s n=10 [remind@1h0m0s close@3h0m0s]"; got != want {
			t.Errorf("after note: %s, want %s", got, want)
		}
		c.advance(time.Hour) // 1h30 after entering: remind is due
		fire(1)
		if got, want := state(), "ringing entered+0s n=11 [close@3h0m0s]"; got != want {
			t.Errorf("after remind: %s, want %s", got, want)
		}
		fire(0) // the fired timer is gone, not re-armed
		h, err := svc.History(ctx, "b", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Items) != 2 || h.Items[1].Event != "remind" || h.Items[1].Source != "timer" || h.Items[1].From != "ringing" ||
			h.Items[1].To != "ringing" || h.Items[1].Dropped != "" {
			t.Errorf("history: %+v", h.Items)
		}

		c.advance(90 * time.Minute) // 3h after entering: close is due at its original deadline
		fire(1)
		if got, want := state(), "silent entered+3h0m0s n=11 []"; got != want {
			t.Errorf("after close: %s, want %s", got, want)
		}
		st, err := svc.DefinitionStats(ctx, service.StatsRequest{Definition: "bell", Since: t0, Until: c.now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Transitions) != 1 || st.Transitions[0] != (service.TransitionStats{From: "ringing", To: "silent", Event: "close", Count: 1}) {
			t.Errorf("stats transitions: %+v, want ringing -> silent only (stays are not counted)", st.Transitions)
		}
		ringing := st.States[0]
		if ringing.Entries != 0 || ringing.Exits != 1 || ringing.MedianMS == nil ||
			*ringing.MedianMS != persistence.DurationBucket((3*time.Hour).Milliseconds()) {
			t.Errorf("stats of ringing: %+v, want 1 exit after 3 h", ringing)
		}
	})
}
