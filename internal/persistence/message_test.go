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

// TestInstanceAdvanceMessages: a transition's messages are written with it (in the one statement
// on PostgreSQL, in the transaction on SQLite), each the next of its (sender, target) pair in the
// order sent; with the transition or not at all.
func TestInstanceAdvanceMessages(t *testing.T) {
	t.Parallel()
	advance := func(rev int64, msgs ...[2]string) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
		u := persistence.InstanceUpdateParams{ID: "s", ExpectRevision: rev - 1, Version: 1, State: "on",
			Context: []byte(`{}`), Revision: rev, UpdatedAt: now(), EnteredAt: now()}
		for i, m := range msgs {
			u.Messages = append(u.Messages, persistence.MessageRow{ID: fmt.Sprintf("m%d-%d", rev, i), Sender: "s", SenderSeq: rev,
				Target: m[0], Event: m[1], Payload: fmt.Appendf(nil, `{"rev":%d,"i":%d}`, rev, i), CreatedAt: now()})
		}
		return u, persistence.TransitionRow{InstanceID: "s", Seq: rev, Event: "go", From: "on", To: "on", Source: "api",
			RequestID: "r", DefinitionVersion: 1, At: now()}
	}
	type msg struct {
		ID        string `db:"id"`
		SenderSeq int64  `db:"sender_seq"`
		Target    string `db:"target"`
		Seq       int64  `db:"seq"`
		Event     string `db:"event"`
		Payload   string `db:"payload"`
	}
	read := func(t *testing.T, db *persistence.DB) string {
		var rows []msg
		if err := db.X.Select(&rows, `SELECT id, sender_seq, target, seq, event, payload FROM messages WHERE sender = 's' ORDER BY target, seq`); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s:%s#%d=%s@%d", r.Target, r.Event, r.Seq, r.ID, r.SenderSeq))
			if !jsonEqual(t, []byte(r.Payload), []byte(fmt.Sprintf(`{"rev":%d,"i":%s}`, r.SenderSeq, r.ID[strings.Index(r.ID, "-")+1:]))) {
				t.Errorf("message %s: payload %s", r.ID, r.Payload)
			}
		}
		return strings.Join(out, " ")
	}
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, []persistence.InstanceRow{instance("s", "counter", 1, "on")})
		ways := []func(u persistence.InstanceUpdateParams, r persistence.TransitionRow) error{
			func(u persistence.InstanceUpdateParams, r persistence.TransitionRow) error {
				return db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceAdvance(ctx, tx, u, r) })
			},
			func(u persistence.InstanceUpdateParams, r persistence.TransitionRow) error {
				return persistence.InstanceAdvance(ctx, db, u, r)
			},
		}
		// Two to a, one to b, then one more to a and one to c, in two transitions: a pair's seqs
		// follow the order sent, across transitions.
		u, r := advance(1, [2]string{"a", "x"}, [2]string{"b", "y"}, [2]string{"a", "z"})
		if err := ways[0](u, r); err != nil {
			t.Fatal(err)
		}
		u, r = advance(2, [2]string{"c", "x"}, [2]string{"a", "w"})
		if err := ways[1](u, r); err != nil {
			t.Fatal(err)
		}
		want := "a:x#1=m1-0@1 a:z#2=m1-2@1 a:w#3=m2-1@2 b:y#1=m1-1@1 c:x#1=m2-0@2"
		if got := read(t, db); got != want {
			t.Errorf("messages:\n got %s\nwant %s", got, want)
		}

		// A transition that is not written writes none of its messages.
		u, r = advance(3, [2]string{"a", "lost"})
		u.ExpectRevision = 1
		for i, write := range ways {
			if err := write(u, r); !errors.Is(err, persistence.ErrConflict) {
				t.Errorf("way %d: a stale revision: err = %v, want ErrConflict", i, err)
			}
		}
		u, r = advance(3, [2]string{"a", "lost"})
		r.Seq, u.Messages[0].SenderSeq = 9, 9
		if err := ways[0](u, r); err == nil || !strings.Contains(err.Error(), "with transition 9") {
			t.Errorf("a row not the update's: err = %v", err)
		}
		u, r = advance(3, [2]string{"a", "lost"})
		u.Messages[0].SenderSeq = 2
		if err := ways[0](u, r); err == nil || !strings.Contains(err.Error(), `with the message of "s" 2`) {
			t.Errorf("a message not the update's: err = %v", err)
		}
		if got := read(t, db); got != want {
			t.Errorf("messages after refused writes:\n got %s\nwant %s", got, want)
		}

		// Once a pair's rows are gone (delivered), its order starts again after what is left.
		db.X.MustExec(`DELETE FROM messages WHERE target = 'b'`)
		u, r = advance(3, [2]string{"b", "again"}, [2]string{"a", "v"})
		if err := ways[1](u, r); err != nil {
			t.Fatal(err)
		}
		want = "a:x#1=m1-0@1 a:z#2=m1-2@1 a:w#3=m2-1@2 a:v#4=m3-1@3 b:again#1=m3-0@3 c:x#1=m2-0@2"
		if got := read(t, db); got != want {
			t.Errorf("messages:\n got %s\nwant %s", got, want)
		}
	})
}
