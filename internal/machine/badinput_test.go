package machine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// badInputTimeout is how long hostile input may take before the test calls it a hang. Every case
// here is refused in well under a second.
const badInputTimeout = 10 * time.Second

// badWithin runs f in its own goroutine and fails the test if f panics or has not returned in time.
func badWithin(t *testing.T, f func()) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Sprintf("panic: %v\n%s", v, debug.Stack())
				return
			}
			done <- nil
		}()
		f()
	}()
	select {
	case v := <-done:
		if v != nil {
			t.Fatal(v)
		}
	case <-time.After(badInputTimeout):
		t.Fatalf("still running after %s: hostile input must be refused quickly", badInputTimeout)
	}
}

// badLoad writes data as a definition file in a folder of its own, loads the folder, and checks that
// the load fails with an error naming the file whose message holds every one of want.
func badLoad(t *testing.T, data []byte, want ...string) source.Diagnostics {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var (
		set   *machine.Set
		diags source.Diagnostics
		err   error
	)
	badWithin(t, func() { set, diags, err = machine.Load(dir) })
	if err != nil {
		t.Fatalf("Load(%s): %v; want diagnostics", dir, err)
	}
	if len(set.ByName) != 0 {
		t.Errorf("Load(%s) accepted %v", dir, set.Names())
	}
	badNamed(t, diags, file, want...)
	return diags
}

// badNamed checks that diags hold an error of file, written "file: ..." or "file:line:col: ...",
// whose message holds every one of want, and that every error names file.
func badNamed(t *testing.T, diags source.Diagnostics, file string, want ...string) {
	t.Helper()
	if diags.Errors() == 0 {
		t.Fatalf("no error; diagnostics: %v", diags)
	}
	found := false
	for _, d := range diags {
		if d.File != file || !strings.HasPrefix(d.String(), file+":") {
			t.Errorf("diagnostic does not name %s: %s", file, d)
		}
		found = found || d.Severity == source.SevError && badContainsAll(d.Message, want)
	}
	if !found {
		t.Errorf("no error says %q; got:\n%s", want, badShow(diags))
	}
}

func badContainsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// badShow formats diagnostics for a failure message, the first few of them.
func badShow(diags source.Diagnostics) string {
	var b strings.Builder
	for i, d := range diags {
		if i == 5 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(diags)-i)
			break
		}
		s := d.String()
		if len(s) > 300 {
			s = s[:300] + "..."
		}
		fmt.Fprintf(&b, "  %s\n", s)
	}
	return b.String()
}

const badHeader = "name: bad\ninitial: s\n"

func TestBadInputMalformedYAML(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		data string
		want []string
	}{
		"unclosed flow mapping": {badHeader + "states:\n  s: {on: {go: t}\n  t: {final: true}\n", []string{"invalid YAML"}},
		"unclosed quote":        {badHeader + "description: 'never closed\nstates:\n  s: {final: true}\n", []string{"invalid YAML"}},
		"tab indentation":       {badHeader + "states:\n\ts: {final: true}\n", []string{"invalid YAML"}},
		"bad indentation":       {badHeader + "states:\n  s:\n    final: true\n   on: {}\n", []string{"invalid YAML"}},
		"two documents":         {badHeader + "states: {s: {final: true}}\n---\n" + badHeader, []string{"more than one YAML document"}},
		"recursive alias":       {badHeader + "context: &c {x: *c}\nstates: {s: {final: true}}\n", []string{"nested more than"}},
		"undefined alias":       {badHeader + "states: *nowhere\n", []string{"invalid YAML"}},
		"empty file":            {"", []string{"empty"}},
		"only a comment":        {"# nothing here\n", []string{"empty"}},
		"a list":                {"- name: bad\n- initial: s\n", []string{"a definition must be a mapping"}},
		"a scalar":              {"just words\n", []string{"a definition must be a mapping"}},
		"binary":                {"\x00\x01\x02\xff\xfe", []string{"invalid YAML"}},
		"invalid UTF-8":         {badHeader + "description: \xff\xfe\nstates: {s: {final: true}}\n", []string{"invalid YAML"}},
		"merge key":             {badHeader + "base: &b {final: true}\nstates:\n  s: {<<: *b}\n", []string{"merge keys"}},
	} {
		t.Run(name, func(t *testing.T) {
			diags := badLoad(t, []byte(tt.data), tt.want...)
			if strings.HasPrefix(name, "un") && name != "undefined alias" && diags[0].Line == 0 {
				t.Errorf("a YAML syntax error should have a line: %s", diags[0])
			}
		})
	}
}

// TestBadInputHugeFile: a file over the size limit is refused without being read whole.
func TestBadInputHugeFile(t *testing.T) {
	t.Parallel()
	data := []byte(badHeader + "states: {s: {final: true}}\ndescription: " + strings.Repeat("x", 10<<20) + "\n")
	badLoad(t, data, fmt.Sprint(len(data)), "bytes", "limit")
}

// TestBadInputHugeGuard: a guard of 100,000 nodes is refused by its size, and one small enough in
// bytes but over the node limit by its nodes, both at the guard's place.
func TestBadInputHugeGuard(t *testing.T) {
	t.Parallel()
	def := func(guard string) []byte {
		return []byte(badHeader + "context: {x: int}\nstates:\n  s:\n    on:\n      go:\n        - to: s\n          guard: " + guard + "\n")
	}
	t.Run("bytes", func(t *testing.T) {
		guard := strings.Repeat("x == 1 || ", 50000) + "x == 1"
		diags := badLoad(t, def(guard), "guard", "bytes long", "limit")
		if diags[0].Line != 9 {
			t.Errorf("the error should point at the guard, line 9: %s", diags[0])
		}
	})
	t.Run("nodes", func(t *testing.T) {
		guard := "ctx.x == " + strings.Repeat("1+", 3000) + "1"
		diags := badLoad(t, def(guard), "guard", "nodes")
		if diags[0].Line != 9 {
			t.Errorf("the error should point at the guard, line 9: %s", diags[0])
		}
	})
	t.Run("set", func(t *testing.T) {
		data := badHeader + "context: {x: int}\nstates:\n  s:\n    on:\n      go: {to: s, set: {x: '" + strings.Repeat("ctx.x + ", 900) + "1'}}\n"
		badLoad(t, []byte(data), "set x", "nodes")
	})
}

// TestBadInputDeepNesting: nesting beyond what YAML's parser or the schema allow is an error, not a
// stack overflow.
func TestBadInputDeepNesting(t *testing.T) {
	t.Parallel()
	const n = 100000
	for name, tt := range map[string]struct {
		data string
		want []string
	}{
		"lists":            {badHeader + "states: " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n", []string{"invalid YAML", "depth"}},
		"flow mappings":    {badHeader + "states: {s: {final: true}}\ncontext: " + strings.Repeat("{a: ", n) + "int" + strings.Repeat("}", n) + "\n", []string{"invalid YAML", "depth"}},
		"block sequences":  {strings.Repeat("- ", n) + "int\n", []string{"invalid YAML", "depth"}},
		"context objects":  {badHeader + "states: {s: {final: true}}\ncontext: " + strings.Repeat("{a: ", 40) + "int" + strings.Repeat("}", 40) + "\n", []string{"nested more than"}},
		"context lists":    {badHeader + "states: {s: {final: true}}\ncontext: {a: " + strings.Repeat("[", 40) + "int" + strings.Repeat("]", 40) + "}\n", []string{"nested more than"}},
		"list type string": {badHeader + "states: {s: {final: true}}\ncontext: {a: '" + strings.Repeat("[", 5000) + "int" + strings.Repeat("]", 5000) + "'}\n", []string{"nested more than"}},
		"payloads":         {badHeader + "states: {s: {final: true}}\nevents: {go: " + strings.Repeat("{a: ", 40) + "int" + strings.Repeat("}", 40) + "}\n", []string{"nested more than"}},
		"deep default":     {badHeader + "states: {s: {final: true}}\ncontext: {a: {type: any, default: " + strings.Repeat("[", n) + strings.Repeat("]", n) + "}}\n", []string{"invalid YAML", "depth"}},
	} {
		t.Run(name, func(t *testing.T) { badLoad(t, []byte(tt.data), tt.want...) })
	}
}

// badLaughs writes the billion laughs: levels of ten aliases to the level below, in the style of a
// context schema (fields of fields), under the given indentation.
func badLaughs(indent string, levels int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%sl0: &l0 {a: int}\n", indent)
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "%sl%d: &l%d {", indent, i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "f%d: *l%d", j, i-1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// TestBadInputAliasBombs: a small file that expands, through aliases, to billions of nodes is refused
// by the node budget (or YAML's own alias limit) instead of being expanded.
func TestBadInputAliasBombs(t *testing.T) {
	t.Parallel()
	var states, events strings.Builder
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&events, ", e%d: *b", i)
		fmt.Fprintf(&states, "  s%d: *s\n", i)
	}
	var lists strings.Builder
	lists.WriteString("[")
	for i := range 10 {
		if i > 0 {
			lists.WriteString(", ")
		}
		lists.WriteString("{to: s0, guard: ctx.n > 0, set: {n: ctx.n + 1}}")
	}
	lists.WriteString("]")
	for name, tt := range map[string]struct {
		data string
		want []string
	}{
		"context schema": {badHeader + "states: {s: {final: true}}\ncontext:\n" + badLaughs("  ", 10), []string{"expands to more than"}},
		"event payload":  {badHeader + "states: {s: {final: true}}\nevents:\n  go:\n" + badLaughs("    ", 10), []string{"expands to more than"}},
		"on lists": {badHeader + "context: {n: int}\nstates:\n  s0: &s\n    on: {e: &b " + lists.String() + events.String() + "}\n" + states.String(),
			[]string{"expands to more than"}},
		"default value": {badHeader + "states: {s: {final: true}}\ncontext:\n  a:\n    type: any\n    default:\n" + badLaughs("      ", 10),
			[]string{"default of field a", "aliasing"}},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			diags := badLoad(t, []byte(tt.data), tt.want...)
			t.Logf("%d bytes refused in %s: %s", len(tt.data), time.Since(start), diags[0].Message)
		})
	}
}

// TestBadInputNoDefinitions: a folder without definitions is one error naming the folder.
func TestBadInputNoDefinitions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, sub := range []string{"testdata", ".git", "nested/deeper"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for file, data := range map[string]string{
		"order.test.yaml":        "cases: []\n",
		"notes.txt":              "name: order\n",
		"testdata/order.v1.yaml": badHeader + "states: {s: {final: true}}\n",
		".git/order.yaml":        badHeader + "states: {s: {final: true}}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var diags source.Diagnostics
	var err error
	badWithin(t, func() { _, diags, err = machine.Load(dir) })
	if err != nil {
		t.Fatal(err)
	}
	badNamed(t, diags, dir, "no definition files")
}

// TestBadInputNotAFile: a named pipe or a device where a definition file is expected is refused, not
// waited on forever.
func TestBadInputNotAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pipe := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	var diags source.Diagnostics
	var err error
	badWithin(t, func() { _, diags, err = machine.Load(dir) })
	if err != nil {
		t.Fatal(err)
	}
	badNamed(t, diags, pipe, "not a regular file")
}
