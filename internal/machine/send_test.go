package machine_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// sender sends messages on `go`: to one id, to a list of ids, and to an id of an `any` field.
const sender = `name: sender
initial: a
context:
  peer: {type: string, default: p-1}
  peers: {type: "[string]"}
  loose: {type: any}
  n: {type: int, default: 1}
states:
  a:
    on:
      go:
        to: b
        set: {n: ctx.n + 10}
        send:
          - to: ctx.peer
            event: ping
            payload: {n: 'ctx.n + 1', who: instance.id, why: event.reason}
          - to: ctx.peers
            event: pong
      poke:
        to: a
        send:
          - {to: ctx.loose, event: ping}
      quiet: b
  b: {final: true}
events:
  go:
    reason: {type: string}
`

// TestSendChecks: each load-time check of `send`, on a definition that fails only it, gives exactly
// its line, at the offending key or value.
func TestSendChecks(t *testing.T) {
	t.Parallel()
	head := "name: t\ninitial: a\ncontext:\n  n: {type: int}\n  s: {type: string}\nstates:\n  a:\n    on:\n      go:\n        to: b\n        send:\n"
	tail := "  b: {final: true}\n"
	tests := []struct {
		name, send string
		want       []string
	}{
		{"to of the wrong type", "          - {to: ctx.n, event: e}\n",
			[]string{`t.yaml:12:18: error: send to: expression is of type int, want a string id or a list of string ids`}},
		{"to a list of ints", "          - {to: '[1, 2]', event: e}\n",
			[]string{`t.yaml:12:19: error: send to: expression is of type list, want a string id or a list of string ids`}},
		{"to an unknown field", "          - {to: ctx.nope, event: e}\n",
			[]string{`t.yaml:12:22: error: send to: unknown field nope`}},
		{"no to", "          - {event: e}\n",
			[]string{`t.yaml:12:13: error: a message needs ` + "`to`" + `: an expression giving the id of an instance, or a list of ids`}},
		{"no event", "          - {to: ctx.s}\n",
			[]string{`t.yaml:12:13: error: a message needs ` + "`event`"}},
		{"a bad event name", "          - {to: ctx.s, event: 'no way'}\n",
			[]string{`t.yaml:12:32: error: event name "no way" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},
		{"an unknown key", "          - {to: ctx.s, event: e, then: x}\n",
			[]string{`t.yaml:12:35: error: unknown key "then" in a message (expected event, payload or to)`}},
		{"a payload expression that does not compile", "          - {to: ctx.s, event: e, payload: {x: 'ctx.n +'}}\n",
			[]string{`t.yaml:12:55: error: send payload x: unexpected token EOF`}},
		{"a payload field of an unknown name", "          - {to: ctx.s, event: e, payload: {x: ctx.nope}}\n",
			[]string{`t.yaml:12:52: error: send payload x: unknown field nope`}},
		{"send is not a list", "          {to: ctx.s, event: e}\n",
			[]string{`t.yaml:12:11: error: send must be a list, not a mapping`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got := diagText("t.yaml", head+tt.send+tail)
			diffLines(t, got, tt.want)
		})
	}
	def, got := diagText("sender.yaml", sender)
	diffLines(t, got, nil)
	if def == nil || len(def.States["a"].On["go"].Branches[0].Send) != 2 {
		t.Fatalf("the sender's sends were not kept: %+v", def)
	}
}

// TestFireSend: a transition's messages, one per target in order, computed in the transition's scope
// (the context before its set, the event's payload, the instance).
func TestFireSend(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("sender.yaml", []byte(sender))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	snap, _, err := machine.Start(def, "s-1", 1, map[string]any{"peers": []any{"q-1", "q-2"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := machine.Fire(def, snap, "go", map[string]any{"reason": "because"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []machine.Message{
		{To: "p-1", Event: "ping", Payload: map[string]any{"n": 2, "who": "s-1", "why": "because"}},
		{To: "q-1", Event: "pong", Payload: map[string]any{}},
		{To: "q-2", Event: "pong", Payload: map[string]any{}},
	}
	if !reflect.DeepEqual(tr.Sent, want) {
		t.Errorf("Sent =\n %#v\nwant\n %#v", tr.Sent, want)
	}
	if tr, _ := machine.Fire(def, snap, "quiet", nil, now); tr == nil || tr.Sent != nil {
		t.Errorf("a branch without send sent %+v", tr)
	}

	// An `any` field is checked when it is evaluated: a string or a list of strings is an id.
	for _, tt := range []struct {
		loose any
		want  []string
		fails bool
	}{
		{"x-1", []string{"x-1"}, false},
		{[]any{"x-1", "x-2"}, []string{"x-1", "x-2"}, false},
		{[]any{}, nil, false},
		{7, nil, true},
		{[]any{"x-1", 7}, nil, true},
		{"", nil, true},
	} {
		s := snap
		s.Context = map[string]any{"peer": "p", "peers": []any{}, "loose": tt.loose, "n": 1}
		tr, err := machine.Fire(def, s, "poke", nil, now)
		if tt.fails {
			if code.Of(err) != code.ExpressionFailed {
				t.Errorf("to %#v: err = %v, want expression_failed", tt.loose, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("to %#v: %v", tt.loose, err)
			continue
		}
		var got []string
		for _, m := range tr.Sent {
			got = append(got, m.To)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("to %#v: sent to %v, want %v", tt.loose, got, tt.want)
		}
	}
}
