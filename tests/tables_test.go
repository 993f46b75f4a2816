package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/table"
)

// definitionsDir is the folder of example definitions, from this package's folder (go test runs a
// package's tests in its own folder, wherever it was started).
const definitionsDir = "../definitions"

// TestDefinitionTables runs every case of every transition table under definitions/ with the runner
// of `fsmd test`, one subtest per table file and one per case, so that
//
//	go test ./tests -run 'TestDefinitionTables/order.test.yaml/paying'
//
// picks cases as `fsmd test -run` does.
func TestDefinitionTables(t *testing.T) {
	t.Parallel()
	suite := loadTables(t)
	for _, d := range suite.Problems {
		t.Errorf("%s", d)
	}
	cov := table.NewCoverage()
	t.Cleanup(func() { logCoverage(t, cov) }) // after every parallel case has run
	for _, tb := range suite.Tables {
		t.Run(filepath.Base(tb.File), func(t *testing.T) {
			t.Parallel()
			for _, c := range tb.Cases {
				t.Run(c.Name, func(t *testing.T) {
					t.Parallel()
					if res := table.Run(tb.Def, c, cov); !res.Passed() {
						t.Error(describeFailure(tb, res))
					}
				})
			}
		})
	}
}

// TestDefinitionCoverage requires every example definition to have 100% transition coverage: each
// (state, event, branch) is taken by some case of its table. Guards not seen both true and false are
// logged, not failed.
func TestDefinitionCoverage(t *testing.T) {
	t.Parallel()
	set, _, err := machine.Load(definitionsDir)
	if err != nil {
		t.Fatalf("machine.Load(%s): %v", definitionsDir, err)
	}
	suite := loadTables(t)
	cov := table.NewCoverage()
	for _, tb := range suite.Tables {
		for _, c := range tb.Cases {
			table.Run(tb.Def, c, cov)
		}
	}
	gaps := map[string]table.Gaps{}
	for _, g := range cov.Gaps() {
		gaps[filepath.Clean(g.Definition.File)] = g
	}
	// Every definition file, valid or not: one that no case ran against has no coverage at all.
	for _, file := range set.Files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			g, ok := gaps[filepath.Clean(file)]
			if !ok {
				t.Fatalf("%s: no case ran against this definition: it needs a valid definition and a transition table", file)
			}
			for _, u := range g.Untaken {
				t.Errorf("%s: not taken: %s", g.Definition.Name, u)
			}
			if len(g.Untaken) > 0 {
				t.Errorf("%s: %d of %d transitions taken; every example needs 100%%",
					g.Definition.Name, g.Transitions-len(g.Untaken), g.Transitions)
			}
			for _, o := range g.OneWay {
				t.Logf("%s: guard %s", g.Definition.Name, o)
			}
		})
	}
}

// TestDefinitionsValidate requires the examples to load with no error and no warning.
func TestDefinitionsValidate(t *testing.T) {
	t.Parallel()
	set, diags, err := machine.Load(definitionsDir)
	if err != nil {
		t.Fatalf("machine.Load(%s): %v", definitionsDir, err)
	}
	for _, d := range diags {
		t.Errorf("%s", d)
	}
	if len(set.ByName) == 0 {
		t.Errorf("no valid definition under %s", definitionsDir)
	}
}

// loadTables loads the transition tables of the examples, as `fsmd test definitions/` does.
func loadTables(t *testing.T) *table.Suite {
	t.Helper()
	suite, err := table.Load(definitionsDir)
	if err != nil {
		t.Fatalf("table.Load(%s): %v", definitionsDir, err)
	}
	if len(suite.Tables) == 0 && len(suite.Problems) == 0 {
		t.Fatalf("no transition tables under %s", definitionsDir)
	}
	return suite
}

// describeFailure reports a failed case as `fsmd test` does: file, case, step, expected and got, then
// what each step did.
func describeFailure(tb *table.Loaded, res *table.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: case %q", tb.File, res.Case.Line, res.Case.Name)
	if res.Step > 0 {
		st := res.Case.Steps[res.Step-1]
		fmt.Fprintf(&b, "\n    after step %d (%s, line %d):", res.Step, st, st.Line)
	}
	for _, f := range res.Failures {
		fmt.Fprintf(&b, "\n    %s", f)
	}
	if len(res.Trace) > 0 {
		b.WriteString("\n    trace:")
		for _, line := range res.Trace {
			fmt.Fprintf(&b, "\n      %s", line)
		}
	}
	return b.String()
}

// logCoverage logs the coverage of the cases that ran (see it with go test -v).
func logCoverage(t *testing.T, cov *table.Coverage) {
	var b strings.Builder
	cov.Write(&b)
	if b.Len() > 0 {
		t.Logf("\n%s", strings.TrimSuffix(b.String(), "\n"))
	}
}
