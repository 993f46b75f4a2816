package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// guardsDefinition has one finding of each kind of guard analysis.
const guardsDefinition = `name: guards
initial: open
context:
  amount: float
events:
  pay:
    method: string
states:
  open:
    on:
      check:
        - to: done
          guard: ctx.amount > 5 && ctx.amount < 1
        - to: done
      grade:
        - to: done
          guard: ctx.amount > 0
        - to: done
          guard: ctx.amount > 100
        - to: done
      pay:
        - to: done
          guard: event.method == "card"
  done: {final: true}
`

// TestValidateFindings: fsmd validate reports what guard analysis proves, at line:col, and its JSON
// carries each finding's kind, which tools match on; an unsatisfiable guard fails validation.
func TestValidateFindings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "guards.yaml")
	if err := os.WriteFile(file, []byte(guardsDefinition), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"validate", "--format", "json", dir}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("exit %d, want %d (an unsatisfiable guard is an error)\n%s%s", code, exitFailed, stdout.String(), stderr.String())
	}
	var rep struct {
		Errors      int `json:"errors"`
		Warnings    int `json:"warnings"`
		Diagnostics []struct {
			Line     int    `json:"line"`
			Column   int    `json:"column"`
			Severity string `json:"severity"`
			Kind     string `json:"kind"`
			Message  string `json:"message"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	want := []string{"13:18 error unsatisfiable", "19:18 warning shadowed", "21:7 warning not_exhaustive"}
	var got []string
	for _, d := range rep.Diagnostics {
		got = append(got, strings.Join([]string{strconv.Itoa(d.Line) + ":" + strconv.Itoa(d.Column), d.Severity, d.Kind}, " "))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") || rep.Errors != 1 || rep.Warnings != 2 {
		t.Errorf("diagnostics %q (%d errors, %d warnings), want %q\n%s", got, rep.Errors, rep.Warnings, want, stdout.String())
	}
	if !strings.Contains(stdout.String(), `event.method == \"\"`) {
		t.Errorf("the not_exhaustive finding names no witness:\n%s", stdout.String())
	}

	// The text form is the compilers' one line each, without the kind.
	stdout.Reset()
	run([]string{"validate", dir}, &stdout, &stderr)
	if !strings.Contains(stdout.String(), file+`:19:18: warning: on.grade in state "open": branch 2 is shadowed`) {
		t.Errorf("text output:\n%s", stdout.String())
	}
}
