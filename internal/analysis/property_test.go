package analysis

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// The schema of the property test: every kind the analysis reasons about, an enum, an optional
// value, and fields it must treat as unknown.
var (
	propTier    = &schema.Type{Kind: schema.String, Enum: []any{"gold", "silver", "bronze"}}
	propLevel   = &schema.Type{Kind: schema.Int, Enum: []any{1, 2, 3, 5, 8}}
	propOptInt  = &schema.Type{Kind: schema.Int, Optional: true}
	propContext = schema.ObjectOf(
		&schema.Field{Name: "n", Type: schema.Scalar(schema.Int)},
		&schema.Field{Name: "x", Type: schema.Scalar(schema.Float)},
		&schema.Field{Name: "s", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "b", Type: schema.Scalar(schema.Bool)},
		&schema.Field{Name: "tier", Type: propTier},
		&schema.Field{Name: "level", Type: propLevel},
		&schema.Field{Name: "opt", Type: propOptInt},
	)
	propEvent = schema.ObjectOf(
		&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)},
		&schema.Field{Name: "method", Type: schema.Scalar(schema.String)},
	)
	propStates = []string{"a", "b"}
)

// propAtoms are the comparisons guards are made of: %d, %f and %s take a constant of the pools.
var propAtoms = []string{
	"ctx.n %[1]s %[2]d", "ctx.n %[1]s %[3]v", "%[2]d %[1]s ctx.n", "ctx.x %[1]s %[3]v", "ctx.x %[1]s %[2]d",
	"ctx.level %[1]s %[2]d", "ctx.opt %[1]s %[2]d", "event.amount %[1]s %[3]v",
	`ctx.s == %[4]q`, `ctx.s != %[4]q`, `ctx.s in [%[4]q, %[5]q]`, `ctx.s not in [%[4]q]`,
	`ctx.tier == %[6]q`, `ctx.tier != %[6]q`, `ctx.tier in [%[6]q, "gold"]`, `event.method == %[4]q`,
	`state == %[7]q`, `ctx.n in [%[2]d, 3]`, `ctx.x in [%[3]v, 1]`, `ctx.level in [%[2]d, 8]`,
	"ctx.b", "!ctx.b", "ctx.b == %[8]v", "ctx.opt == nil", "ctx.opt != nil", "ctx.opt in [%[2]d]",
	"ctx.n != nil", "ctx.opt == %[3]v", "ctx.opt != %[3]v", "ctx.n == %[3]v", "ctx.s == nil",
	// unknown to the analysis
	"ctx.n + 1 %[1]s %[2]d", "ctx.x %[1]s ctx.n", "len(ctx.s) %[1]s %[2]d", "ctx.n %% 2 == 0", "true", "false",
	"event.amount >= ctx.x", "(ctx.opt ?? 0) > %[2]d",
}

var (
	propOps    = []string{"==", "!=", "<", "<=", ">", ">="}
	propInts   = []int{-1, 0, 1, 2, 3, 5, 8, 10}
	propFloats = []float64{-0.5, 0, 1, 2.5, 5, 5.5, 10}
	propStrs   = []string{"a", "b", "", "card"}
	propTiers  = []string{"gold", "silver", "bronze", "platinum"}
)

func propAtom(r *rand.Rand) string {
	f := propAtoms[r.IntN(len(propAtoms))]
	s := fmt.Sprintf(f, propOps[r.IntN(len(propOps))], propInts[r.IntN(len(propInts))], propFloat(r),
		propStrs[r.IntN(len(propStrs))], propStrs[r.IntN(len(propStrs))], propTiers[r.IntN(len(propTiers))],
		propStates[r.IntN(2)], r.IntN(2) == 0)
	if i := strings.Index(s, "%!(EXTRA"); i >= 0 { // formats that use fewer constants leave a tail
		s = s[:i]
	}
	return s
}

func propFloat(r *rand.Rand) string {
	f := propFloats[r.IntN(len(propFloats))]
	s := fmt.Sprint(f)
	if !strings.ContainsAny(s, ".e") {
		s += ".0" // a float literal, not an int
	}
	return s
}

func propGuard(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return propAtom(r)
	}
	switch r.IntN(5) {
	case 0:
		return "!(" + propGuard(r, depth-1) + ")"
	case 1:
		return "(" + propGuard(r, depth-1) + " || " + propGuard(r, depth-1) + ")"
	case 2:
		return "(" + propGuard(r, depth-1) + " ? " + propGuard(r, depth-1) + " : " + propGuard(r, depth-1) + ")"
	}
	return "(" + propGuard(r, depth-1) + " && " + propGuard(r, depth-1) + ")"
}

// propInput draws an input from the types, the constants of the guards and their neighbours.
func propInput(r *rand.Rand) (ctx, event map[string]any, state string) {
	ints := func() int {
		c := propInts[r.IntN(len(propInts))]
		return c + r.IntN(3) - 1
	}
	floats := func() float64 {
		c := propFloats[r.IntN(len(propFloats))]
		return c + []float64{-0.25, 0, 0, 0.25}[r.IntN(4)]
	}
	strs := []string{"a", "b", "", "card", "zz"}
	ctx = map[string]any{
		"n": ints(), "x": floats(), "s": strs[r.IntN(len(strs))], "b": r.IntN(2) == 0,
		"tier":  propTier.Enum[r.IntN(len(propTier.Enum))],
		"level": propLevel.Enum[r.IntN(len(propLevel.Enum))],
		"opt":   nil,
	}
	if r.IntN(2) == 0 {
		ctx["opt"] = ints()
	}
	event = map[string]any{"amount": floats(), "method": strs[r.IntN(len(strs))]}
	return ctx, event, propStates[r.IntN(2)]
}

type propEval struct {
	progs []*guards.Program
}

// eval returns each guard's value on an input, or an error.
func (p propEval) eval(ctx, event map[string]any, state string) ([]bool, []error) {
	scope := guards.NewScope(guards.Vars{Ctx: ctx, Event: event, State: state, Now: time.Unix(0, 0)})
	out, errs := make([]bool, len(p.progs)), make([]error, len(p.progs))
	for i, prog := range p.progs {
		out[i], errs[i] = prog.Bool(scope)
	}
	return out, errs
}

// TestSoundness draws random handlers over the schema above, analyses them, and evaluates their
// guards with expr (through internal/guards, as the engine does) on many random inputs: a guard
// reported unsatisfiable never holds, a branch reported shadowed is never taken, and a witness of
// not_exhaustive makes every guard false.
func TestSoundness(t *testing.T) {
	handlers, samples := 3000, 300
	if testing.Short() {
		handlers = 300
	}
	seed := uint64(17)
	if s, err := strconv.ParseUint(os.Getenv("SOUNDNESS_SEED"), 10, 64); err == nil {
		seed = s // SOUNDNESS_SEED=n go test -run TestSoundness: other handlers
	}
	r := rand.New(rand.NewPCG(seed, 2))
	env := propEnv
	genv := guards.Env{Context: propContext, Event: propEvent}
	counts := map[string]int{}
	skipped := 0
	for range handlers {
		h := Handler{}
		var p propEval
		for range 1 + r.IntN(4) {
			src := propGuard(r, 3)
			prog, err := guards.CompileGuard(src, genv)
			if err != nil {
				skipped++
				break
			}
			p.progs = append(p.progs, prog)
			h.Branches = append(h.Branches, Branch{Guard: src})
		}
		if len(p.progs) != len(h.Branches) {
			continue
		}
		for _, f := range Analyze(h, env) {
			counts[f.Kind]++
			checkFinding(t, r, h, p, f, samples)
		}
	}
	t.Logf("findings %v; %d handlers skipped (a guard did not compile)", counts, skipped)
	for _, k := range []string{Unsatisfiable, Shadowed, NotExhaustive} {
		if counts[k] == 0 {
			t.Errorf("no %s finding among the random handlers: the test proves nothing about it", k)
		}
	}
}

func checkFinding(t *testing.T, r *rand.Rand, h Handler, p propEval, f Finding, samples int) {
	t.Helper()
	for range samples {
		ctx, event, state := propInput(r)
		if f.Kind == NotExhaustive {
			for _, b := range f.Witness {
				setPath(ctx, event, &state, b)
			}
		}
		got, errs := p.eval(ctx, event, state)
		switch f.Kind {
		case Unsatisfiable:
			if got[f.Branch] {
				t.Fatalf("%q reported unsatisfiable holds for ctx %v, event %v, state %q", h.Branches[f.Branch].Guard, ctx, event, state)
			}
		case Shadowed:
			taken := got[f.Branch] && errs[f.Branch] == nil
			for j := range f.Branch {
				taken = taken && !got[j] && errs[j] == nil
			}
			if taken {
				t.Fatalf("branch %d reported shadowed is taken for ctx %v, event %v, state %q: %q", f.Branch+1, ctx, event, state, guardsOf(h))
			}
		case NotExhaustive:
			for j := range got {
				if got[j] || errs[j] != nil {
					t.Fatalf("the witness %v of not_exhaustive leaves guard %d %q %v (error %v) for ctx %v, event %v, state %q",
						f.Witness, j+1, h.Branches[j].Guard, got[j], errs[j], ctx, event, state)
				}
			}
		}
	}
}

func guardsOf(h Handler) []string {
	var out []string
	for _, b := range h.Branches {
		out = append(out, b.Guard)
	}
	return out
}

// setPath writes a witness's value into the input, as the typed value the engine would hold.
func setPath(ctx, event map[string]any, state *string, b Binding) {
	v := b.Value
	if i, ok := v.(int64); ok {
		v = int(i)
	}
	root, name, _ := strings.Cut(b.Path, ".")
	switch root {
	case "ctx":
		ctx[name] = v
		if b.NotNil && ctx[name] == nil {
			ctx[name] = 1
		}
	case "event":
		event[name] = v
	case "state":
		*state = v.(string)
	}
}
