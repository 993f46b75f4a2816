package explore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/table"
)

func load(t testing.TB, src string) *machine.Definition {
	t.Helper()
	def, diags := machine.Parse("t.yaml", []byte(src))
	if diags.Errors() > 0 {
		t.Fatalf("invalid test definition: %v", diags)
	}
	return def
}

func text(r *Report) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

func names(r *Report) (reached, not []string) {
	for _, re := range r.Reached {
		reached = append(reached, re.State)
	}
	for _, m := range r.Unreached {
		not = append(not, m.State)
	}
	return reached, not
}

func TestExplore(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		opts    Options
		reached string // the states reached, in the definition's order
		not     string
		want    []string // substrings of the text report
	}{
		{
			name: "a guard constant and its neighbours open the branch",
			src: `name: t
initial: a
events:
  pay: {amount: int}
states:
  a:
    on:
      pay:
        - {to: exact, guard: event.amount == 4711}
        - {to: above, guard: event.amount > 100}
        - {to: low}
  exact: {final: true}
  above: {final: true}
  low: {final: true}
`,
			reached: "a exact above low",
			want:    []string{"reached     exact: pay {\"amount\":4711}", "reached     above: pay {\"amount\":4710}"},
		},
		{
			name: "a state no value reaches: the nearest reached state and the guard that blocked",
			src: `name: t
initial: a
events:
  pay: {amount: int}
states:
  a:
    on:
      pay:
        - to: b
          guard: event.amount * 3 == 21
        - to: c
  b: {final: true}
  c:
    on: {go: d}
  d: {final: true}
`,
			reached: "a c d", not: "b",
			want: []string{"NOT REACHED b: nearest reached state a; blocked by the guard of its pay branch 1, never true in 3 evaluations: event.amount * 3 == 21 (t.yaml:10:18)"},
		},
		{
			name: "a state only an unreached state leads to is named with the distance",
			src: `name: t
initial: a
states:
  a:
    on:
      go: {to: b, guard: 'now > instance.created_at + duration("1000h")'}
  b:
    on: {go: c}
  c: {final: true}
`,
			reached: "a", not: "b c",
			want: []string{"NOT REACHED c: nearest reached state a is 2 transitions away"},
		},
		{
			name: "timers fire by advancing the clock, after and at alike",
			src: `name: t
initial: a
states:
  a:
    on: {tick: b}
    timers: [{after: 2h, event: tick}]
  b:
    on: {late: c}
    timers: [{at: 'instance.created_at + duration("30h")', event: late}]
  c: {final: true}
`,
			reached: "a b c",
			want:    []string{"reached     b: advance 2h", "reached     c: advance 2h; advance 28h"},
		},
		{
			name: "a guard on the context is decided by the initial contexts",
			src: `name: t
initial: a
context:
  limit: {type: int, required: true}
  tags: [string]
states:
  a:
    on:
      go:
        - {to: big, guard: ctx.limit >= 1000}
        - {to: tagged, guard: len(ctx.tags) > 0}
        - {to: small}
  big: {final: true}
  tagged: {final: true}
  small: {final: true}
`,
			reached: "a big tagged small",
			want:    []string{"reached     big: ctx {\"limit\":1000}; go", `reached     tagged: ctx {"limit":0,"tags":[""]}; go`},
		},
		{
			name: "allow: the walk's actor is in every group a branch names",
			src: `name: t
initial: a
states:
  a:
    on:
      approve:
        - {to: b, allow: [finance]}
  b:
    on:
      approve: {to: c, allow: [board], guard: '"board" in actor.groups'}
  c: {final: true}
`,
			reached: "a b c",
		},
		{
			name: "an event whose set always fails is reported",
			src: `name: t
initial: a
context:
  n: int
events:
  go: {s: string}
states:
  a:
    on:
      go: {to: b, set: {n: 'int(event.s)'}}
      skip: b
  b: {final: true}
`,
			reached: "a b",
			want:    []string{"FAILING     event go: expression_failed in every one of 2 attempts: event \"go\" in state \"a\": set: n:"},
		},
		{
			name: "the depth bounds the walk",
			src: `name: t
initial: a
states:
  a: {on: {go: b}}
  b: {on: {go: c}}
  c: {on: {go: d}}
  d: {final: true}
`,
			opts:    Options{Depth: 2},
			reached: "a b c", not: "d",
			want: []string{"NOT REACHED d: nearest reached state c; its go branch 1, without guard, was never taken"},
		},
		{
			name: "max bounds the walk and says so",
			src: `name: t
initial: a
states:
  a: {on: {go: b}}
  b: {on: {go: c}}
  c: {final: true}
`,
			opts:    Options{Max: 2},
			reached: "a b", not: "c",
			want: []string{"stopped at 2 instances (--max)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Explore(load(t, tt.src), tt.opts)
			reached, not := names(r)
			out := text(r)
			if strings.Join(reached, " ") != tt.reached || strings.Join(not, " ") != tt.not {
				t.Errorf("reached %q, not %q; want %q, %q\n%s", reached, not, tt.reached, tt.not, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("report lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// Enumerations (schema.Type.Enum) give every value of the list, even one no guard names: here
// only an enum value's length opens the branch. The parser fills Enum elsewhere; the test sets it.
func TestEnumPayloads(t *testing.T) {
	src := `name: t
initial: a
events:
  pick: {kind: string, level: int}
states:
  a:
    on:
      pick:
        - {to: long, guard: len(event.kind) == 5}
        - {to: mod, guard: event.level % 7 == 3}
        - {to: a}
  long: {final: true}
  mod: {final: true}
`
	def := load(t, src)
	if _, not := names(Explore(def, Options{})); strings.Join(not, " ") != "long mod" {
		t.Fatalf("without enums: not reached %q, want long and mod", not)
	}
	p := def.Events["pick"].Payload
	p.Field("kind").Type.Enum = []any{"ab", "gamma"}
	p.Field("level").Type.Enum = []any{10}
	r := Explore(def, Options{})
	if _, not := names(r); len(not) > 0 {
		t.Fatalf("with enums: not reached %q\n%s", not, text(r))
	}
	if out := text(r); !strings.Contains(out, `long: pick {"kind":"gamma","level":10}`) {
		t.Errorf("the sequence to long does not use the enum value:\n%s", out)
	}
}

func TestValues(t *testing.T) {
	g := &gen{consts: consts{"event.n": {10, 2.5}, "event.s": {"gold"}}, now: Start}
	tests := []struct {
		typ  *schema.Type
		path string
		want string
	}{
		{schema.Scalar(schema.Int), "event.n", "[0 1 -1 9 10 11 2 3 4]"},
		{schema.Scalar(schema.Float), "event.n", "[0 0.5 -1 9 10 11 1.5 2.5 3.5]"},
		{schema.Scalar(schema.String), "event.s", "[ x gold]"},
		{schema.Scalar(schema.Bool), "event.b", "[false true]"},
		{schema.Scalar(schema.Duration), "event.d", "[0s 1h 24h]"},
		{schema.Scalar(schema.Time), "event.t", "[2000-01-01T00:00:00Z 1999-12-31T00:00:00Z 2000-01-02T00:00:00Z]"},
		{schema.ListOf(schema.Scalar(schema.String)), "event.l", "[[] []]"},
		{&schema.Type{Kind: schema.Int, Optional: true}, "event.x", "[0 1 -1 <nil>]"},
		{&schema.Type{Kind: schema.String, Enum: []any{"a", "b"}, Optional: true}, "event.e", "[a b <nil>]"},
		{schema.ObjectOf(&schema.Field{Name: "k", Type: schema.Scalar(schema.Bool)}), "event.o", "[map[k:false] map[k:true]]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(g.values(tt.typ, tt.path, 0)); got != tt.want {
			t.Errorf("values(%s at %s) = %s, want %s", tt.typ, tt.path, got, tt.want)
		}
	}
}

// combine covers every pair of values of two fields when the product does not fit.
func TestCombinePairwise(t *testing.T) {
	for _, shape := range [][2]int{{4, 4}, {8, 3}, {3, 4}, {12, 2}} {
		dims := make([][]any, shape[0])
		for i := range dims {
			for v := range shape[1] {
				dims[i] = append(dims[i], v)
			}
		}
		t.Run(fmt.Sprint(shape), func(t *testing.T) { coversPairs(t, dims) })
	}
}

func coversPairs(t *testing.T, dims [][]any) {
	rows := combine(dims, maxRows)
	if len(rows) > maxRows {
		t.Fatalf("%d rows, more than %d", len(rows), maxRows)
	}
	for i := range dims {
		for j := i + 1; j < len(dims); j++ {
			for a := range dims[i] {
				for b := range dims[j] {
					found := false
					for _, r := range rows {
						found = found || r[i] == a && r[j] == b
					}
					if !found {
						t.Errorf("fields %d=%d and %d=%d never together", i, a, j, b)
					}
				}
			}
		}
	}
}

// The report and the cases are the same from one run to the next.
func TestDeterministic(t *testing.T) {
	set := examples(t)
	for _, name := range set.Names() {
		a, b := Explore(set.ByName[name], Options{}), Explore(set.ByName[name], Options{})
		ca, _ := a.Cases()
		cb, _ := b.Cases()
		if text(a) != text(b) || string(ca) != string(cb) {
			t.Errorf("%s: two runs differ:\n%s\n%s", name, text(a), text(b))
		}
	}
}

// A definition with a huge payload schema and deep nesting explores in bounded time: generation
// caps values per field, rows per event and initial contexts, and --max caps the instances.
func TestBadInputIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: t\ninitial: a\ncontext:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  c%d: {type: int, required: true}\n", i)
	}
	b.WriteString("events:\n  e:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "    f%d: int\n", i)
	}
	b.WriteString("    deep: ")
	for range 30 {
		b.WriteString("{x: ")
	}
	b.WriteString("int" + strings.Repeat("}", 30) + "\nstates:\n  a:\n    on:\n      e:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "        - {to: a, guard: 'event.f%d == %d && ctx.c%d > %d'}\n", i, i*7, i, i)
	}
	b.WriteString("        - {to: z}\n  z: {final: true}\n")
	def, diags := machine.Parse("t.yaml", []byte(b.String()))
	if diags.Errors() > 0 {
		t.Skipf("the bounds refuse the definition already: %v", diags[0])
	}
	start := time.Now()
	r := Explore(def, Options{Max: 2000})
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v", took)
	}
	if r.Nodes > 2000 || r.Contexts > maxContexts {
		t.Errorf("%d instances, %d contexts: past the bounds", r.Nodes, r.Contexts)
	}
	if _, not := names(r); len(not) > 0 {
		t.Errorf("not reached: %v", not)
	}
}

// A definition whose initial state starts children: the walk counts them as the engine starts
// them, and the cases it writes give them (given.children), so that they pass as tables.
func TestInitialChildren(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"task.yaml": "name: task\ninitial: open\nstates:\n  open: {on: {finish: done}}\n  done: {final: true}\n",
		"batch.yaml": `name: batch
initial: running
context:
  items: [string]
states:
  running:
    children:
      tasks: {definition: task, for_each: ctx.items, on_final: task_done}
    on:
      task_done:
        - {to: finished, guard: children.tasks.running == 0}
        - {}
      give_up: abandoned
  finished: {final: true}
  abandoned: {final: true}
`,
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, diags, err := machine.Load(dir)
	if err != nil || diags.Errors() > 0 {
		t.Fatalf("%v %v", err, diags)
	}
	def := set.ByName["batch"]
	r := Explore(def, Options{})
	if _, not := names(r); len(not) > 0 {
		t.Fatalf("not reached: %v\n%s", not, text(r))
	}
	data, err := r.Cases()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "given: {children: {tasks: {total: 0, running: 0, final: 0}}}") {
		t.Errorf("the cases give no children:\n%s", data)
	}
	tab, diags := table.Parse("batch.test.yaml", data)
	if diags.Errors() > 0 {
		t.Fatalf("%v\n%s", diags, data)
	}
	for _, c := range tab.Cases {
		if res := table.Run(def, c, nil); !res.Passed() {
			t.Errorf("case %q fails: %v %v\n%s", c.Name, res.Failures, res.Trace, data)
		}
	}
}

// When no instance can be created, the report says why instead of only "not reached".
func TestNoInstance(t *testing.T) {
	def := load(t, `name: t
initial: a
context:
  wait: string
states:
  a:
    on: {go: b}
    timers: [{at: 'instance.created_at + duration(ctx.wait)', event: go}]
  b: {final: true}
`)
	r := Explore(def, Options{})
	if out := text(r); r.StartErr == nil || !strings.Contains(out, "no instance could be created from the generated contexts: entering the initial state") {
		t.Errorf("report:\n%s", out)
	}
}

// A walk whose every event runs its expressions to their time budget stops at the Timeout, and
// says so.
func TestTimeout(t *testing.T) {
	def := load(t, `name: t
initial: a
events:
  spin: {k: int, s: string, b: bool}
states:
  a:
    on:
      spin:
        - {to: b, guard: 'all(1..3000, {all(1..3000, {# > 0})})'}
  b: {on: {spin: a}}
`)
	start := time.Now()
	r := Explore(def, Options{Timeout: 300 * time.Millisecond})
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("took %v", took)
	}
	if out := text(r); !r.TimedOut || !strings.Contains(out, "stopped after 300ms") ||
		!strings.Contains(out, "blocked by the guard of its spin branch 1, which failed (expression_failed) in") {
		t.Errorf("report:\n%s", out)
	}
}
