package table_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/table"
)

// badInputTimeout is how long a bad table may take before the test calls it a hang.
const badInputTimeout = 10 * time.Second

// badDefinition is a valid definition named order.
const badDefinition = `name: order
initial: created
context:
  amount: float
events:
  pay: {amount: float}
states:
  created:
    on:
      pay:
        - to: paid
          guard: event.amount >= ctx.amount
  paid: {final: true}
`

// badCase is a passing case of badDefinition.
const badCase = `  - name: paying the amount
    given: {ctx: {amount: 10.0}}
    when: {event: pay, payload: {amount: 10.0}}
    then: {state: paid}
`

// badWrite writes files (path relative to a new folder -> content) and returns the folder.
func badWrite(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// badRun loads the tables under dir and runs them as `fsmd test` does, in a goroutine that must
// neither panic nor take longer than badInputTimeout. It returns the output and the summary.
func badRun(t *testing.T, dir string) (string, table.Summary) {
	t.Helper()
	var out bytes.Buffer
	var sum table.Summary
	done := make(chan any, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Sprintf("panic: %v\n%s", v, debug.Stack())
				return
			}
			done <- nil
		}()
		s, err := table.Load(dir)
		if err != nil {
			done <- fmt.Sprintf("table.Load(%s): %v", dir, err)
			return
		}
		sum = s.Run(&out, table.Options{})
	}()
	select {
	case v := <-done:
		if v != nil {
			t.Fatal(v)
		}
	case <-time.After(badInputTimeout):
		t.Fatalf("still running after %s: a bad table must be refused quickly", badInputTimeout)
	}
	return out.String(), sum
}

// badFails checks that the run failed and that one line of its output holds every one of want.
func badFails(t *testing.T, out string, sum table.Summary, want ...string) {
	t.Helper()
	if sum.Failed == 0 {
		t.Errorf("the run did not fail; output:\n%s", out)
	}
	if last := lastLine(out); last != fmt.Sprintf("%d passed, %d failed", sum.Passed, sum.Failed) {
		t.Errorf("last line %q is not the summary", last)
	}
	for _, line := range strings.Split(out, "\n") {
		if badContainsAll(line, want) {
			return
		}
	}
	t.Errorf("no line of the output holds all of %q; output:\n%s", want, out)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func badContainsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestBadTableMissingDefinition: a table naming a definition that exists nowhere says which table and
// which definition.
func TestBadTableMissingDefinition(t *testing.T) {
	t.Parallel()
	dir := badWrite(t, map[string]string{
		"order.yaml":          badDefinition,
		"checkout.test.yaml":  "definition: invoice\ncases:\n" + badCase,
		"order.test.yaml":     "cases:\n" + badCase,
		"nothing/x.test.yaml": "definition: order\ncases:\n" + badCase, // a folder without definitions
	})
	out, sum := badRun(t, dir)
	badFails(t, out, sum, filepath.Join(dir, "checkout.test.yaml"), `"invoice"`)
	badFails(t, out, sum, filepath.Join(dir, "nothing", "x.test.yaml"), `"order"`)
	if sum.Passed != 1 || sum.Failed != 2 {
		t.Errorf("summary %+v, want the table of order to pass and both others to fail", sum)
	}
}

// TestBadTableMissingSibling: a table without `definition:` tests the file next to it; when there is
// none, the error names the table and the file it looked for.
func TestBadTableMissingSibling(t *testing.T) {
	t.Parallel()
	dir := badWrite(t, map[string]string{
		"order.yaml":         badDefinition,
		"invoice.test.yaml":  "cases:\n" + badCase,
		"invoices.test.yaml": "cases:\n" + badCase,
	})
	out, sum := badRun(t, dir)
	badFails(t, out, sum, filepath.Join(dir, "invoice.test.yaml"), filepath.Join(dir, "invoice.yaml"))
	badFails(t, out, sum, filepath.Join(dir, "invoices.test.yaml"), filepath.Join(dir, "invoices.yaml"))
}

// TestBadTableInvalidDefinition: a table whose definition is invalid says so, with the definition's
// own errors at their place.
func TestBadTableInvalidDefinition(t *testing.T) {
	t.Parallel()
	dir := badWrite(t, map[string]string{
		"order.yaml":      strings.Replace(badDefinition, "to: paid", "to: nowhere", 1),
		"order.test.yaml": "cases:\n" + badCase,
	})
	out, sum := badRun(t, dir)
	badFails(t, out, sum, filepath.Join(dir, "order.yaml")+":", `"nowhere"`)
	badFails(t, out, sum, filepath.Join(dir, "order.test.yaml"), "invalid")
}

// TestBadTableUnknownState: a case naming a state the definition does not have fails, naming the
// table, the case and the state.
func TestBadTableUnknownState(t *testing.T) {
	t.Parallel()
	dir := badWrite(t, map[string]string{
		"order.yaml": badDefinition,
		"order.test.yaml": "cases:\n" + badCase +
			"  - name: starting nowhere\n    given: {state: nowhere}\n    when: {event: pay}\n    then: {state: paid}\n" +
			"  - name: ending nowhere\n    given: {ctx: {amount: 1.0}}\n    when: {event: pay, payload: {amount: 1.0}}\n    then: {state: elsewhere}\n",
	})
	out, sum := badRun(t, dir)
	file := filepath.Join(dir, "order.test.yaml")
	badFails(t, out, sum, file, "starting nowhere")
	badFails(t, out, sum, `"nowhere"`, "not a state")
	badFails(t, out, sum, file, "ending nowhere")
	badFails(t, out, sum, `then.state: "elsewhere" is not a state of order`)
	if sum.Passed != 1 || sum.Failed != 2 {
		t.Errorf("summary %+v, want 1 passed, 2 failed", sum)
	}
}

// TestBadTableHostileFiles: tables that are malformed, huge, deeply nested or alias bombs are refused
// quickly with an error naming the table; the good table next to them still runs.
func TestBadTableHostileFiles(t *testing.T) {
	t.Parallel()
	var bomb strings.Builder // the billion laughs, in a case's given.ctx
	bomb.WriteString("definition: order\ncases:\n  - name: bomb\n    given:\n      ctx:\n")
	bomb.WriteString("        l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&bomb, "        l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				bomb.WriteString(", ")
			}
			fmt.Fprintf(&bomb, "*l%d", i-1)
		}
		bomb.WriteString("]\n")
	}
	bomb.WriteString("    then: {state: paid}\n")
	for name, tt := range map[string]struct {
		data string
		want []string
	}{
		"malformed":   {"definition: order\ncases:\n  - name: [unclosed\n", []string{"invalid YAML"}},
		"huge":        {"definition: order\ncases: []\n# " + strings.Repeat("x", 10<<20) + "\n", []string{"bytes", "limit"}},
		"deep":        {"definition: order\ncases: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n", []string{"invalid YAML", "depth"}},
		"deep ctx":    {"definition: order\ncases:\n  - name: deep\n    given: {ctx: " + strings.Repeat("{a: ", 100000) + "1" + strings.Repeat("}", 100000) + "}\n    then: {}\n", []string{"invalid YAML", "depth"}},
		"bomb":        {bomb.String(), []string{"expands to more than"}},
		"case bomb":   {"definition: order\ncases:\n  - &c0 {name: same, then: {state: paid}}\n" + strings.Repeat("  - *c0\n", 100000), []string{"already named"}},
		"empty":       {"", []string{"empty"}},
		"not a table": {"- a\n- b\n", []string{"must be a mapping"}},
		"no cases":    {"definition: order\n", []string{"cases"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := badWrite(t, map[string]string{
				"order.yaml":      badDefinition,
				"order.test.yaml": "cases:\n" + badCase,
				"bad.test.yaml":   tt.data,
			})
			start := time.Now()
			out, sum := badRun(t, dir)
			t.Logf("%d bytes refused in %s", len(tt.data), time.Since(start))
			badFails(t, out, sum, append([]string{filepath.Join(dir, "bad.test.yaml") + ":"}, tt.want...)...)
			if sum.Passed != 1 {
				t.Errorf("summary %+v: the good table should still pass", sum)
			}
		})
	}
}

// TestBadTableNoTables: a folder without tables is one failure naming the folder.
func TestBadTableNoTables(t *testing.T) {
	t.Parallel()
	dir := badWrite(t, map[string]string{"order.yaml": badDefinition, "testdata/old.test.yaml": "cases: []\n"})
	out, sum := badRun(t, dir)
	badFails(t, out, sum, dir, "no transition tables")
}
