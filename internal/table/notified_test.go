package table_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/table"
)

// door announces its transitions to two webhooks: every transition to "audit", and the openings
// (including the one its timer makes) to "alarm".
const door = `name: door
initial: closed
states:
  closed:
    on:
      open: opened
      lock: locked
  locked:
    on:
      unlock: closed
    timers:
      - {after: 1h, event: unlock}
  opened:
    on:
      close: closed
notify:
  - {name: audit, url: 'https://audit.example/in'}
  - {name: alarm, url: 'https://alarm.example/in', states: [opened]}
`

func runDoor(t *testing.T, cases string, o table.Options) (string, table.Summary) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"door.yaml": door, "door.test.yaml": "cases:\n" + cases} {
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

// TestThenNotified: then.notified lists the webhooks of every transition the case took, in
// order, timers included; [] says none; left out, it is not compared.
func TestThenNotified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cases string
		passed      int
		out         string // a line the output must hold, for failures
	}{
		{"one step, two webhooks in the order of notify", `
  - name: open
    when: {event: open}
    then: {state: opened, notified: [audit, alarm]}
`, 1, ""},
		{"a filter leaves a webhook out", `
  - name: lock
    when: {event: lock}
    then: {state: locked, notified: [audit]}
`, 1, ""},
		{"every transition of a step list, timers included", `
  - name: lock, wait, open
    when:
      - {event: lock}
      - {advance: 2h}
      - {event: open}
    then: {state: opened, notified: [audit, audit, audit, alarm]}
`, 1, ""},
		{"[] says no transition notified", `
  - name: refused
    when: {event: close}
    then: {error: invalid_transition, notified: []}
`, 1, ""},
		{"a refused step stops the list: what came before counts", `
  - name: lock then refused
    when:
      - {event: lock}
      - {event: open}
    then: {error: invalid_transition, notified: [audit]}
`, 1, ""},
		{"left out, nothing is compared", `
  - name: open
    when: {event: open}
    then: {state: opened}
`, 1, ""},
		{"a wrong list fails with both lists", `
  - name: open
    when: {event: open}
    then: {state: opened, notified: [alarm, audit]}
`, 0, "notified: expected [alarm, audit], got [audit, alarm]"},
		{"an empty list fails when a webhook was notified", `
  - name: open
    when: {event: open}
    then: {notified: []}
`, 0, "notified: expected [], got [audit, alarm]"},
		{"a name the definition lacks is reported as such", `
  - name: open
    when: {event: open}
    then: {notified: [audit, alarms]}
`, 0, `then.notified: "alarms" is not a webhook of door (its notify section names audit, alarm)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, sum := runDoor(t, tt.cases, table.Options{})
			if sum.Passed != tt.passed {
				t.Errorf("passed = %d, want %d\n%s", sum.Passed, tt.passed, out)
			}
			if tt.out != "" && !strings.Contains(out, tt.out) {
				t.Errorf("output lacks %q:\n%s", tt.out, out)
			}
		})
	}
}

// TestThenNotifiedTrace: -v shows which webhooks each transition notifies.
func TestThenNotifiedTrace(t *testing.T) {
	t.Parallel()
	out, sum := runDoor(t, `
  - name: open and close
    when: [{event: open}, {event: close}]
    then: {state: closed}
`, table.Options{Verbose: true})
	if sum.Passed != 1 {
		t.Fatalf("passed = %d\n%s", sum.Passed, out)
	}
	for _, line := range []string{"open: closed -> opened (notifies audit, alarm)", "close: opened -> closed (notifies audit)"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
}

// TestThenNotifiedParse: then.notified must be a list of names.
func TestThenNotifiedParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ then, want string }{
		{"{notified: audit}", "then.notified must be a list, not \"audit\""},
		{"{notified: [[audit]]}", "a then.notified entry must be a single value, not a list"},
	} {
		_, diags := table.Parse("t.test.yaml", []byte("cases:\n  - name: x\n    when: {event: open}\n    then: "+tt.then+"\n"))
		if diags.Errors() != 1 || !strings.Contains(diags[0].Message, tt.want) {
			t.Errorf("then %s: diagnostics %v, want %q", tt.then, diags, tt.want)
		}
	}
}
