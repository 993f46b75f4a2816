package table_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/table"
)

// relay sends a message when it starts and when its timer fires.
const relay = `name: relay
initial: idle
context:
  peer: {type: string, default: p-1}
  n: {type: int, default: 0}
states:
  idle:
    on:
      start:
        to: running
        set: {n: ctx.n + 1}
        send:
          - {to: ctx.peer, event: started, payload: {n: ctx.n + 1, by: instance.id}}
          - {to: '["a", "b"]', event: hello}
      stop: done
  running:
    on:
      tick: done
    timers:
      - {after: 1h, event: tick}
  done:
    final: true
`

// relayEnd sends on leaving running by its timer.
const relayEnd = `      tick:
        to: done
        send: [{to: ctx.peer, event: finished}]
`

func runRelay(t *testing.T, def, cases string) (string, table.Summary) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"relay.yaml": def, "relay.test.yaml": "cases:\n" + cases} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	suite, err := table.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum := suite.Run(&out, table.Options{})
	return out.String(), sum
}

// TestThenSent: then.sent lists the messages of the last step, one per target, in order, with a
// subset comparison on each payload; [] says none; left out, nothing is compared.
func TestThenSent(t *testing.T) {
	t.Parallel()
	withTimer := strings.Replace(relay, "      tick: done\n", relayEnd, 1)
	tests := []struct {
		name, def, cases string
		passed           int
		out              string
	}{
		{"the messages in order, a payload subset", relay, `
  - name: start
    when: {event: start}
    then:
      state: running
      sent:
        - {to: p-1, event: started, payload: {n: 1}}
        - {to: a, event: hello}
        - {to: b, event: hello, payload: {}}
`, 1, ""},
		{"the whole payload", relay, `
  - name: start
    when: {event: start}
    then: {sent: [{to: p-1, event: started, payload: {n: 1, by: test}}, {to: a, event: hello}, {to: b, event: hello}]}
`, 1, ""},
		{"only the last step counts", relay, `
  - name: start then nothing sent
    when: [{event: start}, {advance: 30m}]
    then: {state: running, sent: []}
`, 1, ""},
		{"a timer's transition in the last step counts", withTimer, `
  - name: start, then the timer
    when: [{event: start}, {advance: 2h}]
    then: {state: done, sent: [{to: p-1, event: finished}]}
`, 1, ""},
		{"[] fails when messages were sent", relay, `
  - name: start
    when: {event: start}
    then: {sent: []}
`, 0, "sent: expected 0 messages, got 3: [started to p-1, hello to a, hello to b]"},
		{"a wrong target", relay, `
  - name: start
    when: {event: start}
    then: {sent: [{to: p-2, event: started}, {to: a, event: hello}, {to: b, event: hello}]}
`, 0, "sent[0]: expected started to p-2, got started to p-1"},
		{"a wrong payload value", relay, `
  - name: start
    when: {event: start}
    then: {sent: [{to: p-1, event: started, payload: {n: 2}}, {to: a, event: hello}, {to: b, event: hello}]}
`, 0, "sent[0].payload.n: expected 2, got 1"},
		{"a payload field not sent", relay, `
  - name: start
    when: {event: start}
    then: {sent: [{to: p-1, event: started, payload: {m: 2}}, {to: a, event: hello}, {to: b, event: hello}]}
`, 0, "sent[0].payload.m: expected 2, got none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, sum := runRelay(t, tt.def, tt.cases)
			if sum.Passed != tt.passed {
				t.Errorf("passed = %d, want %d\n%s", sum.Passed, tt.passed, out)
			}
			if tt.out != "" && !strings.Contains(out, tt.out) {
				t.Errorf("output lacks %q:\n%s", tt.out, out)
			}
		})
	}
}

// TestThenSentParse: then.sent must be a list of {to, event, payload}.
func TestThenSentParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ then, want string }{
		{"{sent: x}", `then.sent must be a list, not "x"`},
		{"{sent: [x]}", `a then.sent entry must be a mapping`},
		{"{sent: [{event: e}]}", "a then.sent entry needs `to`"},
		{"{sent: [{to: x, event: e, ctx: {}}]}", `unknown key "ctx" in a then.sent entry`},
		{"{sent: [{to: x, event: e, payload: 3}]}", "then.sent payload must be a mapping"},
	} {
		_, diags := table.Parse("t.test.yaml", []byte("cases:\n  - name: x\n    when: {event: start}\n    then: "+tt.then+"\n"))
		if diags.Errors() != 1 || !strings.Contains(diags[0].Message, tt.want) {
			t.Errorf("then %s: diagnostics %v, want %q", tt.then, diags, tt.want)
		}
	}
}
