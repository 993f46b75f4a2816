package table_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/table"
)

// ticket has two timers on one state, so that advance must fire them in deadline order, and fields
// of each scalar type a table may write.
const ticket = `name: ticket
initial: open
context:
  code: string
  due: time
  pings: int
  log: [string]
states:
  open:
    on:
      ping:
        to: open
        set: {pings: ctx.pings + 1}
      remind:
        to: reminded
        set: {log: 'concat(ctx.log, ["remind"])'}
      close: closed
    timers:
      - {after: 48h, event: close}
      - {after: 24h, event: remind}
  reminded:
    on:
      close:
        to: closed
        set: {log: 'concat(ctx.log, ["close"])'}
    timers:
      - {at: ctx.due, event: close}
  closed: {final: true}
`

func runTable(t *testing.T, cases string, o table.Options) (string, table.Summary) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"ticket.yaml": ticket, "ticket.test.yaml": "cases:\n" + cases} {
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

func TestTableSemantics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cases string
		passed      int
		out         string // a line the output must hold, for failures
	}{
		{"a date-like text stays a string, as in JSON", `
  - name: code
    given: {ctx: {code: 2026-01-01}}
    when: {event: ping}
    then: {ctx: {code: 2026-01-01, pings: 1}}
`, 1, ""},
		{"a time field wants RFC 3339, as the API does", `
  - name: due
    given: {ctx: {due: 2026-01-01}}
    then: {state: open}
`, 0, `given.ctx.due: expected time (RFC 3339, e.g. 2026-01-02T15:04:05Z), got "2026-01-01"`},
		{"advance fires due timers in deadline order, each at its deadline", `
  - name: order
    given: {now: 2026-01-01T00:00:00Z, ctx: {due: 2026-01-02T12:00:00Z}}
    when: {advance: 72h}
    then: {state: closed, ctx: {log: [remind, close]}}
`, 1, ""},
		{"a deadline already past fires a second after entering", `
  - name: overdue
    given: {state: reminded, now: 2026-01-02T00:00:00Z, ctx: {due: 2026-01-01T00:00:00Z}}
    when: [{advance: 1s}, {event: close}]
    then: {error: instance_final, state: closed, ctx: {log: [close]}}
`, 1, ""},
		{"an overdue deadline does not fire before that second", `
  - name: overdue
    given: {state: reminded, now: 2026-01-02T00:00:00Z, ctx: {due: 2026-01-01T00:00:00Z}}
    when: [{advance: 999ms}, {event: close}]
    then: {state: closed, ctx: {log: [close]}}
`, 1, ""},
		{"a self-transition restarts the state's timers", `
  - name: ping
    when: [{advance: 23h}, {event: ping}, {advance: 23h}]
    then: {state: open, ctx: {pings: 1}}
`, 1, ""},
		{"a failing case names the step, expected and got", `
  - name: wrong
    when: [{event: ping}, {event: close}]
    then: {state: open}
`, 0, "    state: expected open, got closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, sum := runTable(t, tt.cases, table.Options{})
			if sum.Passed != tt.passed || sum.Passed+sum.Failed != 1 {
				t.Errorf("passed %d, failed %d; want %d passed of 1\n%s", sum.Passed, sum.Failed, tt.passed, out)
			}
			if tt.out != "" && !strings.Contains(out, tt.out+"\n") {
				t.Errorf("output lacks %q:\n%s", tt.out, out)
			}
			if last := lastLine(out); !regexp.MustCompile(`^\d+ passed, \d+ failed$`).MatchString(last) {
				t.Errorf("last line %q", last)
			}
		})
	}
}

func TestRunMatchingNothingSaysSo(t *testing.T) {
	t.Parallel()
	out, sum := runTable(t, "  - name: a\n    then: {state: open}\n", table.Options{Run: regexp.MustCompile("zzz")})
	if sum.Passed+sum.Failed != 0 || !strings.Contains(out, `no case matches -run "zzz"`) {
		t.Errorf("summary %+v, output:\n%s", sum, out)
	}
}
