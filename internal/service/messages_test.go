package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// senderDef sends its peer a ping with a count on each `go`, and a `pong` the peer refuses on `bad`.
const senderDef = `name: pinger
initial: on
context:
  peer: {type: string, default: r-1}
  n: {type: int}
states:
  on:
    on:
      go:
        to: on
        set: {n: ctx.n + 1}
        send:
          - {to: ctx.peer, event: ping, payload: {n: ctx.n + 1, from: instance.id}}
      bad:
        to: on
        send:
          - {to: ctx.peer, event: pong}
`

// receiverDef keeps the last count pinged; it refuses pong.
const receiverDef = `name: receiver
initial: on
context:
  last: {type: int}
events:
  ping:
    n: {type: int, required: true}
    from: {type: string, required: true}
states:
  on:
    on:
      ping: {to: on, set: {last: event.n}}
      stop: off
  off:
    on:
      ping: off
`

// TestMessages: messages are written with the transition that sends them and delivered after it,
// once each and in order, through the target's event path (source message, request id the
// message's id); a refused one is dropped with a history row; one to a missing instance is dead,
// listed, and delivered once re-driven after the instance is created.
func TestMessages(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := service.New(db, service.Options{})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, senderDef, receiverDef)); err != nil {
			t.Fatal(err)
		}
		create(t, svc, "pinger", "p-1")
		create(t, svc, "receiver", "r-1")
		for range 3 {
			send(t, svc, "p-1", "go")
		}
		send(t, svc, "p-1", "bad")
		send(t, svc, "p-1", "go")
		deliverAll(t, svc)

		h, err := svc.History(ctx, "r-1", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range h.Items {
			if e.Source != "message" || e.RequestID == "" || e.RequestID == "r" {
				t.Errorf("history row %d: source %q, request id %q", e.Seq, e.Source, e.RequestID)
			}
			if e.Dropped != "" {
				got = append(got, e.Event+" dropped: "+e.Dropped)
			} else {
				got = append(got, fmt.Sprintf("%s %v", e.Event, e.Payload["n"]))
			}
		}
		want := "ping 1|ping 2|ping 3|pong dropped: unknown_event: unknown event \"pong\": no state of the definition handles it|ping 4"
		if strings.Join(got, "|") != want {
			t.Errorf("the receiver's history:\n got %s\nwant %s", strings.Join(got, "|"), want)
		}
		if inst, _ := svc.GetInstance(ctx, "r-1"); fmt.Sprint(inst.Context["last"]) != "4" {
			t.Errorf("receiver context = %v", inst.Context)
		}
		deliverAll(t, svc) // nothing is delivered twice
		if h, _ := svc.History(ctx, "r-1", 0, 100); len(h.Items) != 5 {
			t.Errorf("after another round, %d history rows, want 5", len(h.Items))
		}

		// To an instance that does not exist: dead, listed, re-driven once it exists.
		create(t, svc, "pinger", "p-2")
		if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: "p-2", Event: "go", RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
		db.X.MustExec(db.X.Rebind(`UPDATE messages SET target = 'r-2' WHERE sender = 'p-2'`)) // as if its peer were r-2
		deliverAll(t, svc)
		dead, err := svc.ListDeadMessages(ctx, service.DeadMessageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dead.Items) != 1 || dead.Items[0].Target != "r-2" || dead.Items[0].Sender != "p-2" || dead.Items[0].Event != "ping" ||
			dead.Items[0].Reason != `not_found: no instance has id "r-2"` || fmt.Sprint(dead.Items[0].Payload.(map[string]any)["n"]) != "1" ||
			dead.Items[0].SenderSeq != 1 || dead.Items[0].DeadAt.IsZero() {
			t.Fatalf("dead messages = %+v", dead.Items)
		}
		if _, err := svc.RedriveDeadMessage(ctx, "nope"); err == nil || !strings.Contains(err.Error(), `no dead message "nope"`) {
			t.Errorf("re-drive of no dead message: %v", err)
		}
		create(t, svc, "receiver", "r-2")
		if res, err := svc.RedriveDeadMessage(ctx, dead.Items[0].ID); err != nil || res.Redriven != 1 {
			t.Fatalf("re-drive: %+v %v", res, err)
		}
		deliverAll(t, svc)
		if inst, _ := svc.GetInstance(ctx, "r-2"); fmt.Sprint(inst.Context["last"]) != "1" {
			t.Errorf("r-2 after the re-drive: %v", inst.Context)
		}
		if dead, _ := svc.ListDeadMessages(ctx, service.DeadMessageFilter{}); len(dead.Items) != 0 {
			t.Errorf("dead messages after the re-drive: %+v", dead.Items)
		}
		var left int
		if err := db.X.Get(&left, `SELECT count(*) FROM messages`); err != nil || left != 0 {
			t.Errorf("%d messages left (%v)", left, err)
		}
	})
}

// TestMessagesExactlyOnce: several dispatchers at once (as in several processes) deliver each
// message once and a pair's in order.
func TestMessagesExactlyOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svcs := make([]*service.Service, 3)
		for i := range svcs {
			svcs[i] = service.New(db, service.Options{CacheBytes: -1})
			t.Cleanup(svcs[i].Close)
			if err := svcs[i].Register(ctx, set(t, senderDef, receiverDef)); err != nil {
				t.Fatal(err)
			}
		}
		const senders, each = 3, 20
		create(t, svcs[0], "receiver", "r-1")
		for i := range senders {
			id := fmt.Sprint("p-", i)
			create(t, svcs[0], "pinger", id)
			for range each {
				send(t, svcs[0], id, "go")
			}
		}
		done := make(chan error, len(svcs))
		for _, svc := range svcs {
			go func() {
				for {
					n, err := svc.DeliverDue(ctx, service.MessageOptions{Batch: 5})
					if err != nil || n == 0 {
						done <- err
						return
					}
				}
			}()
		}
		for range svcs {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		deliverAll(t, svcs[0])
		h, err := svcs[0].History(ctx, "r-1", 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Items) != senders*each {
			t.Fatalf("%d deliveries, want %d", len(h.Items), senders*each)
		}
		seen := map[string]bool{}
		next := map[string]int{} // per sender, the count it sends next
		for _, e := range h.Items {
			if seen[e.RequestID] {
				t.Errorf("message %s delivered twice", e.RequestID)
			}
			seen[e.RequestID] = true
			from, n := e.Payload["from"].(string), fmt.Sprint(e.Payload["n"])
			if n != fmt.Sprint(next[from]+1) {
				t.Errorf("from %s: count %s delivered after %d", from, n, next[from])
			}
			next[from]++
		}
	})
}

// deliverAll runs the dispatcher's rounds until none finds a message.
func deliverAll(t *testing.T, svc *service.Service) {
	t.Helper()
	for range 100 {
		n, err := svc.DeliverDue(context.Background(), service.MessageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("messages still due after 100 rounds")
}
