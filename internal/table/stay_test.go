package table_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/table"
)

// desk stays in open on note (no `to`), re-enters it on reopen, and closes when its timer fires:
// 48 h after open was entered.
const desk = `name: desk
initial: open
context:
  notes: int
  log: [string]
states:
  open:
    on:
      note:
        set: {notes: ctx.notes + 1}
      reopen: open
      nudge:
        - to: closed
          guard: ctx.notes > 5
        - {}
      close:
        to: closed
        set: {log: 'concat(ctx.log, ["close"])'}
    timers:
      - {after: 48h, event: close}
  closed: {final: true}
`

func runDesk(t *testing.T, cases string, o table.Options) (string, table.Summary) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"desk.yaml": desk, "desk.test.yaml": "cases:\n" + cases} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	suite, err := table.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum := suite.Run(&out, o)
	return out.String(), sum
}

func TestTableStay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cases string
		passed      int
		out         string // a line the output must hold
	}{
		{"a stay keeps the state and applies its set", `
  - name: note
    when: {event: note}
    then: {state: open, ctx: {notes: 1}}
`, 1, ""},
		{"a stay does not put the timer off: it fires at its original deadline", `
  - name: note then wait
    given: {now: 2026-01-01T00:00:00Z}
    when: [{advance: 47h}, {event: note}, {advance: 1h}]
    then: {state: closed, ctx: {notes: 1, log: [close]}}
`, 1, ""},
		{"a re-entry still restarts the timer", `
  - name: reopen then wait
    given: {now: 2026-01-01T00:00:00Z}
    when: [{advance: 47h}, {event: reopen}, {advance: 1h}]
    then: {state: open}
`, 1, ""},
		{"-v shows the stay", `
  - name: note
    given: {now: 2026-01-01T00:00:00Z}
    when: {event: note}
    then: {state: closed}
`, 0, "    2026-01-01T00:00:00Z note: open -> open (stay)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, sum := runDesk(t, tt.cases, table.Options{Verbose: true})
			if sum.Passed != tt.passed || sum.Passed+sum.Failed != 1 {
				t.Errorf("passed %d, failed %d; want %d passed of 1\n%s", sum.Passed, sum.Failed, tt.passed, out)
			}
			if tt.out != "" && !strings.Contains(out, tt.out+"\n") {
				t.Errorf("output lacks %q:\n%s", tt.out, out)
			}
		})
	}
}

// TestCoverageStay: a stay taken counts as its branch taken; one not taken is shown as a stay.
func TestCoverageStay(t *testing.T) {
	t.Parallel()
	out, sum := runDesk(t, `
  - name: nudge stays
    when: [{event: nudge}, {event: note}]
    then: {state: open, ctx: {notes: 1}}
`, table.Options{Coverage: true})
	if sum.Failed != 0 {
		t.Fatalf("failed:\n%s", out)
	}
	for _, want := range []string{
		"coverage: desk: 2 of 5 transitions taken, 0 of 1 guards seen both true and false",
		"  desk: not taken: open --reopen[1]--> open (",
		"  desk: never true: guard of open --nudge[1]--> closed: ctx.notes > 5 (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "--note[1]") || strings.Contains(out, "--nudge[2]") {
		t.Errorf("a stay taken is reported as not taken:\n%s", out)
	}
	// Without the note case, its stay is a gap, shown as a stay.
	out, _ = runDesk(t, "  - name: reopen\n    when: {event: reopen}\n    then: {state: open}\n", table.Options{Coverage: true})
	if !strings.Contains(out, "  desk: not taken: open --note[1]--> open (stay) (") {
		t.Errorf("an untaken stay:\n%s", out)
	}
}
