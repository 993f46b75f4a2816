package machine

import (
	"testing"

	"github.com/fsmd-io/fsmd/internal/source"
)

// BenchmarkValidateDefinitions loads and validates every example of definitions/, guard analysis
// included (issue 17 §2): what `fsmd validate definitions/` costs. The target is under 200 ms per op.
func BenchmarkValidateDefinitions(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		set, diags, err := Load("../../definitions")
		if err != nil {
			b.Fatal(err)
		}
		if diags.Errors() > 0 || len(set.ByName) == 0 {
			b.Fatalf("%d errors, %d definitions: %v", diags.Errors(), len(set.ByName), diags)
		}
	}
}

// BenchmarkAnalyzeGuards is the share of guard analysis alone in BenchmarkValidateDefinitions: every
// handler of definitions/ analysed once per op.
func BenchmarkAnalyzeGuards(b *testing.B) {
	set, _, err := Load("../../definitions")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, def := range set.ByName {
			analyzeGuards(def, &source.Reporter{})
		}
	}
}
