package machine_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
)

var update = flag.Bool("update", false, "rewrite golden files")

// diagText parses src as the file name and returns every diagnostic, one line each.
func diagText(name, src string) (*machine.Definition, []string) {
	def, diags := machine.Parse(name, []byte(src))
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.String())
	}
	return def, lines
}

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestValidDefinition: the small definition the checks below start from has no problem at all.
func TestValidDefinition(t *testing.T) {
	t.Parallel()
	def, got := diagText("t.yaml", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
`)
	diffLines(t, got, nil)
	if def == nil || def.Name != "t" || def.Initial != "a" || !def.Final("b") || def.Final("a") || !def.KnownEvent("go") {
		t.Errorf("definition = %+v", def)
	}
}

// TestChecks: each validation check, on a definition that fails only it, gives exactly its line.
// Positions are line:column from 1, at the offending key or value; within an expression, at the
// offending token when the expression is on one line.
func TestChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown key in a definition", `name: t
colour: red
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:2:1: error: unknown key "colour" in a definition (expected context, description, events, index, initial, keys, migrate, name, notify, retention or states)`}},

		{"unknown key in a state", `name: t
initial: a
states:
  a:
    onn:
      go: b
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:5:5: error: unknown key "onn" in state "a" (expected assign, children, description, due, final, on or timers)`}},

		{"unknown key in a transition", `name: t
initial: a
states:
  a:
    on:
      go:
        to: b
        gaurd: "true"
  b: {final: true}
`, []string{`t.yaml:8:9: error: unknown key "gaurd" in a transition (expected allow, guard, guard_message, send, set or to)`}},

		{"unknown key in a timer", `name: t
initial: a
states:
  a:
    on:
      go: b
    timers:
      - after: 1h
        event: go
        every: 2h
  b: {final: true}
`, []string{`t.yaml:10:9: error: unknown key "every" in a timer of state "a" (expected after, at or event)`}},

		{"unknown key in a field spec", `name: t
initial: a
context:
  k: {type: string, colour: red}
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:4:21: error: unknown key "colour" in field k (expected default, description, enum, fields, optional, required or type)`}},

		{"unknown key in migrate", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
migrate:
  when: always
`, []string{`t.yaml:9:3: error: unknown key "when" in migrate (expected context, policy or states)`}},

		{"bad definition name", `name: Order
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:1:7: error: definition name "Order" is not valid: it must match ^[a-z][a-z0-9_]{0,62}$`}},

		{"bad state name", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
  1st: {final: true}
`, []string{`t.yaml:8:3: error: state name "1st" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},

		{"bad event name in on", `name: t
initial: a
states:
  a:
    on:
      go-now: b
  b: {final: true}
`, []string{`t.yaml:6:7: error: event name "go-now" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},

		{"bad event name in events", `name: t
initial: a
events:
  pay.now: {}
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:4:3: error: event name "pay.now" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},

		{"bad field name", `name: t
initial: a
context:
  first name: string
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:4:3: error: field name "first name" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},

		{"bad nested field name", `name: t
initial: a
events:
  go:
    customer:
      e-mail: string
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:6:7: error: field name "e-mail" is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`}},

		{"missing name, initial and states", `description: nothing else
`, []string{
			`t.yaml:1:1: error: missing required key "name"`,
			`t.yaml:1:1: error: missing required key "initial"`,
			`t.yaml:1:1: error: missing required key "states"`,
		}},

		{"missing states", `name: t
initial: a
`, []string{
			`t.yaml:1:1: error: missing required key "states"`,
			`t.yaml:2:10: error: initial state "a" is not a declared state`,
		}},

		{"empty states", `name: t
initial: a
states: {}
`, []string{
			`t.yaml:2:10: error: initial state "a" is not a declared state`,
			`t.yaml:3:9: error: states is empty: a definition needs at least one state`,
		}},

		{"null states", `name: t
initial: a
states:
`, []string{
			`t.yaml:2:10: error: initial state "a" is not a declared state`,
			`t.yaml:3:8: error: states is empty: a definition needs at least one state`,
		}},

		{"states not a mapping", `name: t
initial: a
states: [a, b]
`, []string{
			`t.yaml:2:10: error: initial state "a" is not a declared state`,
			`t.yaml:3:9: error: states must be a mapping, not a list`,
		}},

		{"a definition that is not a mapping", `- name: t
`, []string{`t.yaml:1:1: error: a definition must be a mapping, not a list`}},

		{"empty name", `name:
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:1:6: error: name must be a single value, not nothing`}},

		{"initial not a state", `name: t
initial: z
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:2:10: error: initial state "z" is not a declared state`}},

		{"to not a state", `name: t
initial: a
states:
  a:
    on:
      go: c
      stop:
        - to: d
          guard: "true"
        - to: b
  b: {final: true}
`, []string{
			`t.yaml:6:11: error: on.go in state "a" goes to "c", which is not a declared state`,
			`t.yaml:8:15: error: on.stop in state "a" goes to "d", which is not a declared state`,
		}},

		{"a transition without to stays, and may be mixed with leaving branches", `name: t
initial: a
states:
  a:
    on:
      go: b
      x:
        guard: "true"
      y:
        - to: b
          guard: now > instance.entered_at
        - {}
  b: {final: true}
`, nil},

		{"a state whose only branches stay has no way out, and a stay reaches no state", `name: t
initial: a
states:
  a:
    on:
      go: b
  b:
    on:
      note: {}
      poke:
        - guard: "true"
        - to: b
  c: {final: true}
`, []string{`t.yaml:7:3: warning: state "b" is not final and has no way out: no transition leads to another state`,
			`t.yaml:13:3: warning: state "c" is unreachable from the initial state "a"`}},

		{"a handler naming the empty state", `name: t
initial: a
states:
  a:
    on:
      go: ""
  b: {final: true}
`, []string{`t.yaml:6:11: error: on.go in state "a" names no state: name one, or give a transition without ` + "`to`" + ` ({}) to stay in the state`}},

		{"a null to", `name: t
initial: a
states:
  a:
    on:
      go:
        to: ~
  b: {final: true}
`, []string{`t.yaml:7:13: error: to must be a single value, not nothing`}},

		{"a handler that is nothing", `name: t
initial: a
states:
  a:
    on:
      go: ~
      stop: []
  b: {final: true}
`, []string{
			`t.yaml:6:11: error: on.go in state "a" must name a state, a transition {to, guard, guard_message, set} or a list of them, not nothing`,
			`t.yaml:7:13: error: on.stop in state "a" has no branches`,
		}},

		{"a guard that does not compile", `name: t
initial: a
context:
  amount: float
states:
  a:
    on:
      go:
        to: b
        guard: ctx.amount >
  b: {final: true}
`, []string{`t.yaml:10:27: error: guard: unexpected token EOF`}},

		{"a guard that is not bool", `name: t
initial: a
context:
  amount: float
states:
  a:
    on:
      go:
        to: b
        guard: ctx.amount + 1
  b: {final: true}
`, []string{`t.yaml:10:16: error: guard: expected bool, but got float64`}},

		{"a guard calling now()", `name: t
initial: a
states:
  a:
    on:
      go:
        to: b
        guard: now() > now
  b: {final: true}
`, []string{`t.yaml:8:16: error: guard: time.Time is not callable (now is the time of the event: write now, not now())`}},

		{"unknown ctx and event fields, at the field in plain and quoted scalars", `name: t
initial: a
context:
  amount: float
events:
  go:
    amount: float
states:
  a:
    on:
      go:
        - to: b
          guard: ctx.amont > 0
        - to: b
          guard: 'event.amont > 0'
        - to: b
          guard: "ctx.customer.tier == 1"
  b: {final: true}
`, []string{
			`t.yaml:13:22: error: guard: unknown field amont`,
			`t.yaml:15:25: error: guard: unknown field amont`,
			`t.yaml:17:23: error: guard: unknown field customer`,
		}},

		{"event fields of an event without a payload schema", `name: t
initial: a
events:
  go:
    amount: float
states:
  a:
    on:
      go:
        to: b
        guard: event.amount > 0
      stop:
        to: b
        guard: event.amount > 0
  b: {final: true}
`, []string{
			`t.yaml:9:7: warning: on.go in state "a": not exhaustive: every guard is false when event.amount == 0, and no branch is taken`,
			`t.yaml:14:22: error: guard: unknown field amount`}},

		{"a set of the wrong type", `name: t
initial: a
context:
  n: int
  s: string
  f: float
  t: time
states:
  a:
    on:
      go:
        to: b
        set:
          n: ctx.f
          s: ctx.n
          f: ctx.n
          t: '"tomorrow"'
  b: {final: true}
`, []string{
			`t.yaml:14:14: error: set n: expression is of type float, want int`,
			`t.yaml:15:14: error: set s: expression is of type int, want string`,
			`t.yaml:17:15: error: set t: expression is of type string, want time`,
		}},

		{"a set to an unknown field", `name: t
initial: a
context:
  customer:
    tier: string
states:
  a:
    on:
      go:
        to: b
        set:
          customer.tire: '"gold"'
          nope: "1"
          customer.tier: '"gold"'
          customer.tier.x: '"gold"'
  b: {final: true}
`, []string{
			`t.yaml:12:11: error: set: the context has no field "customer.tire"`,
			`t.yaml:13:11: error: set: the context has no field "nope"`,
			`t.yaml:15:11: error: set: the context has no field "customer.tier.x"`,
		}},

		{"a set expression that does not compile", `name: t
initial: a
context:
  n: int
states:
  a:
    on:
      go:
        to: b
        set:
          n: ctx.m + 1
  b: {final: true}
`, []string{`t.yaml:11:18: error: set n: unknown field m`}},

		{"a timer event not handled in its own state", `name: t
initial: a
states:
  a:
    on:
      go: b
    timers:
      - after: 1h
        event: go
      - after: 2h
        event: expire
  b:
    on:
      expire: a
      done: c
  c: {final: true}
`, []string{`t.yaml:10:9: error: timer event "expire" is not handled in ` + "`on`" + ` of state "a"`}},

		{"a branch after an unguarded branch", `name: t
initial: a
states:
  a:
    on:
      go:
        - to: b
          guard: "true"
        - to: b
        - to: a
          guard: "false"
        - to: a
  b: {final: true}
`, []string{
			`t.yaml:10:15: error: on.go in state "a": this branch can never be taken, branch 2 before it has no guard`,
			`t.yaml:12:15: error: on.go in state "a": this branch can never be taken, branch 2 before it has no guard`,
		}},

		{"on and timers in a final state", `name: t
initial: a
states:
  a:
    on:
      go: b
  b:
    final: true
    on:
      go: a
    timers:
      - after: 1h
        event: go
`, []string{
			"t.yaml:9:5: error: final state \"b\" cannot have `on`: nothing leaves a final state",
			"t.yaml:11:5: error: final state \"b\" cannot have `timers`: nothing leaves a final state",
		}},

		{"final that is not a bool", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: yes}
`, []string{`t.yaml:7:14: error: final must be true or false, not "yes"`}},

		{"bad and non-positive durations", `name: t
initial: a
states:
  a:
    on:
      go: b
    timers:
      - after: 3 days
        event: go
      - after: 0s
        event: go
      - after: -1h
        event: go
      - after: 1d12h
        event: go
      - after: NaNd
        event: go
  b: {final: true}
`, []string{
			`t.yaml:8:16: error: after: "3 days" is not a duration (write e.g. 90m, 72h or 3d)`,
			`t.yaml:10:16: error: after: "0s" must be positive`,
			`t.yaml:12:16: error: after: "-1h" must be positive`,
			`t.yaml:16:16: error: after: "NaNd" is not a duration (write e.g. 90m, 72h or 3d)`,
		}},

		{"timers shorter than a second", `name: t
initial: a
states:
  a:
    on:
      go: a
      stop: b
    timers:
      - after: 1ns
        event: go
      - {after: 999ms, event: go}
      - after: 0.5s
        event: go
      - after: 1s
        event: stop
      - after: 0d1ms
        event: go
  b: {final: true}
`, []string{
			`t.yaml:9:16: error: after: "1ns" is shorter than 1s: a timer's delay is at least 1s`,
			`t.yaml:11:17: error: after: "999ms" is shorter than 1s: a timer's delay is at least 1s`,
			`t.yaml:12:16: error: after: "0.5s" is shorter than 1s: a timer's delay is at least 1s`,
			`t.yaml:16:16: error: after: "0d1ms" is shorter than 1s: a timer's delay is at least 1s`,
		}},

		{"timers with both, neither, or a bad at", `name: t
initial: a
context:
  when: time
states:
  a:
    on:
      go: b
    timers:
      - after: 1h
        at: now
        event: go
      - event: go
      - after: 1h
      - at: ctx.nope
        event: go
      - at: event.at
        event: go
      - at: '"x"'
        event: go
      - at: ctx.when
        event: go
  b: {final: true}
`, []string{
			"t.yaml:11:9: error: a timer of state \"a\" has both `after` and `at`; give one",
			"t.yaml:13:9: error: a timer of state \"a\" needs `after` (a duration) or `at` (a time expression)",
			"t.yaml:14:9: error: a timer of state \"a\" needs `event`",
			`t.yaml:15:17: error: at: unknown field nope`,
			`t.yaml:17:13: error: at: unknown name event`,
			`t.yaml:19:14: error: at: expression is of type string, want time`,
		}},

		{"migrate rules naming states this version lacks", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
migrate:
  states:
    old: gone
    kept: a
    review:
      - to: a
        guard: ctx.amount > 1000
      - to: nowhere
    other:
      - to: a
        guard: ctx.amount >
  context:
    nope: "1"
`, []string{
			`t.yaml:10:10: error: migrate: state "old" maps to "gone", which this version does not have`,
			`t.yaml:15:13: error: migrate: state "review" maps to "nowhere", which this version does not have`,
			`t.yaml:18:27: error: guard: unexpected token EOF`,
			`t.yaml:20:5: error: migrate context: the context has no field "nope"`,
		}},

		{"migrate policy not auto or manual", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
migrate:
  policy: sometimes
`, []string{`t.yaml:9:11: error: migrate policy "sometimes" is not auto or manual`}},

		{"bad types and defaults in the context", `name: t
initial: a
context:
  a: integer
  b: [string, int]
  c: {type: int, default: 3.5}
  d: {type: time, default: yesterday}
  e: {type: duration, default: 90m}
  f: {type: int, required: maybe}
  g: {type: object}
  h: {type: string, fields: {x: int}}
  i: ~
  j: "[strin]"
  k: {type: "[int]", default: [1, "2"]}
  l: {type: duration, default: 3 days}
  m: {type: float, default: "1.5"}
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{
			`t.yaml:4:6: error: field a: unknown type "integer" (expected string, int, float, bool, time, duration, any, [T], T? or a mapping of fields)`,
			`t.yaml:5:6: error: field b: a list type names one element type, like [string]; this list has 2`,
			`t.yaml:6:27: error: default of field c does not fit its type: expected int, got number (a number with a fraction)`,
			`t.yaml:7:28: error: default of field d does not fit its type: expected time (RFC 3339, e.g. 2026-01-02T15:04:05Z), got "yesterday"`,
			`t.yaml:9:28: error: required must be true or false, not "maybe"`,
			"t.yaml:10:13: error: field g of type object needs `fields`",
			"t.yaml:11:21: error: `fields` goes only with type: object",
			`t.yaml:12:6: error: field i has no type`,
			`t.yaml:13:7: error: field j: unknown type "strin" (expected string, int, float, bool, time, duration, any, [T], T? or a mapping of fields)`,
			`t.yaml:14:31: error: default of field k does not fit its type: [1]: expected int, got string "2"`,
			`t.yaml:15:32: error: default of field l does not fit its type: expected duration (e.g. 90m, 72h, 3d), got "3 days"`,
			`t.yaml:16:29: error: default of field m does not fit its type: expected float, got string "1.5"`,
		}},

		{"a context nested too deep", `name: t
initial: a
context:
  l: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[int]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:4:38: error: field l is nested more than 32 levels deep`}},

		{"duplicate states", `name: t
initial: a
states:
  a:
    on:
      go: b
  a:
    final: true
  b: {final: true}
`, []string{`t.yaml:7:3: error: duplicate key "a" in states`}},

		{"merge keys", `name: t
initial: a
states:
  a: &base
    on:
      go: b
  c:
    <<: *base
  b: {final: true}
`, []string{`t.yaml:8:5: error: merge keys (<<) are not supported; repeat the keys or use an alias for the value`}},

		{"two documents", `name: t
initial: a
states:
  a: {final: true}
---
name: u
`, []string{`t.yaml:5:1: error: the file holds more than one YAML document; put one definition in each file`}},

		{"invalid YAML", `name: t
initial: a
states:
  a: {final: true
`, []string{`t.yaml:4: error: invalid YAML: did not find expected ',' or '}'`}},

		{"an empty file", ``, []string{`t.yaml: error: the file is empty`}},

		{"an empty to", `name: t
initial: a
states:
  a:
    on:
      go:
        to: ""
  b: {final: true}
`, []string{`t.yaml:7:13: error: on.go in state "a": ` + "`to`" + ` is empty; name a state, or leave ` + "`to`" + ` out to stay in the state`}},

		{"an empty initial", "name: t\ninitial: \"\"\nstates:\n  a: {final: true}\n",
			[]string{`t.yaml:2:10: error: initial is empty: name the state instances start in`}},

		{"an alias bomb", bombYAML(), []string{`t.yaml:5:63: error: the document expands to more than 22330 YAML nodes through this alias: ` +
			`aliases may take a file to 10 times its own nodes (233 here), or 20000 nodes`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got := diagText("t.yaml", tt.src)
			diffLines(t, got, tt.want)
		})
	}
}

// bombYAML is a definition whose context expands, through nine levels of ten aliases, to 10^9 fields.
func bombYAML() string {
	var b strings.Builder
	b.WriteString("name: t\ninitial: a\ncontext:\n  l0: &l0 {a: int, b: int, c: int, d: int, e: int, f: int, g: int, h: int, i: int, j: int}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d {", i, i)
		for j, f := range "abcdefghij" {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%c: *l%d", f, i-1)
		}
		b.WriteString("}\n")
	}
	b.WriteString("states:\n  a: {final: true}\n")
	return b.String()
}

// TestWarnings: what is legal but likely a mistake is a warning, and only on a definition without
// errors.
func TestWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		src  string
		want []string
	}{
		{"unreachable state", "t.yaml", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
  c:
    on:
      go: b
`, []string{`t.yaml:8:3: warning: state "c" is unreachable from the initial state "a"`}},

		{"no way out", "t.yaml", `name: t
initial: a
states:
  a:
    on:
      go: b
      stay: a
  b:
    on:
      again: b
  c: {final: true}
`, []string{
			`t.yaml:8:3: warning: state "b" is not final and has no way out: no transition leads to another state`,
			`t.yaml:11:3: warning: state "c" is unreachable from the initial state "a"`,
		}},

		{"a state with no on at all has no way out", "t.yaml", `name: t
initial: a
states:
  a:
    on:
      go: b
      end: c
  b: {}
  c: {final: true}
`, []string{`t.yaml:8:3: warning: state "b" is not final and has no way out: no transition leads to another state`}},

		{"event declared but never handled", "t.yaml", `name: t
initial: a
events:
  go: {}
  unused:
    x: int
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`t.yaml:5:3: warning: event "unused" is declared but no state handles it`}},

		{"an event handled only in an unreachable state is handled", "t.yaml", `name: t
initial: a
events:
  late: {}
states:
  a:
    on:
      go: b
  b: {final: true}
  c:
    on:
      late: b
`, []string{`t.yaml:10:3: warning: state "c" is unreachable from the initial state "a"`}},

		{"no final state", "t.yaml", `name: t
initial: a
states:
  a:
    on:
      go: b
  b:
    on:
      back: a
`, []string{`t.yaml:1:7: warning: definition "t" has no final state: its instances never finish`}},

		{"file name not matching the definition name", "defs/order.yaml", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
`, []string{`defs/order.yaml:1:7: warning: definition "t" is in a file named order.yaml; name the file t.yaml`}},

		{"a .yml file matches too", "defs/t.yml", `name: t
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
`, nil},

		{"all of them, in file order", "other.yaml", `name: t
initial: a
events:
  go: {}
  unused:
    x: int
states:
  a:
    on:
      go: b
  b:
    on:
      again: b
  c:
    on:
      go: a
`, []string{
			`other.yaml:1:7: warning: definition "t" is in a file named other.yaml; name the file t.yaml`,
			`other.yaml:1:7: warning: definition "t" has no final state: its instances never finish`,
			`other.yaml:5:3: warning: event "unused" is declared but no state handles it`,
			`other.yaml:11:3: warning: state "b" is not final and has no way out: no transition leads to another state`,
			`other.yaml:14:3: warning: state "c" is unreachable from the initial state "a"`,
		}},

		{"errors hold the warnings back", "other.yaml", `name: t
initial: a
states:
  a:
    on:
      go: z
  c:
    on:
      go: a
`, []string{`other.yaml:6:11: error: on.go in state "a" goes to "z", which is not a declared state`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def, got := diagText(tt.file, tt.src)
			diffLines(t, got, tt.want)
			// Warnings leave the definition usable.
			if def == nil || (!strings.Contains(strings.Join(got, "\n"), ": error: ") && !def.KnownEvent("go")) {
				t.Errorf("the definition is not usable: %+v", def)
			}
		})
	}
}

// TestManyProblems: one file with many problems reports all of them at once, sorted by position.
func TestManyProblems(t *testing.T) {
	t.Parallel()
	src := `name: Order
colour: red
initial: created
context:
  amount: float
  count: {type: int, default: 1.5}
  bad-name: string
  tags: [strin]
events:
  pay:
    amount: float
  unused: {}
states:
  created:
    on:
      pay:
        - to: paid
          guard: event.amount >= ctx.amont
          set:
            count: ctx.amount
            nope: "1"
        - to: paid
        - to: failed
      cancel: cancelled
    timers:
      - after: 3 days
        event: cancel
      - after: 1h
        event: expire
      - at: now
        after: 1h
        event: cancel
  paid:
    on:
      ship: shiped
  cancelled:
    final: true
    on:
      reopen: created
  1st: {final: true}
migrate:
  policy: sometimes
  states:
    old: gone
`
	_, got := diagText("many.yaml", src)
	text := strings.Join(got, "\n") + "\n"
	golden := filepath.Join("testdata", "golden", "many_problems.txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestManyProblems -update to write it)", err)
	}
	if text != string(want) {
		t.Errorf("diagnostics differ from %s (run with -update to rewrite it after checking):\n got:\n%s\nwant:\n%s", golden, text, want)
	}
	if n := strings.Count(text, ": error: "); n < 15 {
		t.Errorf("%d errors reported, want every problem of the file (at least 15):\n%s", n, text)
	}
}

// TestParseModel: a valid definition is read into the model the engine uses.
func TestParseModel(t *testing.T) {
	t.Parallel()
	def, got := diagText("order.yaml", `name: order
description: An order.
initial: created
context:
  amount: float
  currency: {type: string, default: EUR, description: ISO code}
  customer_id: {type: string, required: true}
  customer:
    tier: string
  wrapped: {type: object, fields: {type: string}}
  tags: "[string]"
events:
  pay:
    amount: float
states:
  created:
    description: Waiting.
    on:
      cancel: cancelled
      pay:
        - to: paid
          guard: event.amount >= ctx.amount
          guard_message: pay it all
          set:
            customer.tier: '"gold"'
        - to: created
    timers:
      - after: 3d
        event: cancel
      - at: now
        event: cancel
  paid: {final: true}
  cancelled: {final: true}
migrate:
  policy: manual
  states:
    awaiting: created
`)
	diffLines(t, got, nil)
	if def.Description != "An order." || def.NamePos != (machine.Pos{Line: 1, Col: 7}) || def.InitialPos != (machine.Pos{Line: 3, Col: 10}) {
		t.Errorf("definition header = %q %v %v", def.Description, def.NamePos, def.InitialPos)
	}
	if got := strings.Join(def.StateOrder, ","); got != "created,paid,cancelled" {
		t.Errorf("StateOrder = %s", got)
	}
	if got := def.Context.String(); got != "{amount: float, currency: string, customer_id: string, customer: {tier: string}, wrapped: {type: string}, tags: [string]}" {
		t.Errorf("Context = %s", got)
	}
	if f := def.Context.Field("currency"); !f.HasDefault || f.Default != "EUR" || f.Description != "ISO code" {
		t.Errorf("currency = %+v", f)
	}
	if f := def.Context.Field("customer_id"); !f.Required {
		t.Errorf("customer_id = %+v", f)
	}
	created := def.States["created"]
	if got := strings.Join(created.OnOrder, ","); got != "cancel,pay" || created.Description != "Waiting." {
		t.Errorf("created = %+v", created)
	}
	pay := created.On["pay"]
	if len(pay.Branches) != 2 || pay.Branches[0].To != "paid" || pay.Branches[0].GuardMessage != "pay it all" ||
		pay.Branches[0].GuardSource != "event.amount >= ctx.amount" || pay.Branches[0].Guard == nil ||
		pay.Branches[1].Index != 1 || pay.Branches[1].Guard != nil {
		t.Errorf("on.pay = %+v %+v", pay.Branches[0], pay.Branches[1])
	}
	if set := pay.Branches[0].Set; len(set) != 1 || strings.Join(set[0].Path, ".") != "customer.tier" || set[0].Field.Name != "tier" {
		t.Errorf("set = %+v", set)
	}
	if tm := created.Timers; len(tm) != 2 || tm[0].After != 72*60*60*1e9 || tm[0].At != nil || tm[1].At == nil || tm[1].Event != "cancel" {
		t.Errorf("timers = %+v", tm)
	}
	if m := def.Migrate; m == nil || m.Policy != "manual" || m.States["awaiting"] == nil || m.States["awaiting"].Branches[0].To != "created" {
		t.Errorf("migrate = %+v", m)
	}
	if got := strings.Join(def.Handles("created"), ","); got != "cancel,pay" {
		t.Errorf("Handles(created) = %s", got)
	}
	if def.Handles("nope") != nil || def.Final("nope") || def.KnownEvent("ship") {
		t.Error("unknown states and events are known")
	}
	if string(def.Source) == "" || def.File != "order.yaml" {
		t.Errorf("File, Source = %q, %d bytes", def.File, len(def.Source))
	}
}

// TestParseMigrateDefaults: without a policy, migration is automatic.
func TestParseMigrateDefaults(t *testing.T) {
	t.Parallel()
	def, got := diagText("t.yaml", `name: t
initial: a
context:
  currency: string
states:
  a:
    on:
      go: b
  b: {final: true}
migrate:
  context:
    currency: 'ctx.currency ?? "EUR"'
`)
	diffLines(t, got, nil)
	if def.Migrate.Policy != "auto" || len(def.Migrate.Context) != 1 || def.Migrate.Context[0].Expr != `ctx.currency ?? "EUR"` {
		t.Errorf("migrate = %+v", def.Migrate)
	}
}

// TestExpressionErrorInMultiLinePlainScalar: a plain scalar folded over two lines has no newline in
// its value, so a column within the expression cannot be mapped onto one line of the file; the error
// must not point past the end of the first line (10:33 here). The token is at 11:15; the scalar's
// start, 10:16, will do.
func TestExpressionErrorInMultiLinePlainScalar(t *testing.T) {
	t.Parallel()
	_, got := diagText("t.yaml", `name: t
initial: a
context:
  n: int
states:
  a:
    on:
      go:
        to: b
        guard: ctx.n > 0 &&
          ctx.m > 0
  b: {final: true}
`)
	if len(got) != 1 || (got[0] != `t.yaml:11:15: error: guard: unknown field m` && got[0] != `t.yaml:10:16: error: guard: unknown field m`) {
		t.Errorf("diagnostics = %q", got)
	}
}
