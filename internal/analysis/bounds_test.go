package analysis

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/parser"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// bounded runs f and fails when it takes longer or allocates more than a validation may.
func bounded(t *testing.T, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if took > 2*time.Second {
		t.Errorf("took %v", took)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("allocated %d MB", alloc>>20)
	}
	t.Logf("%v, %d kB", took, (after.TotalAlloc-before.TotalAlloc)>>10)
}

// TestHugeEnum: an enum of 10,000 values costs one cell for the values no guard names, not one each.
func TestHugeEnum(t *testing.T) {
	var strs, ints []any
	for i := range 10000 {
		strs = append(strs, fmt.Sprintf("v%05d", i))
		ints = append(ints, i*2)
	}
	ctx := schema.ObjectOf(
		&schema.Field{Name: "s", Type: &schema.Type{Kind: schema.String, Enum: strs}},
		&schema.Field{Name: "i", Type: &schema.Type{Kind: schema.Int, Enum: ints}},
	)
	var list []string
	for i := range 500 {
		list = append(list, fmt.Sprintf("%q", strs[i*20]))
	}
	h := handler(`ctx.s in [`+strings.Join(list, ", ")+`]`, `ctx.s == "v00000"`, "ctx.i > 5 && ctx.i < 6", "ctx.i >= 19999")
	bounded(t, func() {
		got := summary(Analyze(h, Env{Context: ctx}))
		if want := `2 shadowed; 3 unsatisfiable; 4 unsatisfiable; 0 not_exhaustive [ctx.i == 0 ctx.s == "v00001"]`; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

// TestDeepNesting: a thousand nested negations, conjunctions and disjunctions.
func TestDeepNesting(t *testing.T) {
	nots := strings.Repeat("!(", 1000) + "ctx.n > 1 && ctx.n < 0" + strings.Repeat(")", 1000)
	var and, or strings.Builder
	for i := range 300 {
		fmt.Fprintf(&and, "(ctx.n != %d && ", i)
		fmt.Fprintf(&or, "(ctx.n == %d || ", i)
	}
	and.WriteString("ctx.n < 0" + strings.Repeat(")", 300))
	or.WriteString("ctx.n < 0" + strings.Repeat(")", 300))
	for _, tt := range []struct {
		name  string
		guard []string
		want  string
	}{
		{"not", []string{nots, ""}, "1 unsatisfiable"}, // an even number of negations
		{"and", []string{and.String(), "ctx.n >= 0"}, ""},
		{"or", []string{or.String(), "ctx.n >= 0 && ctx.n < 300"}, "2 shadowed; 0 not_exhaustive [ctx.n == 300]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bounded(t, func() {
				if got := summary(Analyze(handler(tt.guard...), testEnv)); got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		})
	}
}

// TestExponential: guards whose normal form is exponential hit the bound and report nothing, in
// bounded time and memory.
func TestExponential(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		if i > 0 {
			b.WriteString(" && ")
		}
		fmt.Fprintf(&b, "(ctx.n != %d || ctx.amount != %d.5)", i, i)
	}
	guard := b.String()
	bounded(t, func() {
		if got := Analyze(handler(guard, guard, "!("+guard+")"), testEnv); len(got) != 0 {
			t.Errorf("findings past the bound: %v", got)
		}
	})
}

// TestNodeLimit: a guard of as many nodes as expr's parser takes under MaxNodes, and one beyond.
func TestNodeLimit(t *testing.T) {
	var or strings.Builder
	or.WriteString("ctx.n == 0")
	for i := 1; ; i++ {
		next := fmt.Sprintf(" || ctx.n == %d", i)
		if _, err := parser.ParseWithConfig(or.String()+next, parseConfig); err != nil {
			break
		}
		or.WriteString(next)
	}
	over := or.String() + " || ctx.n == 1"
	if _, err := parser.ParseWithConfig(over, parseConfig); err == nil || !strings.Contains(err.Error(), "maximum allowed nodes") {
		t.Fatalf("beyond the node limit: %v", err)
	}
	bounded(t, func() {
		if got := summary(Analyze(handler(or.String(), "ctx.n == 7", "ctx.n > 100000"), testEnv)); got != "2 shadowed; 0 not_exhaustive [ctx.n == 100000]" {
			t.Errorf("at the node limit: %q", got)
		}
		if got := summary(Analyze(handler(over, "ctx.n == 7", ""), testEnv)); got != "" { // does not parse: unknown
			t.Errorf("beyond the node limit: %q", got)
		}
	})
}
