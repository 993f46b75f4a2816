package persistence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestOutboxFailOnDead: a dead letter and its webhook's on_dead message are written together, in
// the transaction that records the dead attempt: not under a claim that lost the row, not when the
// attempt is only failed, and neither when the message cannot be written.
func TestOutboxFailOnDead(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		msg := func(id string, seq int64) *persistence.MessageRow {
			return &persistence.MessageRow{ID: id, Sender: "i-1", SenderSeq: seq, Target: "i-1", Event: "undelivered",
				Payload: []byte(`{"webhook":"billing","attempts":1,"last_error":"HTTP 410: gone"}`), CreatedAt: now()}
		}
		type message struct {
			ID        string `db:"id"`
			Sender    string `db:"sender"`
			SenderSeq int64  `db:"sender_seq"`
			Target    string `db:"target"`
			Seq       int64  `db:"seq"`
			Event     string `db:"event"`
			Payload   string `db:"payload"`
			Status    string `db:"status"`
		}
		messages := func() []message {
			t.Helper()
			var rows []message
			if err := db.X.Select(&rows, `SELECT id, sender, sender_seq, target, seq, event, payload, status FROM messages ORDER BY seq`); err != nil {
				t.Fatal(err)
			}
			return rows
		}
		status := func(id string) string {
			t.Helper()
			r, err := persistence.OutboxGet(ctx, db, id)
			if err != nil {
				t.Fatal(err)
			}
			return r.Status
		}
		insertOutbox(t, db, delivery("i-1", "billing", 1), delivery("i-1", "billing", 2), delivery("i-1", "billing", 3))
		got := claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c", Limit: 10})
		if len(got) != 1 || got[0].ID != "d-i-1-billing-001" {
			t.Fatalf("claimed %v", outboxIDs(got))
		}

		// Another claim's outcome writes nothing, not even the message.
		err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			return persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: got[0].ID, Claim: "other", At: now(),
				Error: "HTTP 410: gone", Dead: true, OnDead: msg("m-0", 1)})
		})
		if !errors.Is(err, persistence.ErrConflict) || len(messages()) != 0 {
			t.Fatalf("under another claim: %v, messages %v", err, messages())
		}
		// A failed attempt that is not the last sends nothing.
		mustTx(t, db, func(tx *persistence.Tx) error {
			return persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: got[0].ID, Claim: "c", At: now(),
				NextTryAt: now(), Error: "HTTP 500", OnDead: msg("m-0", 1)})
		})
		if len(messages()) != 0 || status(got[0].ID) != persistence.OutboxPending {
			t.Fatalf("a failed attempt: messages %v", messages())
		}

		// Dead: the dead letter and its message, the pair's first.
		got = claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c2", Limit: 10})
		mustTx(t, db, func(tx *persistence.Tx) error {
			return persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: got[0].ID, Claim: "c2", At: now(),
				Error: "HTTP 410: gone", Dead: true, OnDead: msg("m-1", 1)})
		})
		if s := status(got[0].ID); s != persistence.OutboxDead {
			t.Errorf("status %q, want dead", s)
		}
		m := messages()
		if len(m) != 1 || m[0].ID != "m-1" || m[0].Sender != "i-1" || m[0].Target != "i-1" || m[0].SenderSeq != 1 ||
			m[0].Seq != 1 || m[0].Event != "undelivered" || m[0].Status != persistence.MessagePending ||
			!jsonEqual(t, []byte(m[0].Payload), []byte(`{"webhook":"billing","attempts":1,"last_error":"HTTP 410: gone"}`)) {
			t.Errorf("messages = %+v", m)
		}

		// A message that cannot be written (its id is taken): the transaction fails, and the row
		// is not dead; with the next one, both are written.
		got = claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c3", Limit: 10})
		if len(got) != 1 || got[0].ID != "d-i-1-billing-002" {
			t.Fatalf("claimed %v", outboxIDs(got))
		}
		err = db.WithTx(ctx, func(tx *persistence.Tx) error {
			return persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: got[0].ID, Claim: "c3", At: now(),
				Error: "HTTP 410: gone", Dead: true, OnDead: msg("m-1", 2)})
		})
		if err == nil || errors.Is(err, persistence.ErrConflict) {
			t.Errorf("a message whose id is taken: %v, want an error other than ErrConflict", err)
		}
		if s := status(got[0].ID); s == persistence.OutboxDead || len(messages()) != 1 {
			t.Errorf("after the failed write: status %q, %d messages", s, len(messages()))
		}
		mustTx(t, db, func(tx *persistence.Tx) error {
			return persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: got[0].ID, Claim: "c3", At: now(),
				Error: "HTTP 410: gone", Dead: true, OnDead: msg("m-2", 2)})
		})
		if m := messages(); status(got[0].ID) != persistence.OutboxDead || len(m) != 2 || m[1].ID != "m-2" || m[1].Seq != 2 || m[1].SenderSeq != 2 {
			t.Errorf("messages = %+v", m)
		}
		// The next row of the chain is pending, as after any dead letter.
		if s := status("d-i-1-billing-003"); s != persistence.OutboxPending {
			t.Errorf("the next row is %q", s)
		}
	})
}
