package machine_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// notifyDef is a small definition with room for a notify section at its end.
const notifyDef = `name: t
initial: a
events:
  pay: {amount: float}
states:
  a:
    on:
      pay: b
      cancel: c
  b:
    on:
      refund: c
  c: {final: true}
`

// TestNotifyChecks: each check of the notify section, on a definition that fails only it, gives
// exactly its line.
func TestNotifyChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		notify string // appended to notifyDef; its first line is line 14
		want   []string
	}{
		{"a valid section", `notify:
  - name: billing
    url: https://billing.example/hooks/fsmd
    events: [pay, refund]
    states: [b, c]
  - {name: audit, url: "http://10.0.0.7:8080/in"}
`, nil},
		{"an empty section", "notify: []\n", nil},
		{"not a list", "notify: {billing: x}\n", []string{
			`t.yaml:14:9: error: notify must be a list, not a mapping`}},
		{"an entry that is not a mapping", "notify:\n  - https://x.example/\n", []string{
			`t.yaml:15:5: error: a webhook of notify must be a mapping, not "https://x.example/"`}},
		{"an unknown key", "notify:\n  - {name: a, url: 'https://x.example/', secret: s}\n", []string{
			`t.yaml:15:42: error: unknown key "secret" in a webhook (expected events, name, on_dead, states or url)`}},
		{"no name", "notify:\n  - {url: 'https://x.example/'}\n", []string{
			"t.yaml:15:5: error: a webhook needs a `name`"}},
		{"an empty name", "notify:\n  - {name: '', url: 'https://x.example/'}\n", []string{
			`t.yaml:15:12: error: webhook name "" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},
		{"a name that is not an identifier", "notify:\n  - {name: billing-v2, url: 'https://x.example/'}\n", []string{
			`t.yaml:15:12: error: webhook name "billing-v2" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},
		{"a name twice", "notify:\n  - {name: a, url: 'https://x.example/'}\n  - {name: a, url: 'https://y.example/'}\n", []string{
			`t.yaml:16:12: error: webhook "a" is already declared at line 15; names must be unique`}},
		{"no url", "notify:\n  - {name: a}\n", []string{
			"t.yaml:15:5: error: webhook \"a\" needs a `url` (http or https)"}},
		{"a url of another scheme", "notify:\n  - {name: a, url: 'ftp://x.example/in'}\n", []string{
			`t.yaml:15:20: error: webhook "a": url: "ftp://x.example/in" is not an http or https URL`}},
		{"a url without a scheme", "notify:\n  - {name: a, url: 'x.example/in'}\n", []string{
			`t.yaml:15:20: error: webhook "a": url: "x.example/in" is not an http or https URL`}},
		{"a file url", "notify:\n  - {name: a, url: 'file:///etc/passwd'}\n", []string{
			`t.yaml:15:20: error: webhook "a": url: "file:///etc/passwd" is not an http or https URL`}},
		{"a url without a host", "notify:\n  - {name: a, url: 'https:///in'}\n", []string{
			`t.yaml:15:20: error: webhook "a": url: "https:///in" has no host`}},
		{"an opaque url", "notify:\n  - {name: a, url: 'http:x.example'}\n", []string{
			`t.yaml:15:20: error: webhook "a": url: "http:x.example" has no host`}},
		{"a url with a password", "notify:\n  - {name: a, url: 'https://u:p@x.example/'}\n", []string{
			`t.yaml:15:20: error: webhook "a": url: "https://u:p@x.example/" holds a user name or password: receivers authenticate fsmd by the signature, and the definition's source is shown by the API`}},
		{"a malformed url", "notify:\n  - {name: a, url: 'http://x.example:99999999999/'}\n", []string{
			`t.yaml:15:20: error: webhook "a": url: "http://x.example:99999999999/" has an invalid port "99999999999"`}},
		{"a url as a list", "notify:\n  - {name: a, url: [x]}\n", []string{
			`t.yaml:15:20: error: url must be a single value, not a list`}},
		{"a link-local url is a warning", "notify:\n  - {name: a, url: 'http://169.254.169.254/latest/meta-data'}\n", []string{
			`t.yaml:15:20: warning: webhook "a": url: 169.254.169.254 is a cloud metadata address: fsmd refuses to deliver there unless the process allows it`}},
		{"an IPv6 link-local url is a warning", "notify:\n  - {name: a, url: 'http://[fe80::1]:8080/'}\n", []string{
			`t.yaml:15:20: warning: webhook "a": url: fe80::1 is a link-local address: fsmd refuses to deliver there unless the process allows it`}},
		{"a metadata host is a warning", "notify:\n  - {name: a, url: 'http://Metadata.Google.Internal/'}\n", []string{
			`t.yaml:15:20: warning: webhook "a": url: Metadata.Google.Internal is a cloud metadata service: fsmd refuses to deliver there unless the process allows it`}},
		{"an unknown event", "notify:\n  - {name: a, url: 'https://x.example/', events: [pay, ship]}\n", []string{
			`t.yaml:15:56: error: webhook "a": events: "ship" is not an event of the definition`}},
		{"an unknown state", "notify:\n  - {name: a, url: 'https://x.example/', states: [d]}\n", []string{
			`t.yaml:15:51: error: webhook "a": states: "d" is not a declared state`}},
		{"an empty filter", "notify:\n  - {name: a, url: 'https://x.example/', events: []}\n", []string{
			`t.yaml:15:50: error: webhook "a": events is empty; leave it out to be told of every event`}},
		{"a null filter", "notify:\n  - name: a\n    url: https://x.example/\n    states:\n", []string{
			`t.yaml:17:12: error: webhook "a": states is empty; leave it out to be told of every state`}},
		{"a filter that is not a list", "notify:\n  - {name: a, url: 'https://x.example/', states: b}\n", []string{
			`t.yaml:15:50: error: webhook "a" states must be a list, not "b"`}},
		{"a filter entry twice", "notify:\n  - {name: a, url: 'https://x.example/', states: [b, b]}\n", []string{
			`t.yaml:15:54: error: webhook "a": states lists "b" twice`}},
		{"a filter entry that is not a name", "notify:\n  - {name: a, url: 'https://x.example/', states: [[b]]}\n", []string{
			`t.yaml:15:51: error: webhook "a" states entry must be a single value, not a list`}},
		{"too many webhooks", "notify:\n" + strings.Repeat("  - {name: a, url: 'https://x.example/'}\n", machine.MaxWebhooks+1), []string{
			"t.yaml:15:3: error: notify has 101 webhooks; the limit is 100"}},
		{"an on_dead event a state handles", "notify:\n  - {name: a, url: 'https://x.example/', on_dead: cancel}\n", nil},
		{"an on_dead event no state handles", "notify:\n  - {name: a, url: 'https://x.example/', on_dead: undelivered}\n", []string{
			"t.yaml:15:51: error: webhook \"a\": on_dead: no state handles event \"undelivered\"; handle it in the `on` of the states an instance may be in when a delivery is dead"}},
		{"an on_dead event declared with another payload", "notify:\n  - {name: a, url: 'https://x.example/', on_dead: pay}\n", []string{
			`t.yaml:15:51: error: webhook "a": on_dead: event "pay" is declared in events (line 4) with the payload {amount: float}; an on_dead event's payload is {webhook: string, attempts: int, last_error: string} (leave it out of events, or declare exactly that)`}},
		{"an on_dead event that is not a name", "notify:\n  - {name: a, url: 'https://x.example/', on_dead: 'no-name'}\n", []string{
			`t.yaml:15:51: error: on_dead event name "no-name" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},
		{"an on_dead that is a list", "notify:\n  - {name: a, url: 'https://x.example/', on_dead: [cancel]}\n", []string{
			`t.yaml:15:51: error: webhook "a" on_dead must be a single value, not a list`}},
		{"a webhook no transition notifies", "notify:\n  - {name: a, url: 'https://x.example/', events: [refund], states: [b]}\n", []string{
			"t.yaml:15:5: warning: webhook \"a\" is never notified: no transition of the definition is of an event in its `events` to a state in its `states`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got := diagText("t.yaml", notifyDef+tt.notify)
			diffLines(t, got, tt.want)
		})
	}
}

// TestNotified: the webhooks a transition notifies, in the order of the section, by their filters.
func TestNotified(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("t.yaml", []byte(notifyDef+`notify:
  - {name: everything, url: 'https://all.example/'}
  - {name: payments, url: 'https://pay.example/', events: [pay, refund]}
  - {name: closed, url: 'https://closed.example/', states: [c]}
  - {name: refunds, url: 'https://refund.example/', events: [refund], states: [c]}
`))
	if diags.Errors() > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	tests := []struct {
		event, from, to string
		want            []string
	}{
		{"pay", "a", "b", []string{"everything", "payments"}},
		{"cancel", "a", "c", []string{"everything", "closed"}},
		{"refund", "b", "c", []string{"everything", "payments", "closed", "refunds"}},
	}
	for _, tt := range tests {
		got := names(def.Notified(&machine.Transition{Event: tt.event, From: tt.from, To: tt.to}))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s %s -> %s notifies %v, want %v", tt.event, tt.from, tt.to, got, tt.want)
		}
	}
	if got := def.Notified(nil); got != nil {
		t.Errorf("Notified(nil) = %v", got)
	}
	w := def.Notify[3]
	if w.Name != "refunds" || w.URL != "https://refund.example/" || !slices.Equal(w.Events, []string{"refund"}) ||
		!slices.Equal(w.States, []string{"c"}) || w.Pos.Line != 18 || w.Pos.Col != 5 {
		t.Errorf("webhook = %+v", w)
	}

	// Through the engine: a fired transition notifies what its event and target select.
	snap, _, err := machine.Start(def, "i", 1, nil, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := machine.Fire(def, snap, "pay", map[string]any{"amount": 1.0}, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(def.Notified(tr)); !slices.Equal(got, []string{"everything", "payments"}) {
		t.Errorf("fired pay notifies %v", got)
	}
}

// TestNotifyNone: a definition without a notify section notifies nobody.
func TestNotifyNone(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("t.yaml", []byte(notifyDef))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	if got := def.Notified(&machine.Transition{Event: "pay", From: "a", To: "b"}); got != nil {
		t.Errorf("Notified = %v", got)
	}
}

func TestCheckWebhookURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"http://x.example", "https://x.example:8443/a?b=c", "HTTPS://X.EXAMPLE/", "http://127.0.0.1:9/", "http://[::1]/"} {
		if err := machine.CheckWebhookURL(ok); err != nil {
			t.Errorf("CheckWebhookURL(%q) = %v", ok, err)
		}
	}
	long := "https://x.example/" + strings.Repeat("a", machine.MaxWebhookURL)
	for _, bad := range []string{"", "x", "//x.example/", "mailto:a@x.example", "javascript:alert(1)", "gopher://x.example/", long, "http://x.example/\x00"} {
		if err := machine.CheckWebhookURL(bad); err == nil {
			t.Errorf("CheckWebhookURL(%q) = nil, want an error", bad)
		}
	}
}

func names(ws []*machine.Webhook) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return out
}

// onDeadDef handles its webhook's on_dead event with branches whose guards and `set` read the
// payload fsmd sends: {webhook, attempts, last_error}.
const onDeadDef = `name: t
initial: a
context:
  why: string
%sstates:
  a:
    on:
      go: b
  b:
    on:
      undelivered:
        - to: compensating
          guard: event.webhook == "billing" && event.attempts >= 1
          set: {why: 'event.last_error'}
        - to: b
  compensating: {final: true}
notify:
  - {name: billing, url: 'https://billing.example/', events: [go], on_dead: undelivered}
`

// TestOnDead: an on_dead event not declared in events is declared with the payload of a dead
// letter, which its guards and `set` read; declared in events, it must have exactly that payload.
func TestOnDead(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("t.yaml", []byte(fmt.Sprintf(onDeadDef, "")))
	if diags.Errors() > 0 || len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if w := def.Notify[0]; w.OnDead != "undelivered" {
		t.Errorf("OnDead = %q", w.OnDead)
	}
	spec := def.Events["undelivered"]
	if spec == nil || spec.Payload.String() != "{webhook: string, attempts: int, last_error: string}" {
		t.Fatalf("the on_dead event's spec = %+v", spec)
	}
	if !def.KnownEvent("undelivered") {
		t.Error("the on_dead event is not known")
	}
	snap := machine.Snapshot{ID: "i", Version: 1, State: "b", Context: map[string]any{"why": ""}}
	tr, err := machine.Fire(def, snap, "undelivered",
		map[string]any{"webhook": "billing", "attempts": 3, "last_error": "HTTP 500: down"}, time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if tr.To != "compensating" || tr.ContextAfter["why"] != "HTTP 500: down" {
		t.Errorf("transition to %s, context %v", tr.To, tr.ContextAfter)
	}
	if _, err := machine.Fire(def, snap, "undelivered", map[string]any{"attempts": "three"}, time.Unix(2, 0)); code.Of(err) != code.InvalidPayload {
		t.Errorf("a payload of the wrong type: %v", err)
	}

	tests := []struct {
		name, events string
		want         []string
	}{
		{"declared exactly", "events:\n  undelivered: {last_error: string, webhook: {type: string, required: true}, attempts: int}\n", nil},
		{"declared with another type", "events:\n  undelivered: {webhook: string, attempts: float, last_error: string}\n", []string{
			`t.yaml:20:77: error: webhook "billing": on_dead: event "undelivered" is declared in events (line 6) with the payload {webhook: string, attempts: float, last_error: string}; an on_dead event's payload is {webhook: string, attempts: int, last_error: string} (leave it out of events, or declare exactly that)`}},
		{"declared with a field more", "events:\n  undelivered: {webhook: string, attempts: int, last_error: string, url: string}\n", []string{
			`t.yaml:20:77: error: webhook "billing": on_dead: event "undelivered" is declared in events (line 6) with the payload {webhook: string, attempts: int, last_error: string, url: string}; an on_dead event's payload is {webhook: string, attempts: int, last_error: string} (leave it out of events, or declare exactly that)`}},
		{"declared without a payload", "events:\n  undelivered: {}\n", []string{ // the guards read the declared payload
			`t.yaml:15:24: error: guard: unknown field webhook`,
			`t.yaml:16:29: error: set why: unknown field last_error`,
			`t.yaml:20:77: error: webhook "billing": on_dead: event "undelivered" is declared in events (line 6) with the payload {}; an on_dead event's payload is {webhook: string, attempts: int, last_error: string} (leave it out of events, or declare exactly that)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got := diagText("t.yaml", fmt.Sprintf(onDeadDef, tt.events))
			diffLines(t, got, tt.want)
		})
	}

	// A guard reading a field the payload does not have fails to load, at its place.
	src := strings.Replace(fmt.Sprintf(onDeadDef, ""), "event.attempts >= 1", "event.url != \"\"", 1)
	_, got := diagText("t.yaml", src)
	if len(got) != 1 || got[0] != "t.yaml:13:54: error: guard: unknown field url" {
		t.Errorf("a guard reading event.url: %v", got)
	}
}
