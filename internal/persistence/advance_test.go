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

// TestInstanceAdvance: the instance's update, its audit row and its timers are written together or
// not at all, and only while the instance is at the revision expected; on PostgreSQL also outside a
// transaction, where the one statement is its own.
func TestInstanceAdvance(t *testing.T) {
	t.Parallel()
	advance := func(rev int64, key string) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
		return persistence.InstanceUpdateParams{ID: "a", ExpectRevision: rev - 1, Version: 1, State: "on",
				Context: fmt.Appendf(nil, `{"n":%d}`, rev), Revision: rev, UpdatedAt: now(), EnteredAt: now(),
				Timers: &persistence.TimerChange{Cancel: true, Arms: []persistence.Arm{{Event: fmt.Sprint("tick", rev), DueAt: now()}}}},
			persistence.TransitionRow{InstanceID: "a", Seq: rev, Event: "inc", From: "on", To: "on", Source: "api",
				RequestID: "r", IdempotencyKey: key, DefinitionVersion: 1, At: now()}
	}
	tests := []struct {
		name    string
		prepare func(u *persistence.InstanceUpdateParams, r *persistence.TransitionRow)
		key     string
		want    error // nil: written
		wantMsg string
	}{
		{name: "at the revision expected"},
		{name: "with a new key", key: "k2"},
		{name: "the instance moved on", prepare: func(u *persistence.InstanceUpdateParams, r *persistence.TransitionRow) {
			u.ExpectRevision = 0
		}, want: persistence.ErrConflict},
		{name: "the key is taken", key: "k1", want: persistence.ErrConflict},
		{name: "no such instance", prepare: func(u *persistence.InstanceUpdateParams, r *persistence.TransitionRow) {
			u.ID, r.InstanceID = "nobody", "nobody"
		}, want: persistence.ErrConflict},
		{name: "the row is not the update's", prepare: func(u *persistence.InstanceUpdateParams, r *persistence.TransitionRow) {
			r.Seq = 9
		}, wantMsg: "with transition 9"},
	}
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, nil)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// A fresh instance at revision 1, its transition 1 recorded with key k1.
				db.X.MustExec(`DELETE FROM transitions WHERE instance_id = 'a'`)
				db.X.MustExec(`DELETE FROM timers WHERE instance_id = 'a'`)
				db.X.MustExec(`DELETE FROM instances WHERE id = 'a'`)
				seed(t, db, nil, []persistence.InstanceRow{instance("a", "counter", 1, "on")})
				u1, r1 := advance(1, "k1")
				mustTx(t, db, func(tx *persistence.Tx) error { return persistence.InstanceAdvance(ctx, tx, u1, r1) })

				u, r := advance(2, tt.key)
				if tt.prepare != nil {
					tt.prepare(&u, &r)
				}
				ways := map[string]func() error{
					"in a transaction": func() error {
						return db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceAdvance(ctx, tx, u, r) })
					},
				}
				if db.Dialect == persistence.Postgres {
					ways["on its own"] = func() error { return persistence.InstanceAdvance(ctx, db, u, r) }
				}
				for way, write := range ways {
					err := write()
					got, gerr := persistence.InstanceGet(ctx, db, "a")
					rows, lerr := persistence.TransitionList(ctx, db, persistence.TransitionListParams{InstanceID: "a"})
					timers, terr := persistence.TimersOf(ctx, db, "a")
					if gerr != nil || lerr != nil || terr != nil {
						t.Fatalf("%s: read back: %v, %v, %v", way, gerr, lerr, terr)
					}
					timer := "none"
					if len(timers) == 1 {
						timer = fmt.Sprint(timers[0].Event, " r", timers[0].Revision)
					}
					switch {
					case tt.want == nil && tt.wantMsg == "":
						if err != nil || got.Revision != 2 || len(rows) != 2 || rows[1].IdempotencyKey != tt.key || timer != "tick2 r2" {
							t.Fatalf("%s: %v; revision %d, %d rows, timers %s; want all written", way, err, got.Revision, len(rows), timer)
						}
						return // written once: the other way would find it moved on
					case tt.want != nil && !errors.Is(err, tt.want), tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)):
						t.Errorf("%s: %v, want %v%s", way, err, tt.want, tt.wantMsg)
					}
					if got.Revision != 1 || len(rows) != 1 || !jsonEqual(t, got.Context, []byte(`{"n":1}`)) || timer != "tick1 r1" {
						t.Errorf("%s: revision %d, context %s, %d rows, timers %s; want nothing written", way, got.Revision, got.Context, len(rows), timer)
					}
				}
			})
		}
	})
}

// TestInstanceAdvanceOutbox: a transition's webhook deliveries are written with it, by the one
// statement on PostgreSQL too: the first of an instance and webhook pending, the next waiting
// behind it; none when the update does not apply.
func TestInstanceAdvanceOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, []persistence.InstanceRow{instance("a", "counter", 1, "on")})
		advance := func(rev, expect int64) error {
			u := persistence.InstanceUpdateParams{ID: "a", ExpectRevision: expect, Version: 1, State: "on",
				Context: []byte(`{}`), Revision: rev, UpdatedAt: now(), EnteredAt: now(),
				Outbox: []persistence.OutboxRow{{ID: fmt.Sprint("d", rev), InstanceID: "a", Seq: rev, Definition: "counter",
					Version: 1, Webhook: "w", URL: "http://127.0.0.1:1/w", Destination: "http://127.0.0.1:1",
					Body: []byte(`{}`), Status: persistence.OutboxPending, NextTryAt: now(), CreatedAt: now()}}}
			r := persistence.TransitionRow{InstanceID: "a", Seq: rev, Event: "inc", From: "on", To: "on", Source: "api",
				RequestID: "r", DefinitionVersion: 1, At: now()}
			if db.Dialect == persistence.Postgres {
				return persistence.InstanceAdvance(ctx, db, u, r) // the one statement
			}
			return db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceAdvance(ctx, tx, u, r) })
		}
		if err := advance(1, 0); err != nil {
			t.Fatal(err)
		}
		if err := advance(2, 1); err != nil {
			t.Fatal(err)
		}
		if err := advance(3, 1); !errors.Is(err, persistence.ErrConflict) {
			t.Fatalf("an update that does not apply: %v, want ErrConflict", err)
		}
		var rows []struct {
			Seq    int64  `db:"seq"`
			Status string `db:"status"`
		}
		if err := db.X.Select(&rows, `SELECT seq, status FROM outbox ORDER BY seq`); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(rows); got != "[{1 pending} {2 waiting}]" {
			t.Errorf("outbox: %s, want [{1 pending} {2 waiting}]", got)
		}
	})
}
