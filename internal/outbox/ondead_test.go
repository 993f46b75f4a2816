package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// onDeadDef is counterDef whose webhook a sends the event undelivered when one of its deliveries is
// dead; webhook b has no on_dead.
func onDeadDef(t testing.TB, urlA, urlB string) *machine.Definition {
	return parse(t, fmt.Sprintf(`name: counter
initial: running
states:
  running:
    on:
      tick: running
      stop: stopped
      undelivered: stopped
  stopped: {final: true}
notify:
  - {name: a, url: %q, on_dead: undelivered}
  - {name: b, url: %q, events: [tick]}
`, urlA, urlB))
}

// sentMessage is a row of the messages table.
type sentMessage struct {
	ID        string `db:"id"`
	Sender    string `db:"sender"`
	SenderSeq int64  `db:"sender_seq"`
	Target    string `db:"target"`
	Seq       int64  `db:"seq"`
	Event     string `db:"event"`
	Payload   string `db:"payload"`
}

func sentMessages(t testing.TB, db *persistence.DB) []sentMessage {
	t.Helper()
	var rows []sentMessage
	if err := db.X.Select(&rows, `SELECT id, sender, sender_seq, target, seq, event, payload FROM messages ORDER BY sender, seq`); err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkOnDead checks that each dead letter of webhook a, and only those, has its message: from
// its instance to itself, of the transition it announced, with {webhook, attempts, last_error}.
func checkOnDead(t testing.TB, db *persistence.DB, want int) {
	t.Helper()
	dead, err := persistence.OutboxListDead(context.Background(), db, persistence.OutboxListParams{Webhook: "a"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := sentMessages(t, db)
	if len(dead) != want || len(msgs) != want {
		t.Fatalf("%d dead letters of webhook a and %d messages, want %d of each", len(dead), len(msgs), want)
	}
	sort.Slice(dead, func(i, j int) bool {
		return dead[i].InstanceID < dead[j].InstanceID || dead[i].InstanceID == dead[j].InstanceID && dead[i].Seq < dead[j].Seq
	})
	for i, d := range dead {
		m := msgs[i]
		var p outbox.OnDeadPayload
		if err := json.Unmarshal([]byte(m.Payload), &p); err != nil {
			t.Fatal(err)
		}
		if m.Sender != d.InstanceID || m.Target != d.InstanceID || m.SenderSeq != d.Seq || m.Event != "undelivered" ||
			p != (outbox.OnDeadPayload{Webhook: "a", Attempts: d.Attempts, LastError: d.LastError}) {
			t.Errorf("dead letter %s (attempts %d, %q): message %+v", d.ID, d.Attempts, d.LastError, m)
		}
	}
}

// TestOnDeadLastAttempt: a delivery dead after its last attempt writes the on_dead message of its
// webhook with the dead letter, and wakes the message dispatcher.
func TestOnDeadLastAttempt(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		rc := newReceiver(t)
		rc.always(http.StatusInternalServerError)
		def := onDeadDef(t, rc.srv.URL+"/a", rc.srv.URL+"/b")
		rows := seed(t, db, def, 2, 2)
		var woken atomic.Int64
		cfg := fast()
		cfg.MaxAttempts = 2
		cfg.Definition = func(_ context.Context, name string, version int) (*machine.Definition, error) {
			if name != "counter" || version != 1 {
				return nil, fmt.Errorf("no %s@%d", name, version)
			}
			return def, nil
		}
		cfg.OnDeadSent = func() { woken.Add(1) }
		start(t, db, cfg)
		eventually(t, 10*time.Second, "every row dead", func() bool { return counts(t, db).Dead == int64(len(rows)) })
		checkOnDead(t, db, 4)
		for _, m := range sentMessages(t, db) {
			var p outbox.OnDeadPayload
			_ = json.Unmarshal([]byte(m.Payload), &p)
			if p.Attempts != 2 || p.LastError != "HTTP 500: (no body) (attempt 2 of 2: dead)" {
				t.Errorf("payload %s", m.Payload)
			}
		}
		if woken.Load() == 0 {
			t.Error("OnDeadSent was not called")
		}
	})
}

// TestOnDeadRefused: a delivery to a refused destination is dead at once, with its message.
func TestOnDeadRefused(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		rc := newReceiver(t)
		def := onDeadDef(t, rc.srv.URL+"/a", rc.srv.URL+"/b")
		rows := seed(t, db, def, 1, 2)
		cfg := fast()
		cfg.Deny = outbox.PrivateNetworks
		cfg.Definition = func(context.Context, string, int) (*machine.Definition, error) { return def, nil }
		start(t, db, cfg)
		eventually(t, 10*time.Second, "every row dead", func() bool { return counts(t, db).Dead == int64(len(rows)) })
		if n := rc.count(); n != 0 {
			t.Errorf("the receiver got %d requests", n)
		}
		checkOnDead(t, db, 2)
	})
}

// TestOnDeadUnknownDefinition: a dead delivery whose definition version cannot be read is given back
// unrecorded (no dead letter without its message), and recorded with its message once it can be.
func TestOnDeadUnknownDefinition(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	rc := newReceiver(t)
	def := onDeadDef(t, rc.srv.URL+"/a", rc.srv.URL+"/b")
	seed(t, db, def, 1, 1)
	var known atomic.Bool
	cfg := fast()
	cfg.Deny = outbox.PrivateNetworks
	cfg.Lease = 300 * time.Millisecond
	cfg.Definition = func(context.Context, string, int) (*machine.Definition, error) {
		if !known.Load() {
			return nil, errors.New("not loaded")
		}
		return def, nil
	}
	d := start(t, db, cfg)
	eventually(t, 10*time.Second, "the rows given back", func() bool { return d.Stats().Released >= 2 })
	if c := counts(t, db); c.Dead != 0 || len(sentMessages(t, db)) != 0 {
		t.Fatalf("counts %+v, messages %v", c, sentMessages(t, db))
	}
	known.Store(true)
	eventually(t, 10*time.Second, "every row dead", func() bool { return counts(t, db).Dead == 2 })
	checkOnDead(t, db, 1)
}

// TestOnDeadMessage: the message of a webhook without on_dead is none.
func TestOnDeadMessage(t *testing.T) {
	t.Parallel()
	def := onDeadDef(t, "https://a.example/", "https://b.example/")
	row := persistence.OutboxRow{InstanceID: "i-1", Seq: 7, Webhook: "a"}
	m, err := outbox.OnDeadMessage(def, row, 3, "HTTP 503: down", time.Unix(100, 0))
	if err != nil || m == nil || m.Sender != "i-1" || m.Target != "i-1" || m.SenderSeq != 7 || m.Event != "undelivered" ||
		string(m.Payload) != `{"webhook":"a","attempts":3,"last_error":"HTTP 503: down"}` || m.ID == "" || !m.CreatedAt.Equal(time.Unix(100, 0)) {
		t.Errorf("OnDeadMessage = %+v, %v", m, err)
	}
	row.Webhook = "b"
	if m, err := outbox.OnDeadMessage(def, row, 3, "x", time.Unix(100, 0)); m != nil || err != nil {
		t.Errorf("webhook b: %+v, %v", m, err)
	}
}
