package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// messagesSender sends its peer a numbered ping on `go` and an event the peer refuses on `bad`.
const messagesSender = `name: sender
initial: on
context:
  peer: {type: string, required: true}
  n: {type: int}
states:
  on:
    on:
      go:
        to: on
        set: {n: ctx.n + 1}
        send:
          - {to: ctx.peer, event: ping, payload: {n: ctx.n + 1}}
      bad:
        to: on
        send:
          - {to: ctx.peer, event: ping, payload: {n: -1}}
`

// messagesReceiver writes down the pings' counts in order; a negative one is refused by its guard.
const messagesReceiver = `name: receiver
initial: on
context:
  seen: {type: string}
events:
  ping:
    n: {type: int, required: true}
states:
  on:
    on:
      ping:
        to: on
        guard: event.n > 0
        guard_message: counts are positive
        set: {seen: 'ctx.seen + " " + string(event.n)'}
`

// TestMessagesEndToEnd: fsmd serve on PostgreSQL and on SQLite, the two definitions put through
// PUT /v1/definitions/{name}. A sender's messages reach the receiver once each and in order
// (source message, request id the message's id); a refused one is dropped with a history row;
// one to an instance that does not exist is dead, listed by GET /v1/messages/dead, and delivered
// once re-driven after the instance is created. Every exchange is checked against the API document.
func TestMessagesEndToEnd(t *testing.T) {
	t.Parallel()
	for name, dbURL := range dbtest.Databases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			child := startFsmd(t, dbURL(t), t.TempDir(), "--timer-poll", "50ms")
			env := &apiEnv{srv: &httptest.Server{URL: child.base}, client: &http.Client{Transport: apiConformTransport(t, http.DefaultTransport)}}
			for def, src := range map[string]string{"sender": messagesSender, "receiver": messagesReceiver} {
				r := env.do(t, "PUT", "/v1/definitions/"+def, src, "Content-Type", "application/yaml")
				if r.status != http.StatusOK && r.status != http.StatusCreated {
					t.Fatalf("%s", r)
				}
			}
			env.create(t, "receiver", "r-1", nil)
			env.create(t, "sender", "s-1", map[string]any{"peer": "r-1"})
			const pings = 10
			for i := range pings {
				env.mustFire(t, "s-1", "go", nil)
				if i == 4 {
					env.mustFire(t, "s-1", "bad", nil)
				}
			}
			want := " 1 2 3 4 5 6 7 8 9 10"
			waitFor(t, child, "the pings delivered", func() bool { return env.instance(t, "r-1").Context["seen"] == want })

			h := messagesHistory(t, env, "r-1")
			if len(h) != pings+1 {
				t.Fatalf("the receiver's history has %d rows, want %d", len(h), pings+1)
			}
			ids := map[string]bool{}
			for i, e := range h {
				if e.Source != "message" || e.RequestID == "" || ids[e.RequestID] {
					t.Errorf("row %d: source %q, request id %q (seen before: %v)", e.Seq, e.Source, e.RequestID, ids[e.RequestID])
				}
				ids[e.RequestID] = true
				if i == 5 { // the refused ping, dropped in its place
					if !strings.HasPrefix(e.Dropped, "guard_rejected: ") || fmt.Sprint(e.Payload["n"]) != "-1" {
						t.Errorf("row %d: dropped %q, payload %v; want a guard_rejected drop of n -1", e.Seq, e.Dropped, e.Payload)
					}
				} else if e.Dropped != "" {
					t.Errorf("row %d dropped: %s", e.Seq, e.Dropped)
				}
			}

			// To an instance that does not exist: dead, listed with the reason, delivered once
			// re-driven after the instance is created.
			env.create(t, "sender", "s-2", map[string]any{"peer": "r-2"})
			env.mustFire(t, "s-2", "go", nil)
			var dead apiPage[apiDeadMessage]
			waitFor(t, child, "the message to r-2 dead", func() bool {
				dead = apiWant[apiPage[apiDeadMessage]](t, env.do(t, "GET", "/v1/messages/dead?limit=10", nil), http.StatusOK)
				return len(dead.Items) == 1
			})
			m := dead.Items[0]
			if m.Sender != "s-2" || m.Target != "r-2" || m.Event != "ping" || fmt.Sprint(m.Payload["n"]) != "1" ||
				m.Reason != `not_found: no instance has id "r-2"` || m.SenderSeq != 1 || m.DeadAt.IsZero() {
				t.Errorf("dead message = %+v", m)
			}
			apiProblemOf(t, env.do(t, "POST", "/v1/messages/dead/nope/redrive", nil), http.StatusNotFound, "not_found")
			env.create(t, "receiver", "r-2", nil)
			apiWant[map[string]any](t, env.do(t, "POST", apiPath("/v1/messages/dead/%s/redrive", m.ID), nil), http.StatusOK)
			waitFor(t, child, "the re-driven message delivered", func() bool { return env.instance(t, "r-2").Context["seen"] == " 1" })
			if h := messagesHistory(t, env, "r-2"); len(h) != 1 || h[0].RequestID != m.ID || h[0].Source != "message" {
				t.Errorf("r-2's history: %+v", h)
			}
			if d := apiWant[apiPage[apiDeadMessage]](t, env.do(t, "GET", "/v1/messages/dead", nil), http.StatusOK); len(d.Items) != 0 {
				t.Errorf("dead messages after the re-drive: %+v", d.Items)
			}
			apiProblemOf(t, env.do(t, "POST", apiPath("/v1/messages/dead/%s/redrive", m.ID), nil), http.StatusNotFound, "not_found")
		})
	}
}

// apiDeadMessage is an item of GET /v1/messages/dead.
type apiDeadMessage struct {
	ID        string         `json:"id"`
	Sender    string         `json:"sender"`
	SenderSeq int64          `json:"sender_seq"`
	Target    string         `json:"target"`
	Event     string         `json:"event"`
	Payload   map[string]any `json:"payload"`
	Reason    string         `json:"reason"`
	CreatedAt time.Time      `json:"created_at"`
	DeadAt    time.Time      `json:"dead_at"`
}

// messagesHistory reads an instance's history (its rows may be dropped ones, which env.history's
// check of the fields does not expect).
func messagesHistory(t *testing.T, env *apiEnv, id string) []apiHistoryEntry {
	t.Helper()
	return apiWant[apiPage[apiHistoryEntry]](t, env.do(t, "GET", apiPath("/v1/instances/%s/history?limit=1000", id), nil), http.StatusOK).Items
}

// waitFor polls until ok holds, for up to 20 s.
func waitFor(t *testing.T, child *fsmdChild, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s; log:\n%s", what, child.log.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMessagesProcesses: two fsmd processes on one PostgreSQL deliver the messages that senders
// send through both: each exactly once (one history row per message id), none lost, and those of
// each sender to each receiver in the order sent.
//
// On PostgreSQL with 10,000 messages, on Citus with 2,000 (its delivery is several times slower on
// this machine's two cores).
func TestMessagesProcesses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		db   string
		each int
	}{{"postgres", 250}, {"citus", 50}} {
		t.Run(c.db, func(t *testing.T) { testMessagesProcesses(t, dbtest.Databases[c.db](t), c.each) })
	}
}

// testMessagesProcesses has 40 senders send each messages each to 8 receivers.
func testMessagesProcesses(t *testing.T, dbURL string, each int) {
	const senders, receivers = 40, 8
	defs := t.TempDir()
	for name, src := range map[string]string{"sender": messagesTagged, "receiver": messagesReceiverTagged} {
		if err := os.WriteFile(filepath.Join(defs, name+".yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	children := []*fsmdChild{startFsmd(t, dbURL, defs, "--timer-poll", "50ms"), startFsmd(t, dbURL, defs, "--timer-poll", "50ms")}
	for r := range receivers {
		if code, b := childPost(children[r%2], "/v1/instances", fmt.Appendf(nil, `{"definition": "receiver", "id": "r-%d"}`, r)); code != http.StatusCreated {
			t.Fatalf("creating r-%d: %d %s", r, code, b)
		}
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			id := fmt.Sprint("s-", s)
			body := fmt.Appendf(nil, `{"definition": "sender", "id": %q, "context": {"peer": "r-%d"}}`, id, s%receivers)
			if code, b := childPost(children[s%2], "/v1/instances", body); code != http.StatusCreated {
				t.Errorf("creating %s: %d %s", id, code, b)
				return
			}
			for i := range each {
				if code, b := childPost(children[(s+i)%2], "/v1/instances/"+id+"/events", []byte(`{"event": "go"}`)); code != http.StatusOK {
					t.Errorf("%s go: %d %s", id, code, b)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	db, err := persistence.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left int
		if err := db.X.Get(&left, `SELECT count(*) FROM messages`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages left after 2 min; logs:\n%s\n%s", left, children[0].log.tail(), children[1].log.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var rows []struct {
		Target    string  `db:"instance_id"`
		RequestID string  `db:"request_id"`
		Source    string  `db:"source"`
		Payload   string  `db:"payload"`
		Dropped   *string `db:"dropped"`
	}
	if err := db.X.Select(&rows, `SELECT instance_id, request_id, source, payload::text AS payload, dropped FROM transitions
		WHERE instance_id LIKE 'r-%' ORDER BY instance_id, seq`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != senders*each {
		t.Errorf("%d deliveries, want %d", len(rows), senders*each)
	}
	seen := map[string]bool{}
	next := map[string]int{} // per sender, the last count delivered
	for _, r := range rows {
		if r.Source != "message" || r.Dropped != nil || seen[r.RequestID] {
			t.Fatalf("a delivery to %s: source %s, dropped %v, message %s seen before: %v", r.Target, r.Source, r.Dropped, r.RequestID, seen[r.RequestID])
		}
		seen[r.RequestID] = true
		var p struct {
			From string `json:"from"`
			N    int    `json:"n"`
		}
		if err := json.Unmarshal([]byte(r.Payload), &p); err != nil {
			t.Fatal(err)
		}
		if p.N != next[p.From]+1 {
			t.Fatalf("%s: count %d from %s delivered after %d", r.Target, p.N, p.From, next[p.From])
		}
		next[p.From] = p.N
	}
	for s := range senders {
		if n := next[fmt.Sprint("s-", s)]; n != each {
			t.Errorf("s-%d: %d of its messages delivered, want %d", s, n, each)
		}
	}
}

// messagesTagged sends its peer a numbered ping, tagged with its id, on each `go`.
const messagesTagged = `name: sender
initial: on
context:
  peer: {type: string, required: true}
  n: {type: int}
states:
  on:
    on:
      go:
        to: on
        set: {n: ctx.n + 1}
        send:
          - {to: ctx.peer, event: ping, payload: {n: ctx.n + 1, from: instance.id}}
`

// messagesReceiverTagged takes every ping.
const messagesReceiverTagged = `name: receiver
initial: on
events:
  ping:
    n: {type: int, required: true}
    from: {type: string, required: true}
states:
  on:
    on:
      ping: on
`
