package machine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
)

// fuzzSeeds are definitions, valid and broken, that start FuzzParse where the interesting inputs are.
var fuzzSeeds = []string{
	benchDefinition,
	"name: a\ninitial: s\nstates:\n  s: {final: true}\n",
	"name: a\ninitial: s\nstates:\n  s:\n    on:\n      go: s\n",
	"name: a\ninitial: s\ncontext:\n  n: {type: int, required: true}\nevents:\n  go: {m: {type: string, required: true}}\nstates:\n  s:\n    on:\n      go:\n        - to: t\n          guard: event.m == \"x\" && ctx.n > 0\n          set: {n: ctx.n + 1}\n        - to: s\n  t: {final: true}\n",
	"name: a\ninitial: s\ncontext: {at: time, d: duration, l: [int], o: {x: {y: float}}, z: any}\nstates:\n  s:\n    on:\n      tick:\n        to: s\n        set:\n" +
		"          o.x.y: ctx.o.x.y + 1.5\n          l: concat(ctx.l, [1])\n          at: now\n          d: duration(\"1h\")\n          z: ctx.z\n" +
		"    timers:\n      - at: ctx.at\n        event: tick\n      - after: 3d\n        event: tick\n",
	"name: a\ninitial: s\nstates:\n  s:\n    on:\n      go: [{to: s, guard: 'ctx.l[5] > 0'}]\ncontext: {l: [int]}\n",
	"name: a\ninitial: s\nstates:\n  s:\n    on:\n      go: {to: s, set: {n: 'int(\"x\")'}}\ncontext: {n: int}\n",
	"name: a\ninitial: s\nmigrate:\n  policy: manual\n  states:\n    old: s\n    older: [{to: s, guard: ctx.x > 1}, {to: s}]\n  context: {n: '1'}\ncontext: {n: int}\nstates:\n  s: {final: true}\n",
	// broken
	"",
	"{",
	"name: [",
	"- a\n- b\n",
	"name: a\n---\nname: b\n",
	"name: a\ninitial: s\nstates: *x\n",
	"a: &a [1]\nb: &b [*a, *a]\nc: [*b, *b]\n",
	"name: a\ninitial: s\nstates:\n  s: &s {on: {go: s}}\n  t: *s\n",
	"name: a\ninitial: s\nstates:\n  <<: {s: {final: true}}\n",
	"name: a\ninitial: s\nstates:\n  s:\n    on:\n      go: [{to: s}, {to: s, guard: 'true'}]\n",
	"name: a\ninitial: s\nstates:\n  s:\n    on:\n      go: {to: s, guard: 'now()'}\n",
	"name: a\ninitial: s\nstates:\n  s:\n    final: true\n    on: {go: s}\n    timers: [{after: 0s, event: go}]\n",
	"name: a\ninitial: s\ncontext: {x: {type: object}}\nstates: {s: {final: true}}\n",
	"name: a\ninitial: s\ncontext: {x: {type: '[[[[int]]]]', default: [[[[1]]]]}}\nstates: {s: {final: true}}\n",
	"name: a\ninitial: s\ncontext: {x: {type: int, default: 1.5}}\nstates: {s: {final: true}}\n",
	"name: a\ninitial: s\nstates:\n  s:\n    on:\n      go:\n        to: s\n        guard: |\n          ctx.x >\n            1 &&\n" +
		"          ctx.y\ncontext: {x: int, y: bool}\n",
	"name: A\ninitial: 1\nstates:\n  1: {}\n  s s: {}\n",
	"\t name: a",
	"name: \xff\xfe\n",
	strings.Repeat("[", 100) + strings.Repeat("]", 100),
}

// FuzzParse: Parse never panics, whatever the bytes; a definition it accepts can handle every event
// from every state without panicking (errors are fine: an empty payload, a failing expression).
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	if files, _ := filepath.Glob("../../definitions/*.yaml"); len(files) > 0 {
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			fuzzParseAndFire(t, data, now)
		}()
		select {
		case <-done:
		case <-time.After(fuzzTimeout):
			t.Fatalf("parsing and firing still running after %s", fuzzTimeout)
		}
	})
}

// fuzzTimeout bounds parsing one input and firing its events: files and expressions are bounded,
// so anything near it is a hang.
const fuzzTimeout = 10 * time.Second

// fuzzParseAndFire runs in its own goroutine: it reports with t.Errorf and returns.
func fuzzParseAndFire(t *testing.T, data []byte, now time.Time) {
	def, diags := Parse("fuzz.yaml", data)
	for _, d := range diags {
		if d.File != "fuzz.yaml" {
			t.Errorf("diagnostic names %q, not the file: %v", d.File, d)
		}
	}
	if def == nil || diags.Errors() > 0 {
		if diags.Errors() == 0 {
			t.Errorf("no definition and no error")
		}
		return
	}
	snap, _, err := Start(def, "fuzz", 1, nil, now)
	if err != nil { // required fields: start from the zero context instead
		snap = Snapshot{ID: "fuzz", Version: 1, State: def.Initial, Context: def.Context.Zero().(map[string]any), CreatedAt: now, EnteredAt: now}
	}
	fuzzFireAll(t, def, snap, now)
	for _, name := range def.StateOrder {
		if name != def.Initial {
			snap.State = name
			fuzzFireAll(t, def, snap, now)
		}
	}
}

func fuzzFireAll(t *testing.T, def *Definition, snap Snapshot, now time.Time) {
	for _, ev := range def.Handles(snap.State) {
		tr, err := Fire(def, snap, ev, nil, now)
		if err == nil && def.States[tr.To] == nil {
			t.Errorf("%s on %s went to %q, not a state", snap.State, ev, tr.To)
		}
		if err != nil && code.Of(err) == "" {
			t.Errorf("%s on %s: an error without a code: %v", snap.State, ev, err)
		}
	}
}
