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
	{Kind: schema.Time, Optional: true},
	{Kind: schema.String, Enum: []any{"bronze", "silver", "gold"}},
	schema.ListOf(&schema.Type{Kind: schema.Int, Optional: true}),
}

// optionalEnv is benchEnv with optional fields and enumerations (optional.go, enum.go), chosen by
// the high bit of the fuzzer's kind byte; optionalScope has them nil.
func optionalEnv() Env {
	optTime := &schema.Type{Kind: schema.Time, Optional: true}
	ctx := schema.ObjectOf(
		&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)},
		&schema.Field{Name: "paid_at", Type: optTime},
		&schema.Field{Name: "count", Type: &schema.Type{Kind: schema.Int, Optional: true}},
		&schema.Field{Name: "tier", Type: &schema.Type{Kind: schema.String, Enum: []any{"bronze", "silver", "gold"}}},
		&schema.Field{Name: "level", Type: &schema.Type{Kind: schema.Int, Enum: []any{1, 2, 3}}},
		&schema.Field{Name: "scores", Type: schema.ListOf(&schema.Type{Kind: schema.Int, Optional: true})},
		&schema.Field{Name: "tags", Type: &schema.Type{Kind: schema.List, Elem: schema.Scalar(schema.String), Optional: true}},
		&schema.Field{Name: "address", Type: &schema.Type{Kind: schema.Object, Optional: true, Fields: []*schema.Field{
			{Name: "city", Type: schema.Scalar(schema.String)},
			{Name: "since", Type: optTime},
		}}},
	)
	return Env{Context: ctx, Event: schema.ObjectOf(&schema.Field{Name: "at", Type: optTime})}
}

func optionalScope() Scope {
	return NewScope(Vars{
		Ctx: map[string]any{"amount": 1.0, "paid_at": nil, "count": nil, "tier": "gold", "level": 1,
			"scores": []any{nil, 2}, "tags": nil, "address": nil},
		Event: map[string]any{"at": nil},
		Now:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	})
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
		{`ctx.paid_at != nil && now - ctx.paid_at > duration("1h")`, 0x80},
		{`ctx.paid_at == nil || ctx.paid_at < now`, 0x80},
		{`ctx.paid_at + duration("1h")`, 0x85},
		{`ctx.paid_at ?? now`, 0x8a},
		{`ctx.count == 3 && ctx.tier in ["gold", "platinum"]`, 0x80},
		{`ctx.address?.city == "x" && (ctx.address?.since ?? now) <= now`, 0x80},
		{`all(ctx.scores, # != nil && # > 0) && ctx.level != -1`, 0x80},
		{`let c = ctx.address; c != nil ? c.city : "none"`, 0x81},
		{`ctx.count > 0 ? "gold" : "platinum"`, 0x8b},
		{`map(ctx.scores, # ?? 0)`, 0x8c},
		{`nil`, 0x8a},
	} {
		f.Add(seed.src, seed.kind)
	}
	env, scope := benchEnv(), benchScope()
	optEnv, optScope := optionalEnv(), optionalScope()
	f.Fuzz(func(t *testing.T, src string, kind uint8) {
		want := fuzzWants[int(kind&0x7f)%len(fuzzWants)]
		env, scope := env, scope
		if kind&0x80 != 0 {
			env, scope = optEnv, optScope
		}
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
	if err == nil && want.Kind != schema.Any && (v != nil || !want.Optional) { // nil clears an optional field
		if _, err := want.Decode(v, "", schema.Options{}); err != nil {
			t.Errorf("%q: value %#v does not fit %s: %v", src, v, want, err)
		}
	}
}
