package analysis

import (
	"strings"
	"testing"
	"time"
)

// FuzzAnalysis analyses handlers whose guards are arbitrary text (one guard a line, "-" for an
// unguarded branch): it must never panic, must stay within its bounds of time, and may only report
// findings at the guards and the handler it was given.
func FuzzAnalysis(f *testing.F) {
	for _, seed := range []string{
		"ctx.amount > 5 && ctx.amount < 1",
		"ctx.amount > 0\nctx.amount > 100\n-",
		`ctx.tier == "gold"` + "\n" + `ctx.tier == "bronze"`,
		`ctx.tier in ["gold", "silver"] || !(ctx.n >= 3 ? ctx.paid_at == nil : ctx.note != "x")`,
		`state == "open" and not (ctx.level in [1, 2.5, -3])`,
		"ctx.n > 9223372036854775807 || ctx.n < -9223372036854775808 || ctx.amount > 1e308",
		"len(ctx.tier) > ctx.n + 1\nctx.customer.tier == nil",
		strings.Repeat("!(", 200) + "ctx.n > 1" + strings.Repeat(")", 200),
		"let ctx = {n: 1}; ctx.n > 2\nctx?.n > 1\nctx[\"n\"] == 2\n$env.ctx.n > 1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		h := handler()
		for i, g := range strings.Split(text, "\n") {
			if i == 8 {
				break
			}
			if g == "-" {
				g = ""
			}
			h.Branches = append(h.Branches, handler(g).Branches[0])
			h.Branches[i].Pos.Line = i + 1
		}
		start := time.Now()
		fs := Analyze(h, testEnv)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%q took %v", text, took)
		}
		for _, f := range fs {
			switch {
			case f.Kind == NotExhaustive && f.Pos != h.Pos:
				t.Errorf("%s at %v, not at the handler", f.Kind, f.Pos)
			case f.Kind != NotExhaustive && (f.Branch < 0 || f.Branch >= len(h.Branches) || h.Branches[f.Branch].Guard == "" || f.Pos != h.Branches[f.Branch].Pos):
				t.Errorf("%s of branch %d at %v", f.Kind, f.Branch, f.Pos)
			case f.Message == "" || strings.Contains(f.Message, "\n"):
				t.Errorf("message %q", f.Message)
			}
		}
	})
}
