package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// onceFanout sends a numbered ping to each of its peers on every `go`: one message per peer, the
// list in the order of ctx.peers (docs/definitions.md, "Messages").
const onceFanout = `name: fanout
initial: on
context:
  peers: [string]
  n: int
states:
  on:
    on:
      go:
        to: on
        set: {n: ctx.n + 1}
        send:
          - {to: ctx.peers, event: ping, payload: {n: ctx.n + 1}}
`

// onceCounter takes only the ping that follows the last it took: a duplicate, a gap or a ping out
// of order is refused by its guard, and the refusal is a dropped row in its history.
const onceCounter = `name: counter
initial: on
context:
  last: int
events:
  ping:
    n: {type: int, required: true}
states:
  on:
    on:
      ping:
        to: on
        guard: event.n == ctx.last + 1
        guard_message: pings come one after the other
        set: {last: event.n}
`

// onceSentLog records every message as it is written (a trigger on the messages table, which
// fsmd's statement that writes a transition fires like any insert): the ids the deliveries' request
// ids must match, each with its pair, its ping's count and the order written (ord: a pair's seq
// starts again at 1 once its messages are all delivered, so it does not order them over the test).
const onceSentLog = `
CREATE TABLE test_sent_log (ord bigserial, id text COLLATE "C" PRIMARY KEY, sender text NOT NULL, target text NOT NULL,
	n bigint NOT NULL);
CREATE FUNCTION test_log_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO test_sent_log (id, sender, target, n) VALUES (NEW.id, NEW.sender, NEW.target, (NEW.payload->>'n')::bigint);
	RETURN NULL;
END $$;
CREATE TRIGGER test_log_sent AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION test_log_sent();`

// TestMessagesExactlyOnceTwoProcesses: two fsmd serve processes on one PostgreSQL database deliver
// 10,000 messages (20 senders, each with 10 receivers of its own, 50 events each sending one
// message to each receiver, the events sent through both processes at once). One process is killed
// (SIGKILL) while they deliver and another takes its place. Each message is delivered exactly once
// and each pair's in order: every receiver took its 50 pings (its guard refuses a duplicate, a gap
// or a reordering, as a dropped row), its history has one row per message, source message, and the
// deliveries' request ids are exactly the ids of the messages written, in each pair's order.
// On Citus (fewer events: 2,000 messages) a message's row lives with its sender's instance and
// its delivery writes on the receiver's worker.
func TestMessagesExactlyOnceTwoProcesses(t *testing.T) {
	// Not parallel, nor its two: two fsmd processes and the test hold up to 48 PostgreSQL
	// connections, and the server allows 100 in all.
	t.Run("postgres", func(t *testing.T) { testMessagesExactlyOnce(t, dbtest.PostgresDatabaseURL(t), 50) })
	t.Run("citus", func(t *testing.T) { testMessagesExactlyOnce(t, dbtest.CitusDatabaseURL(t), 10) })
}

func testMessagesExactlyOnce(t *testing.T, dbURL string, events int) {
	const senders, peers = 20, 10 // 20 × 10 × 50 = 10,000 messages on PostgreSQL
	total := senders * peers * events
	start, children, db := twoProcesses(t, dbURL, map[string]string{"fanout": onceFanout, "counter": onceCounter})

	// The receivers, then each sender with its peers, through both processes.
	receiver := func(s, p int) string { return fmt.Sprintf("rcv-%02d-%02d", s, p) }
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			var ids []string
			for p := range peers {
				ids = append(ids, receiver(s, p))
				body := fmt.Appendf(nil, `{"definition": "counter", "id": %q}`, receiver(s, p))
				if code, b := childPost(children[p%2], "/v1/instances", body); code != http.StatusCreated {
					t.Errorf("creating %s: %d %s", receiver(s, p), code, b)
					return
				}
			}
			list, _ := json.Marshal(ids)
			body := fmt.Appendf(nil, `{"definition": "fanout", "id": "snd-%02d", "context": {"peers": %s}}`, s, list)
			if code, b := childPost(children[s%2], "/v1/instances", body); code != http.StatusCreated {
				t.Errorf("creating snd-%02d: %d %s", s, code, b)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The senders' events, each sender's one after the other, alternately through each process;
	// the processes deliver meanwhile.
	for s := range senders {
		wg.Go(func() {
			for i := range events {
				path := fmt.Sprintf("/v1/instances/snd-%02d/events", s)
				if code, b := childPost(children[(s+i)%2], path, []byte(`{"event": "go"}`)); code != http.StatusOK {
					t.Errorf("snd-%02d go #%d: %d %s", s, i+1, code, b)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if sent := len(sentLog(t, db)); sent != total {
		t.Fatalf("%d messages written, want %d", sent, total)
	}

	// A process killed while they deliver (a delivery it had in flight is rolled back, and done
	// again by either process), and a new one in its place.
	delivered := func() int64 {
		return countClaims(t, db, `SELECT count(*) FROM transitions WHERE source = 'message'`)
	}
	deadline := time.Now().Add(90 * time.Second) // generous: a loaded CI machine
	for delivered() < int64(total/5) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := delivered(); n < int64(total) {
		children[0].kill()
		children[0] = start()
		t.Logf("killed a process after %d deliveries, and started another", n)
	}

	for {
		left := countClaims(t, db, `SELECT count(*) FROM messages`)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages not delivered within 90 s; logs:\n%s\n%s", left, total, children[0].log.tail(), children[1].log.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every receiver took its pings, 1 to 50 in order (its guard refused anything else).
	if n := countClaims(t, db, fmt.Sprintf(`SELECT count(*) FROM instances WHERE definition = 'counter'
		AND (context->>'last')::int = %d`, events)); n != senders*peers {
		t.Errorf("%d of %d receivers took all %d pings", n, senders*peers, events)
	}
	// Their histories: one row per message, delivered (none dropped), from a message, its request id
	// the message's id, each pair's in the order written.
	rows := histories(t, db, "rcv-")
	sent := sentLog(t, db)
	type written struct {
		sender, target string
		ord, n         int64
	}
	byID := make(map[string]written, len(sent))
	for _, m := range sent {
		byID[m.ID] = written{m.Sender, m.Target, m.Ord, m.N}
	}
	if len(rows) != total {
		t.Errorf("the receivers' histories have %d rows, want %d (one per message)", len(rows), total)
	}
	seen := make(map[string]bool, len(rows))
	type delivery struct{ ord, n int64 }
	last := map[string]delivery{} // per receiver (one sender each), the last message delivered
	problems := 0
	for _, r := range rows {
		m, ok := byID[r.RequestID]
		var problem string
		switch {
		case r.Source != "message" || r.Dropped != nil:
			problem = fmt.Sprintf("source %s, dropped %q", r.Source, deref(r.Dropped))
		case !ok:
			problem = "no message has this id"
		case seen[r.RequestID]:
			problem = "delivered twice"
		case m.target != r.Target:
			problem = fmt.Sprintf("the message was to %s", m.target)
		case m.ord <= last[r.Target].ord || m.n != r.N || m.n != last[r.Target].n+1:
			problem = fmt.Sprintf("ping %d (written #%d, delivered as %d) after ping %d (written #%d)", m.n, m.ord, r.N,
				last[r.Target].n, last[r.Target].ord)
		}
		if problem != "" {
			if problems++; problems <= 10 {
				t.Errorf("%s seq %d, request id %s: %s", r.Target, r.Seq, r.RequestID, problem)
			}
		}
		seen[r.RequestID] = true
		if ok {
			last[r.Target] = delivery{m.ord, m.n}
		}
	}
	if problems > 10 {
		t.Errorf("... %d problems in all", problems)
	}
	for id := range byID {
		if !seen[id] {
			if problems++; problems <= 20 {
				t.Errorf("message %s (%+v) never delivered", id, byID[id])
			}
		}
	}
	if !t.Failed() {
		t.Logf("%d messages written, %d deliveries: each message once, every pair in order", len(byID), len(rows))
	}
}

// deref is the string p points to, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// twoProcesses starts two fsmd serve processes on dbURL, a new database, serving defs (name ->
// YAML), and opens the database for the test, with a log of every message written (sentLog). It
// returns how to start another process, the two, and the database.
func twoProcesses(t *testing.T, dbURL string, defs map[string]string) (func() *fsmdChild, []*fsmdChild, *persistence.DB) {
	t.Helper()
	dir := t.TempDir()
	for name, src := range defs {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := func() *fsmdChild { return startFsmd(t, dbURL, dir, "--timer-poll", "50ms", "--log-level", "warn") }
	procs := []*fsmdChild{start(), start()} // the first has migrated the database by the time it serves
	db, err := persistence.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.Citus {
		citusSentLog(t, db)
	} else if _, err := db.X.Exec(onceSentLog); err != nil {
		t.Fatal(err)
	}
	return start, procs, db
}

// citusSentLog is onceSentLog on Citus: the messages' rows are written on the workers (in the
// shards of their senders), where the trigger fires, so each worker keeps its log in a plain table
// of its own (its ord orders each pair's messages, all on its sender's worker).
func citusSentLog(t *testing.T, db *persistence.DB) {
	t.Helper()
	ctx := context.Background()
	c, err := db.X.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var schema string
	if err := c.GetContext(ctx, &schema, `SELECT current_schema()`); err != nil {
		t.Fatal(err)
	}
	table := schema + ".test_sent_log"
	for _, stmt := range []string{
		`SELECT run_command_on_workers($$CREATE TABLE ` + table + ` (ord bigserial, id text COLLATE "C" PRIMARY KEY,
			sender text NOT NULL, target text NOT NULL, n bigint NOT NULL)$$)`,
		`CREATE FUNCTION test_log_sent() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO ` + table + ` (id, sender, target, n) VALUES (NEW.id, NEW.sender, NEW.target, (NEW.payload->>'n')::bigint);
			RETURN NULL;
		END $$`,
		`SET citus.enable_unsafe_triggers TO on`, // a trigger on a distributed table: each shard's
		`CREATE TRIGGER test_log_sent AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION test_log_sent()`,
	} {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// historyRow is a row of a receiver's history: a ping delivered (or not), its count n.
type historyRow struct {
	Target    string  `db:"instance_id"`
	Seq       int64   `db:"seq"`
	RequestID string  `db:"request_id"`
	Source    string  `db:"source"`
	Dropped   *string `db:"dropped"`
	N         int64   `db:"n"`
}

// histories reads the histories of the instances whose ids begin with prefix, by instance and seq.
func histories(t *testing.T, db *persistence.DB, prefix string) []historyRow {
	t.Helper()
	var rows []historyRow
	if err := db.X.Select(&rows, `SELECT instance_id, seq, request_id, source, dropped, (payload->>'n')::bigint AS n
		FROM transitions WHERE instance_id LIKE $1 || '%' ORDER BY instance_id, seq`, prefix); err != nil {
		t.Fatal(err)
	}
	return rows
}

// sentMessage is a row of the log of messages written.
type sentMessage struct {
	Ord    int64  `db:"ord" json:"ord"`
	ID     string `db:"id" json:"id"`
	Sender string `db:"sender" json:"sender"`
	Target string `db:"target" json:"target"`
	N      int64  `db:"n" json:"n"`
}

// sentLog reads the log of the messages written (on Citus, each worker's).
func sentLog(t *testing.T, db *persistence.DB) []sentMessage {
	t.Helper()
	var sent []sentMessage
	if !db.Citus {
		if err := db.X.Select(&sent, `SELECT ord, id, sender, target, n FROM test_sent_log`); err != nil {
			t.Fatal(err)
		}
		return sent
	}
	var schema string
	if err := db.X.Get(&schema, `SELECT current_schema()`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.X.Query(`SELECT success, result FROM run_command_on_workers($1)`,
		`SELECT coalesce(json_agg(l), '[]') FROM `+schema+`.test_sent_log l`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ok bool
		var result string
		if err := rows.Scan(&ok, &result); err != nil || !ok {
			t.Fatalf("a worker's log of messages: %v %s", err, result)
		}
		var part []sentMessage
		if err := json.Unmarshal([]byte(result), &part); err != nil {
			t.Fatalf("a worker's log of messages: %v", err)
		}
		sent = append(sent, part...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sent
}
