package machine_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// sharedOnYAML is the definition of issue 12: states that all name one anchored `on` map of
// guarded branches, each to a state of its own.
func sharedOnYAML(states, branches int) string {
	var b strings.Builder
	b.WriteString("name: amp\ninitial: s0\ncontext: {n: int}\nstates:\n  s0:\n    on: &h\n")
	for i := range branches {
		fmt.Fprintf(&b, "      e%d: {to: s%d, guard: ctx.n > %d}\n", i, i%states, i)
	}
	for i := 1; i < states; i++ {
		fmt.Fprintf(&b, "  s%d: {on: *h}\n", i)
	}
	return b.String()
}

// sharedHandlerYAML has states with `on` maps of their own that name one anchored list of branches
// for one event, and one anchored list of timers.
func sharedHandlerYAML(states, branches int) string {
	var b strings.Builder
	b.WriteString("name: amp\ninitial: s0\ncontext: {n: int}\nstates:\n  s0:\n    on:\n      go: &b\n")
	for i := range branches {
		fmt.Fprintf(&b, "        - {to: s%d, guard: ctx.n == %d}\n", i%states, i)
	}
	b.WriteString("      tick: s0\n    timers: &t\n")
	for i := range branches {
		fmt.Fprintf(&b, "      - {after: %ds, event: tick}\n", i+1)
	}
	for i := 1; i < states; i++ {
		fmt.Fprintf(&b, "  s%d: {on: {go: *b, tick: s%d}, timers: *t}\n", i, i)
	}
	return b.String()
}

// TestAliasesShareMemory: a definition whose aliases name one part many times takes memory in
// proportion to its file, not to its expansion: before, 350 states sharing one map of 350 guarded
// branches (20 KB) took 42 MB per loaded version. Each version is parsed, prepared and fired, as a
// service holds it; the heap it keeps, after a GC, is measured.
func TestAliasesShareMemory(t *testing.T) {
	// Not parallel: it measures the heap of the process.
	for _, tt := range []struct {
		name string
		src  string
	}{
		{"one on map", sharedOnYAML(350, 350)},
		{"one list of branches and one of timers", sharedHandlerYAML(200, 150)},
	} {
		const versions = 4
		defs := make([]*machine.Definition, versions)
		var before, after runtime.MemStats
		runtime.GC() // twice: the first may leave what the case before freed to the second
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range defs {
			def, diags := machine.Parse("amp.yaml", []byte(tt.src))
			if diags.Errors() > 0 {
				t.Fatalf("%s: %v", tt.name, diags)
			}
			if err := def.Prepare(); err != nil {
				t.Fatal(err)
			}
			defs[i] = def
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perVersion := int64(after.HeapAlloc-before.HeapAlloc) / versions
		bound := int64(100 * len(tt.src)) // about 2 MB for these 20 KB
		t.Logf("%s: %d bytes of YAML, %.2f MB per version", tt.name, len(tt.src), float64(perVersion)/(1<<20))
		if perVersion > bound {
			t.Errorf("%s: %d bytes of YAML take %d bytes per loaded version; want at most %d", tt.name, len(tt.src), perVersion, bound)
		}
		// The states that share a handler fire each branch from where they are.
		for _, from := range []string{"s0", "s3", "s199"} {
			snap := machine.Snapshot{ID: "i", State: from, Context: map[string]any{"n": 8}} // e7 holds; so does go's 8th
			event, want := "e7", "s7"
			if tt.name != "one on map" {
				event, want = "go", "s8"
			}
			tr, err := machine.Fire(defs[0], snap, event, nil, at)
			if err != nil || tr.From != from || tr.To != want {
				t.Errorf("%s: %s from %s: %+v, %v; want to %s", tt.name, event, from, tr, err, want)
			}
		}
		runtime.KeepAlive(defs)
	}
}

// TestAliasExpansionRefused: a definition whose aliases expand it past what its readers may
// iterate (source.MaxNodes) is refused, at the alias that takes it there.
func TestAliasExpansionRefused(t *testing.T) {
	t.Parallel()
	src := sharedOnYAML(1000, 1000) // 60 KB naming 7 million nodes
	_, diags := machine.Parse("amp.yaml", []byte(src))
	if diags.Errors() != 1 {
		t.Fatalf("got %d errors, want 1: %v", diags.Errors(), diags)
	}
	d := diags[0]
	lines := strings.Split(src, "\n")
	if d.Line < 1 || d.Line > len(lines) {
		t.Fatalf("the error is at line %d: %v", d.Line, d)
	}
	line := lines[d.Line-1]
	if !strings.HasSuffix(line, ": {on: *h}") || d.Col != strings.Index(line, "*h")+1 ||
		d.Message != "the document expands to more than 1000000 YAML nodes through this alias" {
		t.Errorf("got %s (line %q), want the expansion refused at an alias *h", d, line)
	}
}
