package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestAdvanceGroup: the transitions of a group commit together, each with its update, audit row and
// timers, and an item that fails (its instance moved on, its key or seq taken, text refused, its
// parts not matching) fails alone, with the error InstanceAdvance gives it, while the others are
// written; on PostgreSQL, where such a statement aborts the transaction, also when several items
// fail.
func TestAdvanceGroup(t *testing.T) {
	t.Parallel()
	// Each item advances an instance of its own from revision 1 (its transition 1 recorded with key
	// k1) to 2.
	type item struct {
		prepare func(u *persistence.InstanceUpdateParams, r *persistence.TransitionRow)
		key     string
		want    error  // nil: written
		wantMsg string // a part of the error's text
		sqlite  bool   // written on SQLite although PostgreSQL refuses it
	}
	ok := item{}
	moved := item{prepare: func(u *persistence.InstanceUpdateParams, _ *persistence.TransitionRow) { u.ExpectRevision = 0 },
		want: persistence.ErrConflict}
	keyTaken := item{key: "k1", want: persistence.ErrConflict}
	seqTaken := item{prepare: func(u *persistence.InstanceUpdateParams, r *persistence.TransitionRow) {
		u.Revision, r.Seq = 1, 1 // the update applies; its row's seq is taken
	}, want: persistence.ErrConflict}
	mismatch := item{prepare: func(_ *persistence.InstanceUpdateParams, r *persistence.TransitionRow) { r.Seq = 9 }, wantMsg: "with transition 9"}
	nul := item{prepare: func(_ *persistence.InstanceUpdateParams, r *persistence.TransitionRow) { r.Event = "in\x00c" },
		want: persistence.ErrInvalidText, sqlite: true}
	tests := []struct {
		name  string
		items []item
	}{
		{"one", []item{ok}},
		{"one that moved on", []item{moved}},
		{"all written", []item{ok, ok, ok, ok}},
		{"one moved on in the middle", []item{ok, moved, ok}},
		{"a key taken", []item{ok, keyTaken, ok}},
		{"a seq taken first", []item{seqTaken, ok, ok}},
		{"text refused last", []item{ok, ok, nul}},
		{"parts that do not match", []item{mismatch, ok}},
		{"several failures", []item{keyTaken, ok, moved, seqTaken, ok, nul, keyTaken, ok}},
		{"all fail", []item{keyTaken, moved, seqTaken}},
	}
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, nil)
		for ti, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var items []persistence.Advance
				ids := make([]string, len(tt.items))
				for i, it := range tt.items {
					ids[i] = fmt.Sprintf("g%d-%d", ti, i)
					seed(t, db, nil, []persistence.InstanceRow{instance(ids[i], "counter", 1, "on")})
					u1, r1 := groupAdvance(ids[i], 1, "k1")
					if err := persistence.InstanceAdvance(ctx, db, u1, r1); err != nil {
						t.Fatal(err)
					}
					u, r := groupAdvance(ids[i], 2, it.key)
					if it.prepare != nil {
						it.prepare(&u, &r)
					}
					items = append(items, persistence.Advance{Update: u, Row: r})
				}
				errs := persistence.AdvanceGroup(ctx, db, items)
				if len(errs) != len(items) {
					t.Fatalf("%d results for %d items", len(errs), len(items))
				}
				for i, it := range tt.items {
					err := errs[i]
					written := it.want == nil && it.wantMsg == "" || it.sqlite && db.Dialect == persistence.SQLite
					switch {
					case written && err != nil:
						t.Errorf("item %d (%s): %v, want written", i, ids[i], err)
					case !written && it.want != nil && !errors.Is(err, it.want):
						t.Errorf("item %d (%s): %v, want %v", i, ids[i], err, it.want)
					case !written && it.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), it.wantMsg)):
						t.Errorf("item %d (%s): %v, want %q", i, ids[i], err, it.wantMsg)
					}
					checkAdvanced(t, db, ids[i], written)
				}
			})
		}
	})
}

// groupAdvance is the transition rev of instance id: a count, with a timer armed at rev.
func groupAdvance(id string, rev int64, key string) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
	return persistence.InstanceUpdateParams{ID: id, ExpectRevision: rev - 1, Version: 1, State: "on",
			Context: fmt.Appendf(nil, `{"n":%d}`, rev), Revision: rev, UpdatedAt: now(), EnteredAt: now(),
			Timers: &persistence.TimerChange{Cancel: true, Arms: []persistence.Arm{{Event: fmt.Sprint("tick", rev), DueAt: now()}}}},
		persistence.TransitionRow{InstanceID: id, Seq: rev, Event: "inc", From: "on", To: "on", Source: "api",
			RequestID: "r", IdempotencyKey: key, DefinitionVersion: 1, At: now()}
}

// checkAdvanced checks that instance id is at revision 2 with its two rows and transition 2's timer
// (written), or still at 1 with transition 1's, nothing of the failed write kept.
func checkAdvanced(t *testing.T, db *persistence.DB, id string, written bool) {
	t.Helper()
	ctx := context.Background()
	got, gerr := persistence.InstanceGet(ctx, db, id)
	rows, lerr := persistence.TransitionList(ctx, db, persistence.TransitionListParams{InstanceID: id})
	timers, terr := persistence.TimersOf(ctx, db, id)
	if gerr != nil || lerr != nil || terr != nil {
		t.Fatalf("%s: read back: %v, %v, %v", id, gerr, lerr, terr)
	}
	rev := int64(1)
	if written {
		rev = 2
	}
	timer := "none"
	if len(timers) == 1 {
		timer = fmt.Sprint(timers[0].Event, " r", timers[0].Revision)
	}
	if got.Revision != rev || int64(len(rows)) != rev || !jsonEqual(t, got.Context, fmt.Appendf(nil, `{"n":%d}`, rev)) ||
		timer != fmt.Sprint("tick", rev, " r", rev) {
		t.Errorf("%s: revision %d, context %s, %d rows, timers %s; want revision %d (written: %v)",
			id, got.Revision, got.Context, len(rows), timer, rev, written)
	}
}
