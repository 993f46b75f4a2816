package guards_test

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// TestHostileExpressionsStayBounded: expressions that build strings or lists far beyond memory,
// each from a short source, fail with the memory budget error quickly and without allocating much.
// Before the meter, toJSON of a mapped 7 KB string took the process down.
func TestHostileExpressionsStayBounded(t *testing.T) {
	// Not parallel: it measures the bytes allocated by the process.
	ctx := schema.ObjectOf(
		&schema.Field{Name: "s", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "l", Type: schema.ListOf(schema.Scalar(schema.String))},
		&schema.Field{Name: "x", Type: schema.Scalar(schema.Any)},
	)
	env := guards.Env{Context: ctx}
	// doubling binds v0 to first and each next v to step applied to the one before, n times, then
	// measures the last with last.
	doubling := func(first, step string, n int, last string) string {
		var b strings.Builder
		b.WriteString("let v0 = " + first + "; ")
		for i := 1; i <= n; i++ {
			b.WriteString("let v" + strconv.Itoa(i) + " = " + strings.ReplaceAll(step, "X", "v"+strconv.Itoa(i-1)) + "; ")
		}
		return b.String() + strings.ReplaceAll(last, "X", "v"+strconv.Itoa(n))
	}
	big := strings.Repeat("x", 7000)
	tests := []struct{ name, src string }{
		{"a string doubled by lets", doubling("ctx.s", "X + X", 40, "len(X) > 0")},
		{"an any doubled by lets", doubling("ctx.x", "X + X", 40, "len(X) > 0")},
		{"a list doubled by concat", doubling("ctx.l", "concat(X, X)", 40, "len(X) > 0")},
		{"toJSON of a list nested by lets", doubling("[ctx.s]", "[X, X]", 40, "len(toJSON(X)) > 0")},
		{"string of a list nested by lets", doubling("[ctx.s]", "[X, X]", 40, "len(string(X)) > 0")},
		{"join of a mapped string", `len(join(map(1..100000, "` + big + `"))) > 0`},
		{"string of a mapped string", `len(string(map(1..100000, "` + big + `"))) > 0`},
		{"toJSON of a mapped string", `len(toJSON(map(1..100000, "` + big + `"))) > 0`},
		{"replace growing a string", `len(replace(ctx.s, "", "` + big + `")) > 0`},
		{"upper in a loop", `len(map(1..100000, upper(ctx.s))) > 0`},
		{"repeat of the payload", `len(repeat(ctx.s, 1000000)) > 0`},
		{"flatten of a repeated list", `len(flatten(map(1..1000, map(1..1000, ctx.l)))) > 0`},
	}
	for _, tt := range tests {
		p, err := guards.CompileGuard(tt.src, env)
		if err != nil {
			t.Fatalf("%s: compile: %v", tt.name, err)
		}
		// The time budget stops them as well when the machine is slow (-race): this test is about
		// the memory meter, which must stop them first.
		scope := guards.NewScope(guards.Vars{Ctx: map[string]any{
			"s": strings.Repeat("y", 100_000), "l": []any{"a", "b"}, "x": "z"}, Budget: time.Minute})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err = p.Bool(scope)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "memory budget exceeded") {
			t.Errorf("%s: got %v, want the memory budget error", tt.name, err)
		}
		if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 64 {
			t.Errorf("%s: allocated %d MiB before failing", tt.name, mb)
		}
		if took > 2*time.Second {
			t.Errorf("%s: took %v to fail", tt.name, took)
		}
	}
}

// TestMeterAllowsOrdinaryWork: the metered builtins and + still work as expr's own.
func TestMeterAllowsOrdinaryWork(t *testing.T) {
	t.Parallel()
	ctx := schema.ObjectOf(
		&schema.Field{Name: "s", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "n", Type: schema.Scalar(schema.Int)},
		&schema.Field{Name: "tags", Type: schema.ListOf(schema.Scalar(schema.String))},
		&schema.Field{Name: "x", Type: schema.Scalar(schema.Any)},
	)
	env := guards.Env{Context: ctx}
	vars := map[string]any{"s": "a,b", "n": 2, "tags": []any{"b", "a"}, "x": 3}
	tests := []struct {
		src  string
		want any
	}{
		{`ctx.s + "!"`, "a,b!"},
		{`"x" + "y"`, "xy"},
		{`ctx.x + 1`, 4},
		{`ctx.n + 1`, 3},
		{`join(sort(concat(ctx.tags, ["c"])), "-")`, "a-b-c"},
		{`upper(ctx.s) + lower("Q")`, "A,Bq"},
		{`len(split(ctx.s, ","))`, 2},
		{`repeat("ab", 3)`, "ababab"},
		{`replace(ctx.s, ",", ";")`, "a;b"},
		{`toJSON(ctx.tags)`, "[\n  \"b\",\n  \"a\"\n]"},
		{`string(ctx.n)`, "2"},
		{`reverse(ctx.tags)[0]`, "a"},
		{`first(uniq(concat(ctx.tags, ctx.tags)))`, "b"},
	}
	for _, tt := range tests {
		p, err := guards.CompileValue(tt.src, env, schema.Scalar(schema.Any))
		if err != nil {
			t.Errorf("compile %q: %v", tt.src, err)
			continue
		}
		got, err := p.Value(guards.NewScope(guards.Vars{Ctx: vars}))
		if err != nil || !schema.Equal(got, tt.want) {
			t.Errorf("%q = %#v, %v; want %#v", tt.src, got, err, tt.want)
		}
	}
	if _, err := guards.CompileGuard(`__meter != nil`, env); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("__meter in an expression: got %v, want a reserved-name error", err)
	}
}

// TestPrepareEmitsOnce: Prepare emits the bytecode ahead of use; evaluations from many goroutines
// racing to emit it on first use agree (run under -race).
func TestPrepareEmitsOnce(t *testing.T) {
	t.Parallel()
	env := guards.Env{Context: schema.ObjectOf(&schema.Field{Name: "n", Type: schema.Scalar(schema.Int)})}
	prepared, err := guards.CompileValue(`ctx.n * 3 + 1`, env, schema.Scalar(schema.Int))
	if err != nil {
		t.Fatal(err)
	}
	if err := prepared.Prepare(); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	fresh, err := guards.CompileGuard(`ctx.n > 2 && ctx.n < 100`, env)
	if err != nil {
		t.Fatal(err)
	}
	scope := guards.NewScope(guards.Vars{Ctx: map[string]any{"n": 4}})
	done := make(chan error, 8)
	for range 8 {
		go func() {
			v, err := prepared.Value(scope)
			ok, err2 := fresh.Bool(scope)
			if err != nil || err2 != nil || v != 13 || !ok {
				done <- fmt.Errorf("got %v, %v, %v, %v", v, err, ok, err2)
				return
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestIntOverflowFails: int arithmetic that leaves the range of int is an error, not a wrapped value;
// within range it is exact, and nested operations stay checked.
func TestIntOverflowFails(t *testing.T) {
	t.Parallel()
	env := guards.Env{Context: schema.ObjectOf(&schema.Field{Name: "n", Type: schema.Scalar(schema.Int)})}
	tests := []struct {
		src  string
		n    int
		want int
		err  bool
	}{
		{`ctx.n + 1`, 41, 42, false},
		{`ctx.n + 1`, math.MaxInt, 0, true},
		{`ctx.n - 1`, math.MinInt, 0, true},
		{`ctx.n * 2`, math.MaxInt/2 + 1, 0, true},
		{`(ctx.n + 1) * 2`, math.MaxInt / 2, 0, true},
		{`ctx.n * -1`, math.MinInt, 0, true},
		{`ctx.n * 3 - 2`, 5, 13, false},
	}
	for _, tt := range tests {
		p, err := guards.CompileValue(tt.src, env, schema.Scalar(schema.Int))
		if err != nil {
			t.Fatalf("compile %q: %v", tt.src, err)
		}
		got, err := p.Value(guards.NewScope(guards.Vars{Ctx: map[string]any{"n": tt.n}}))
		if tt.err {
			if err == nil || !strings.Contains(err.Error(), "integer overflow") {
				t.Errorf("%q with n=%d: got %v, %v; want an overflow error", tt.src, tt.n, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q with n=%d: got %v, %v; want %d", tt.src, tt.n, got, err, tt.want)
		}
	}
}
