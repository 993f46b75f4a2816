package machine

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/analysis"
	"github.com/fsmd-io/fsmd/internal/guards"
)

var updateGuards = flag.Bool("update-guards", false, "rewrite the golden findings of testdata/guards")

// TestGuardFindings validates each definition of testdata/guards and compares every diagnostic,
// "file:line:col: severity: message", with its .golden file: the findings of guard analysis where
// the comments of the definitions say, and nothing where they say it is unknown.
func TestGuardFindings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "guards", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no definitions in testdata/guards: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, diags := Parse(file, data)
			var b strings.Builder
			for _, d := range diags {
				b.WriteString(d.String() + "\n")
				if d.Message == "" || strings.Contains(d.Message, "\n") {
					t.Errorf("a finding is one line: %q", d.Message)
				}
			}
			got := b.String()
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *updateGuards {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("diagnostics of %s (go test -run TestGuardFindings -update-guards rewrites them):\ngot:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

// TestGuardFindingKinds: each finding carries its kind, and the severity the kind has.
func TestGuardFindingKinds(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "guards", "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, diags := Parse("spec.yaml", data)
	kinds := map[string]string{}
	for _, d := range diags {
		kinds[d.Kind] += string(d.Severity) + " "
	}
	want := map[string]string{
		analysis.Unsatisfiable: "error ",
		analysis.Shadowed:      "warning ",
		analysis.NotExhaustive: "warning warning warning ",
	}
	for k, v := range want {
		if kinds[k] != v {
			t.Errorf("kind %s: severities %q, want %q", k, kinds[k], v)
		}
	}
	if len(kinds) != len(want) {
		t.Errorf("kinds %v, want only %v", kinds, want)
	}
}

// TestAnalysisLimits: the analysis reads every guard that loads, so its limits are not below those
// of internal/guards.
func TestAnalysisLimits(t *testing.T) {
	if analysis.MaxNodes < guards.MaxNodes || analysis.MaxSourceBytes < guards.MaxSourceBytes {
		t.Errorf("analysis limits %d nodes, %d bytes; guards load %d, %d", analysis.MaxNodes, analysis.MaxSourceBytes, guards.MaxNodes, guards.MaxSourceBytes)
	}
}
