package outbox_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

const orderDef = `name: order
initial: created
context:
  amount: float
  paid_at: time
events:
  pay: {amount: float}
states:
  created:
    on:
      pay:
        to: paid
        set: {paid_at: now}
      cancel: cancelled
  paid: {on: {ship: shipped}}
  shipped: {final: true}
  cancelled: {final: true}
notify:
  - {name: billing, url: 'https://Billing.Example/hooks?x=1', events: [pay]}
  - {name: crm, url: 'http://crm.example:8080/in', states: [shipped, cancelled]}
  - {name: all, url: 'https://all.example:8443/'}
`

func parse(t testing.TB, src string) *machine.Definition {
	t.Helper()
	def, diags := machine.Parse("def.yaml", []byte(src))
	if diags.Errors() > 0 {
		t.Fatalf("definition: %v", diags)
	}
	return def
}

// fire starts an instance of def and fires events at it in turn, returning the last transition.
func fire(t testing.TB, def *machine.Definition, ctx map[string]any, at time.Time, events ...string) *machine.Transition {
	t.Helper()
	snap, _, err := machine.Start(def, "i-1", 1, ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	var tr *machine.Transition
	for _, ev := range events {
		var payload map[string]any
		if def.Events[ev] != nil {
			payload = map[string]any{"amount": 10.0}
		}
		if tr, err = machine.Fire(def, snap, ev, payload, at); err != nil {
			t.Fatal(err)
		}
		snap.State, snap.Context = tr.To, tr.ContextAfter
	}
	return tr
}

func TestRows(t *testing.T) {
	t.Parallel()
	def := parse(t, orderDef)
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.FixedZone("X", 3600))
	tr := fire(t, def, map[string]any{"amount": 10.0}, at, "pay")
	rows, err := outbox.Rows(outbox.RowsParams{Definition: def, Version: 3, InstanceID: "order-1", Seq: 7, Source: "api", Transition: tr, Now: at})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Webhook != "billing" || rows[1].Webhook != "all" {
		t.Fatalf("rows = %+v", rows)
	}
	r := rows[0]
	if r.InstanceID != "order-1" || r.Seq != 7 || r.Definition != "order" || r.Version != 3 ||
		r.URL != "https://Billing.Example/hooks?x=1" || r.Destination != "https://billing.example:443" ||
		r.Status != persistence.OutboxPending || !r.NextTryAt.Equal(at) || !r.CreatedAt.Equal(at) || r.NextTryAt.Location() != time.UTC {
		t.Errorf("row = %+v", r)
	}
	if len(r.ID) != 26 || r.ID == rows[1].ID {
		t.Errorf("ids %q, %q", r.ID, rows[1].ID)
	}
	if rows[1].Destination != "https://all.example:8443" {
		t.Errorf("destination %q", rows[1].Destination)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"delivery_id": r.ID, "webhook": "billing", "definition": "order", "version": 3.0,
		"instance": map[string]any{"id": "order-1", "state": "paid", "final": false, "revision": 7.0},
		"transition": map[string]any{"seq": 7.0, "event": "pay", "from": "created", "to": "paid",
			"payload":        map[string]any{"amount": 10.0},
			"context_before": map[string]any{"amount": 10.0, "paid_at": "0001-01-01T00:00:00Z"},
			"context_after":  map[string]any{"amount": 10.0, "paid_at": "2026-05-01T12:00:00.123456+01:00"},
			"source":         "api", "at": "2026-05-01T11:00:00.123456Z"},
	}
	got, _ := json.Marshal(body)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("body:\n got %s\nwant %s", got, wantJSON)
	}
	var typed outbox.Body
	if err := json.Unmarshal(r.Body, &typed); err != nil || typed.DeliveryID != r.ID || !typed.Transition.At.Equal(at) {
		t.Errorf("body as outbox.Body = %+v, %v", typed, err)
	}

	// A timer's transition to a final state, announced to two webhooks.
	tr = fire(t, def, nil, at, "cancel")
	rows, err = outbox.Rows(outbox.RowsParams{Definition: def, Version: 1, InstanceID: "order-2", Seq: 1, Source: "timer", Transition: tr, Now: at})
	if err != nil || len(rows) != 2 || rows[0].Webhook != "crm" || rows[1].Webhook != "all" ||
		rows[0].Destination != "http://crm.example:8080" {
		t.Fatalf("cancel rows = %+v, %v", rows, err)
	}
	if !strings.Contains(string(rows[0].Body), `"final":true`) || !strings.Contains(string(rows[0].Body), `"source":"timer"`) {
		t.Errorf("body %s", rows[0].Body)
	}
}

func TestRowsNone(t *testing.T) {
	t.Parallel()
	def := parse(t, strings.Split(orderDef, "notify:")[0])
	tr := fire(t, def, nil, time.Now(), "cancel")
	rows, err := outbox.Rows(outbox.RowsParams{Definition: def, Version: 1, InstanceID: "i", Seq: 1, Transition: tr, Now: time.Now()})
	if rows != nil || err != nil {
		t.Errorf("Rows = %v, %v; want none", rows, err)
	}
	if _, err := outbox.Rows(outbox.RowsParams{Definition: def}); err == nil {
		t.Error("Rows without a transition: no error")
	}
}

func TestDestination(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://x.example":            "http://x.example:80",
		"https://X.Example./a":        "https://x.example.:443",
		"https://x.example:8443/a?b":  "https://x.example:8443",
		"http://[::1]:9/":             "http://[::1]:9",
		"http://127.0.0.1/":           "http://127.0.0.1:80",
		"HTTP://user@x.example/":      "",
		"ftp://x.example/":            "",
		"http://x.example:70000/":     "",
		"http://x.example:443/\x7fok": "",
	} {
		got, err := outbox.Destination(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("Destination(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	secret, body := []byte("s3cret"), []byte(`{"a":1}`)
	now := time.Unix(1_760_000_000, 0)
	sig := outbox.Sign(secret, now.Unix(), body)
	// The recipe of docs/api.md: HMAC-SHA256 of "<timestamp>.<body>", hex, after "sha256=".
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("1760000000." + string(body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Errorf("Sign = %q, want %q", sig, want)
	}
	ts := "1760000000"
	if err := outbox.Verify(secret, sig, ts, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := outbox.Verify(secret, "sha256=00, "+sig, ts, body, now, 0); err != nil {
		t.Errorf("Verify with two signatures: %v", err)
	}
	for name, err := range map[string]error{
		"another secret":  outbox.Verify([]byte("other"), sig, ts, body, now, time.Minute),
		"another body":    outbox.Verify(secret, sig, ts, []byte(`{"a":2}`), now, time.Minute),
		"another time":    outbox.Verify(secret, sig, "1760000001", body, now, time.Minute),
		"too old":         outbox.Verify(secret, sig, ts, body, now.Add(time.Hour), 5*time.Minute),
		"not a timestamp": outbox.Verify(secret, sig, "yesterday", body, now, 0),
		"no signature":    outbox.Verify(secret, "", ts, body, now, 0),
	} {
		if err == nil {
			t.Errorf("Verify with %s: no error", name)
		}
	}
}
