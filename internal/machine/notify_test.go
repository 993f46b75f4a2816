package machine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

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
			`t.yaml:15:42: error: unknown key "secret" in a webhook (expected events, name, states or url)`}},
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
