package guards

import (
	"strconv"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// benchEnv is the environment of a typical order guard.
func benchEnv() Env {
	ctx := schema.ObjectOf(
		&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)},
		&schema.Field{Name: "paid", Type: schema.Scalar(schema.Float)},
		&schema.Field{Name: "attempts", Type: schema.Scalar(schema.Int)},
		&schema.Field{Name: "tags", Type: schema.ListOf(schema.Scalar(schema.String))},
		&schema.Field{Name: "customer", Type: schema.ObjectOf(
			&schema.Field{Name: "tier", Type: schema.Scalar(schema.String)},
		)},
	)
	event := schema.ObjectOf(
		&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)},
		&schema.Field{Name: "method", Type: schema.Scalar(schema.String)},
	)
	return Env{Context: ctx, Event: event}
}

const benchGuard = `event.amount >= ctx.amount && event.method in ["card", "sepa"] && ctx.customer.tier != "blocked"`

// BenchmarkCompileGuard compiles a different guard each time, as a definition's parser does: an
// expression compiled before against the same environment is found in the cache instead.
func BenchmarkCompileGuard(b *testing.B) {
	env := benchEnv()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := CompileGuard(benchGuard+" && ctx.attempts < "+strconv.Itoa(i), env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileGuardRepeated compiles the same guard again: what a definition that repeats an
// expression pays for the repetition.
func BenchmarkCompileGuardRepeated(b *testing.B) {
	env := benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileGuard(benchGuard, env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileValue(b *testing.B) {
	env := benchEnv()
	want := schema.ListOf(schema.Scalar(schema.String))
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := CompileValue(`concat(ctx.tags, ["`+strconv.Itoa(i)+`"])`, env, want); err != nil {
			b.Fatal(err)
		}
	}
}

func benchScope() Scope {
	return NewScope(Vars{
		Ctx: map[string]any{"amount": 10.0, "paid": 0.0, "attempts": 1, "tags": []any{"new"},
			"customer": map[string]any{"tier": "gold"}},
		Event: map[string]any{"amount": 12.5, "method": "card"},
		State: "created",
		Now:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	})
}

// BenchmarkEvalGuard measures one guard evaluation against a scope built once.
func BenchmarkEvalGuard(b *testing.B) {
	p, err := CompileGuard(benchGuard, benchEnv())
	if err != nil {
		b.Fatal(err)
	}
	s := benchScope()
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Bool(s)
		if err != nil || !ok {
			b.Fatalf("got %v, %v", ok, err)
		}
	}
}

// BenchmarkEvalValue measures one `set` evaluation, with the conversion to the field's type.
func BenchmarkEvalValue(b *testing.B) {
	p, err := CompileValue(`ctx.paid + event.amount`, benchEnv(), schema.Scalar(schema.Float))
	if err != nil {
		b.Fatal(err)
	}
	s := benchScope()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Value(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewScope measures the environment built once per event.
func BenchmarkNewScope(b *testing.B) {
	v := Vars{Ctx: map[string]any{"amount": 10.0}, Event: map[string]any{}, State: "created"}
	b.ReportAllocs()
	for b.Loop() {
		_ = NewScope(v)
	}
}

// BenchmarkEvalLoop measures a guard whose predicate runs 1,000 times: what the time budget's
// check costs each iteration (meter.go, tick).
func BenchmarkEvalLoop(b *testing.B) {
	p, err := CompileGuard(`count(ctx.tags, {# != "blocked"}) == 1000`, benchEnv())
	if err != nil {
		b.Fatal(err)
	}
	tags := make([]any, 1000)
	for i := range tags {
		tags[i] = "t" + strconv.Itoa(i)
	}
	s := NewScope(Vars{Ctx: map[string]any{"tags": tags}, Budget: time.Hour}) // shared by every run
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Bool(s)
		if err != nil || !ok {
			b.Fatalf("got %v, %v", ok, err)
		}
	}
}

// BenchmarkCompileGuardEnum compiles a comparison with a field of 10,000 values: the enumeration's
// set is built once per environment, so each literal costs a lookup (enum.go).
func BenchmarkCompileGuardEnum(b *testing.B) {
	values := make([]any, 10000)
	for i := range values {
		values[i] = "v" + strconv.Itoa(i)
	}
	env := Env{Context: schema.ObjectOf(&schema.Field{Name: "code", Type: &schema.Type{Kind: schema.String, Enum: values}})}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		src := `ctx.code in ["v1", "v9999"] || ctx.code == "v` + strconv.Itoa(i%10000) + `"`
		if _, err := CompileGuard(src, env); err != nil {
			b.Fatal(err)
		}
	}
}
