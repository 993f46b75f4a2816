package guards

import (
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// fuzzWants are the types FuzzCompile compiles against, chosen by the fuzzer's kind byte.
var fuzzWants = []*schema.Type{
	nil, // a guard
	schema.Scalar(schema.String),
	schema.Scalar(schema.Int),
	schema.Scalar(schema.Float),
	schema.Scalar(schema.Bool),
	schema.Scalar(schema.Time),
	schema.Scalar(schema.Duration),
	schema.ListOf(schema.Scalar(schema.String)),
	schema.ObjectOf(&schema.Field{Name: "tier", Type: schema.Scalar(schema.String)}),
	schema.Scalar(schema.Any),
}

// fuzzTimeout bounds compiling and evaluating one expression: both are bounded (source size, AST
// nodes, the VM's memory budget), so anything near it is a hang.
const fuzzTimeout = 5 * time.Second

// FuzzCompile: compiling any source against a typed environment never panics, and a program that
// compiles evaluates against sample values, to a value of its type or an error, quickly and without
// panicking.
func FuzzCompile(f *testing.F) {
	for _, seed := range []struct {
		src  string
		kind uint8
	}{
		{benchGuard, 0},
		{`event.amount >= ctx.amount && event.method in ["card", "sepa"]`, 0},
		{`ctx.customer.tier == "gold" || ctx.attempts >= 3`, 0},
		{`state == "created" && instance.version > 0 && now > instance.created_at`, 0},
		{`ctx.tags[5] == "x"`, 0},
		{`len(ctx.tags) > 0 and ctx.tags[0] startsWith "p"`, 0},
		{`all(ctx.tags, # != "")`, 0},
		{`ctx.paid + event.amount`, 3},
		{`ctx.attempts + 1`, 2},
		{`ctx.attempts / 0`, 2},
		{`ctx.attempts % 0`, 2},
		{`int("x")`, 2},
		{`concat(ctx.tags, ["paid"])`, 7},
		{`map(1..1000000, # * 2)`, 9},
		{`repeat("x", 1000000000)`, 1},
		{`1..1000000000`, 9},
		{`now + duration("72h")`, 5},
		{`instance.entered_at + duration("3d")`, 5},
		{`date("2026-01-01T00:00:00Z")`, 5},
		{`duration("1h") * 2`, 6},
		{`{"tier": ctx.customer.tier}`, 8},
		{`ctx.customer`, 8},
		{`now()`, 5},
		{`let x = 1; x + ctx.attempts`, 2},
		{`ctx.x`, 0},
		{`"a" + 1`, 1},
		{`(((((((((((1)))))))))))`, 2},
		{`[[[[[[[[[[[]]]]]]]]]]]`, 9},
		{`ctx?.customer?.tier ?? "none"`, 1},
		{`event.amount > 0 ? "big" : "small"`, 1},
		{`toJSON(ctx)`, 1},
		{`fromJSON("{\"a\": [1, 2]}")`, 9},
		{`reduce(1..100, #acc + #, 0)`, 2},
		{"\x00\xff", 0},
		{``, 0},
	} {
		f.Add(seed.src, seed.kind)
	}
	env := benchEnv()
	scope := benchScope()
	f.Fuzz(func(t *testing.T, src string, kind uint8) {
		want := fuzzWants[int(kind)%len(fuzzWants)]
		done := make(chan struct{})
		go func() {
			defer close(done)
			fuzzCompileAndRun(t, src, want, env, scope)
		}()
		select {
		case <-done:
		case <-time.After(fuzzTimeout):
			t.Fatalf("%q: compiling and evaluating still running after %s", src, fuzzTimeout)
		}
	})
}

func fuzzCompileAndRun(t *testing.T, src string, want *schema.Type, env Env, scope Scope) {
	var p *Program
	var err error
	if want == nil {
		p, err = CompileGuard(src, env)
	} else {
		p, err = CompileValue(src, env, want)
	}
	if err != nil {
		if _, ok := err.(*Error); !ok {
			t.Errorf("compile error is a %T, not a *guards.Error: %v", err, err)
		}
		return
	}
	if want == nil {
		_, _ = p.Bool(scope)
		return
	}
	v, err := p.Value(scope)
	if err == nil && want.Kind != schema.Any {
		if _, err := want.Decode(v, "", schema.Options{}); err != nil {
			t.Errorf("%q: value %#v does not fit %s: %v", src, v, want, err)
		}
	}
}
