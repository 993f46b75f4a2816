package tests

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// adminTicket pings itself every hour while open.
const adminTicket = `name: ticket
initial: open
context:
  pings: int
  note: string
states:
  open:
    timers:
      - {after: 1h, event: ping}
    on:
      ping:
        to: open
        set: {pings: ctx.pings + 1}
      poke:
        set: {note: '"poked"'}
      close: closed
  review:
    assign: '"group:ops"'
    on:
      close: closed
  closed: {final: true}
`

// adminPoker sends poke to the instance its context names.
const adminPoker = `name: poker
initial: idle
context:
  target: string
states:
  idle:
    on:
      go:
        to: done
        send:
          - {to: ctx.target, event: poke}
  done: {final: true}
`

// TestOperatorsOverTheAPI: an admin suspends, resumes, repairs and terminates instances through
// the API, on both databases. Suspended: events are 409 instance_suspended, a timer due meanwhile
// does not fire, ?suspended=true finds it; resumed: the timer fires once, however many periods
// passed. A repair enters the state named (its task computed) with the context merged; an unknown
// state or a context the schema refuses is 422 and writes nothing. Terminating a trip terminates
// its running legs; a terminated instance refuses events. Every action is a history row with the
// admin as actor and the reason; without a reason, or with a write key, nothing is done.
func TestOperatorsOverTheAPI(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		files := map[string][]byte{"ticket.yaml": []byte(adminTicket), "poker.yaml": []byte(adminPoker)}
		for _, name := range []string{"trip.yaml", "booking.yaml"} {
			files[name] = apiReadFile(t, filepath.Join("..", "definitions", name))
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		set, diags, err := machine.Load(dir)
		if err != nil || diags.Errors() > 0 {
			t.Fatalf("%v %v", err, diags)
		}
		clock := &tasksClock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
		svc := service.New(db, service.Options{Now: clock.Now})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set); err != nil {
			t.Fatal(err)
		}
		keys, parsed := testKeys(t, testKey{auth.Admin, "root", nil}, testKey{auth.Write, "wendy", nil})
		srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed}))
		t.Cleanup(srv.Close)
		call := func(who, method, path, body string) (int, map[string]any) {
			t.Helper()
			return callerOf(t, srv.URL, keys[who])(method, path, body)
		}
		must := func(who, method, path, body string, status int) map[string]any {
			t.Helper()
			return callerOf(t, srv.URL, keys[who]).must(t, method, path, body, status)
		}
		lastRow := func(id string) service.HistoryEntry {
			t.Helper()
			h, err := svc.History(ctx, id, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			return h.Items[len(h.Items)-1]
		}
		fire := func() {
			t.Helper()
			if _, err := svc.FireDue(ctx, service.TimerOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		must("root", "POST", "/v1/instances", `{"definition": "ticket", "id": "t-1"}`, 201)

		// Suspend: a reason is required, and the admin role.
		if code, out := call("root", "POST", "/v1/instances/t-1/suspend", `{}`); code != 400 || out["code"] != "invalid_request" {
			t.Errorf("suspend without a reason: %d %v", code, out)
		}
		if code, out := call("wendy", "POST", "/v1/instances/t-1/suspend", `{"reason": "mine"}`); code != 403 || out["code"] != "forbidden" {
			t.Errorf("suspend with a write key: %d %v", code, out)
		}
		inst := must("root", "POST", "/v1/instances/t-1/suspend", `{"reason": "the webhook is down"}`, 200)
		if inst["suspended"] != true || inst["revision"] != 1.0 {
			t.Fatalf("suspended: %v", inst)
		}
		if r := lastRow("t-1"); r.Source != "admin" || r.Event != "suspend" || r.Actor != "root" || !strings.Contains(asJSON(r.Payload), "the webhook is down") {
			t.Errorf("the suspension's history row: %+v", r)
		}
		if again := must("root", "POST", "/v1/instances/t-1/suspend", `{"reason": "again"}`, 200); again["revision"] != 1.0 {
			t.Errorf("suspending a suspended instance wrote: %v", again)
		}
		if code, out := call("root", "POST", "/v1/instances/t-1/events", `{"event": "poke"}`); code != 409 || out["code"] != "instance_suspended" {
			t.Errorf("an event to a suspended instance: %d %v", code, out)
		}
		clock.Add(5 * time.Hour) // five periods of the timer pass
		fire()
		fire()
		if got := must("root", "GET", "/v1/instances/t-1", "", 200); got["context"].(map[string]any)["pings"] != 0.0 || got["revision"] != 1.0 {
			t.Errorf("a suspended instance's timer fired: %v", got)
		}
		out := must("root", "GET", "/v1/instances?suspended=true", "", 200)
		if items := out["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != "t-1" {
			t.Errorf("?suspended=true: %v", out)
		}

		// Resume: the timer due meanwhile fires once, and is armed again from then.
		must("root", "POST", "/v1/instances/t-1/resume", `{}`, 200)
		fire()
		fire()
		got := must("root", "GET", "/v1/instances/t-1", "", 200)
		if got["context"].(map[string]any)["pings"] != 1.0 || got["suspended"] != nil {
			t.Errorf("after resuming: %v, want one ping", got)
		}
		if r := lastRow("t-1"); r.Source != "timer" || r.Event != "ping" {
			t.Errorf("after resuming, the last row: %+v", r)
		}

		// A message to a suspended instance waits, pending, and is delivered once it is resumed.
		must("root", "POST", "/v1/instances", `{"definition": "ticket", "id": "t-2"}`, 201)
		must("root", "POST", "/v1/instances/t-2/suspend", `{"reason": "hold its mail"}`, 200)
		must("root", "POST", "/v1/instances", `{"definition": "poker", "id": "p-1", "context": {"target": "t-2"}}`, 201)
		must("root", "POST", "/v1/instances/p-1/events", `{"event": "go"}`, 200)
		deliver := func() {
			t.Helper()
			if _, err := svc.DeliverDue(ctx, service.MessageOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		deliver()
		if got := must("root", "GET", "/v1/instances/t-2", "", 200); got["context"].(map[string]any)["note"] != "" || got["revision"] != 1.0 {
			t.Errorf("a message was delivered to a suspended instance: %v", got)
		}
		must("root", "POST", "/v1/instances/t-2/resume", `{"reason": "mail again"}`, 200)
		deliver()
		if got := must("root", "GET", "/v1/instances/t-2", "", 200); got["context"].(map[string]any)["note"] != "poked" {
			t.Errorf("the message that waited was not delivered after the resume: %v", got)
		}

		// Repair: to a state no handler leads to, with the context merged; bad ones write nothing.
		before := got["revision"]
		for _, tt := range []struct{ body, code string }{
			{`{"state": "nowhere", "reason": "x"}`, "unknown_state"},
			{`{"state": "review", "context": {"pings": "many"}, "reason": "x"}`, "invalid_context"},
			{`{"state": "review", "context": {"nofield": 1}, "reason": "x"}`, "invalid_context"},
		} {
			if code, out := call("root", "POST", "/v1/instances/t-1/repair", tt.body); code != 422 || out["code"] != tt.code {
				t.Errorf("repair %s: %d %v, want 422 %s", tt.body, code, out, tt.code)
			}
		}
		if code, _ := call("root", "POST", "/v1/instances/t-1/repair", `{"state": "review"}`); code != 400 {
			t.Errorf("a repair without a reason: %d, want 400", code)
		}
		if now := must("root", "GET", "/v1/instances/t-1", "", 200)["revision"]; now != before {
			t.Errorf("refused repairs moved the revision from %v to %v", before, now)
		}
		res := must("root", "POST", "/v1/instances/t-1/repair", `{"state": "review", "context": {"note": "fixed by hand"}, "reason": "stuck in open"}`, 200)
		rep := res["instance"].(map[string]any)
		if rep["state"] != "review" || rep["context"].(map[string]any)["note"] != "fixed by hand" || rep["context"].(map[string]any)["pings"] != 1.0 ||
			asJSON(rep["assignees"]) != `["group:ops"]` {
			t.Errorf("repaired: %v", rep)
		}
		if r := lastRow("t-1"); r.Source != "repair" || r.Event != "repair" || r.From != "open" || r.To != "review" || r.Actor != "root" ||
			!strings.Contains(asJSON(r.Payload), "stuck in open") {
			t.Errorf("the repair's history row: %+v", r)
		}

		// Terminate: final where it is; events refused; a trip's running legs terminated with it.
		term := must("root", "POST", "/v1/instances/t-1/terminate", `{"reason": "duplicate"}`, 200)
		if term["final"] != true || term["terminated"] != true || term["state"] != "review" || term["assignees"] != nil {
			t.Errorf("terminated: %v", term)
		}
		if code, out := call("root", "POST", "/v1/instances/t-1/events", `{"event": "close"}`); code != 409 || out["code"] != "instance_final" {
			t.Errorf("an event to a terminated instance: %d %v", code, out)
		}
		must("root", "POST", "/v1/instances", `{"definition": "trip", "id": "trip-1", "context": {"legs": [{"kind": "flight", "price": 100}, {"kind": "hotel", "price": 200}]}}`, 201)
		must("root", "POST", "/v1/instances/trip-1/events", `{"event": "book"}`, 200)
		must("root", "POST", "/v1/instances/trip-1/terminate", `{"reason": "the customer left"}`, 200)
		kids := must("root", "GET", "/v1/instances/trip-1/children", "", 200)["items"].([]any)
		if len(kids) != 2 {
			t.Fatalf("trip-1's children: %v", kids)
		}
		for _, k := range kids {
			k := k.(map[string]any)
			if k["terminated"] != true || k["final"] != true {
				t.Errorf("a leg of a terminated trip: %v", k)
			}
			if r := lastRow(k["id"].(string)); r.Source != "admin" || r.Event != "terminate" || !strings.Contains(asJSON(r.Payload), "trip-1") {
				t.Errorf("a terminated leg's history row: %+v", r)
			}
		}
		if code, out := call("root", "POST", "/v1/instances/trip-1/suspend", `{"reason": "late"}`); code != 409 || out["code"] != "instance_final" {
			t.Errorf("suspending a terminated instance: %d %v", code, out)
		}
	})
}
