package analysis

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
)

// FuzzAnalysis analyses handlers whose guards are arbitrary text (one guard a line, "-" for an
// unguarded branch) over the schema of TestSoundness: it must never panic, must stay within its
// bounds of time, may only report findings at the guards and the handler it was given, and, when
// the guards compile, each finding must hold on random inputs as in TestSoundness.
func FuzzAnalysis(f *testing.F) {
	for _, seed := range []string{
		"ctx.x > 5 && ctx.x < 1",
		"ctx.x > 0\nctx.x > 100\n-",
		`ctx.tier == "gold"` + "\n" + `ctx.tier == "bronze"`,
		`ctx.tier in ["gold", "silver"] || !(ctx.n >= 3 ? ctx.opt == nil : ctx.s != "x")`,
		`state == "a" and not (ctx.level in [1, 2.5, -3])`,
		"ctx.n > 9223372036854775807 || ctx.n < -9223372036854775808 || ctx.x > 1e308",
		"len(ctx.s) > ctx.n + 1\nctx.opt > 2\nctx.x >= ctx.n && event.method == \"card\"",
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
		fs := Analyze(h, propEnv)
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
		if len(fs) == 0 {
			return
		}
		var p propEval
		for _, b := range h.Branches {
			if b.Guard == "" {
				return // the property test's evaluation takes guarded branches only
			}
			prog, err := guards.CompileGuard(b.Guard, guards.Env{Context: propContext, Event: propEvent})
			if err != nil {
				return
			}
			p.progs = append(p.progs, prog)
		}
		r := rand.New(rand.NewPCG(uint64(len(text)), 17))
		for _, f := range fs {
			checkFinding(t, r, h, p, f, 50)
		}
	})
}

var propEnv = Env{Context: propContext, Event: propEvent, States: propStates}
