package guards_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

var (
	tString   = schema.Scalar(schema.String)
	tInt      = schema.Scalar(schema.Int)
	tFloat    = schema.Scalar(schema.Float)
	tBool     = schema.Scalar(schema.Bool)
	tTime     = schema.Scalar(schema.Time)
	tDuration = schema.Scalar(schema.Duration)
	tAny      = schema.Scalar(schema.Any)
)

func field(name string, t *schema.Type) *schema.Field { return &schema.Field{Name: name, Type: t} }

// ctxType is a context with a field of every kind.
var ctxType = schema.ObjectOf(
	field("s", tString),
	field("n", tInt),
	field("f", tFloat),
	field("b", tBool),
	field("t", tTime),
	field("d", tDuration),
	field("a", tAny),
	field("tags", schema.ListOf(tString)),
	field("nums", schema.ListOf(tInt)),
	field("customer", schema.ObjectOf(field("tier", tString), field("points", tInt))),
)

var payType = schema.ObjectOf(field("amount", tFloat), field("method", tString))

// env has the context above and the payload of a pay event.
var env = guards.Env{Context: ctxType, Event: payType}

var (
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// scope is a typical evaluation: every context field set, a card payment of 10.
func scope() guards.Scope {
	return guards.NewScope(guards.Vars{
		Ctx: map[string]any{
			"s": "hello", "n": 3, "f": 2.5, "b": true, "t": t0, "d": time.Hour, "a": "anything",
			"tags": []any{"x", "y"}, "nums": []any{1, 2, 3},
			"customer": map[string]any{"tier": "gold", "points": 7},
		},
		Event:    map[string]any{"amount": 10.0, "method": "card"},
		State:    "created",
		Now:      now,
		Instance: guards.Instance{ID: "i-1", Version: 4, CreatedAt: t0, EnteredAt: t0.Add(time.Hour)},
	})
}

// compileErr is the message and position of a compile error.
func compileErr(t *testing.T, err error) (msg string, line, col int) {
	t.Helper()
	if err == nil {
		t.Fatal("compiled, want an error")
	}
	var ge *guards.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error %T (%v) is not a *guards.Error", err, err)
	}
	return ge.Message, ge.Line, ge.Column
}

func TestCompileGuardAccepts(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`true`,
		`event.amount >= ctx.f && event.method in ["card", "sepa"]`,
		`ctx.n > 1 && ctx.f < 3.0 && ctx.b`,
		`now > ctx.t`,
		`now - ctx.t > duration("24h")`,
		`ctx.t + ctx.d < now`,
		`state == "created"`,
		`instance.id != "" && instance.version > 0 && instance.entered_at > instance.created_at`,
		`"x" in ctx.tags && len(ctx.nums) == 3`,
		`ctx.customer.tier == "gold"`,
		`ctx.a == 1`,
		`ctx.a`, // any: checked when it runs
		`ctx.s startsWith "he" && upper(ctx.s) == "HELLO"`,
		`date("2026-01-01T00:00:00Z") < now`,
		"ctx.n > 1 &&\nctx.b",
	} {
		if _, err := guards.CompileGuard(src, env); err != nil {
			t.Errorf("CompileGuard(%q): %v", src, err)
		}
	}
}

func TestCompileGuardRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		src       string
		env       guards.Env
		msg       string
		line, col int // col -1: not checked
	}{
		{"not bool: float", `ctx.f + 1`, env, `expected bool, but got float64`, 1, 0},
		{"not bool: string", `ctx.s`, env, `expected bool, but got string`, 1, 0},
		{"not bool: time", `now`, env, `expected bool, but got time.Time`, 1, 0},
		{"unknown ctx field", `ctx.amont > 0`, env, `unknown field amont`, 1, 4},
		{"unknown nested field", `ctx.customer.tire == "gold"`, env, `unknown field tire`, 1, 13},
		{"unknown event field", `event.amont > 0`, env, `unknown field amont`, 1, 6},
		{"unknown instance field", `instance.name == ""`, env, `unknown field name`, 1, 9},
		{"unknown name", `foo > 1`, env, `unknown name foo`, 1, 0},
		{"event without payload schema", `event.amount > 0`, guards.Env{Context: ctxType}, `unknown field amount`, 1, 6},
		{"no event at all", `event.amount > 0`, guards.Env{Context: ctxType, NoEvent: true}, `unknown name event`, 1, 0},
		{"nil context", `ctx.n > 0`, guards.Env{}, `unknown field n`, 1, 4},
		{"now() is refused with a hint", `now() > ctx.t`, env, `time.Time is not callable (now is the time of the event: write now, not now())`, 1, 0},
		{"type mismatch", `ctx.s > 1`, env, `invalid operation: > (mismatched types string and int)`, 1, 6},
		{"syntax error", `ctx.n > `, env, `unexpected token EOF`, 1, 7},
		{"error on the second line", "ctx.n > 1 &&\n  ctx.nope", env, `unknown field nope`, 2, 6},
		{"too long", strings.Repeat(" ", guards.MaxSourceBytes) + "true", env,
			fmt.Sprintf("expression is %d bytes long; the limit is %d", guards.MaxSourceBytes+4, guards.MaxSourceBytes), 1, 0},
		{"too many nodes", "1" + strings.Repeat("+1", guards.MaxNodes/2) + " > 0", env, `compilation failed: expression exceeds maximum allowed nodes`, 1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := guards.CompileGuard(tt.src, tt.env)
			if err == nil {
				t.Fatalf("CompileGuard(%q) = %v, want an error", tt.src, p)
			}
			msg, line, col := compileErr(t, err)
			if msg != tt.msg || line != tt.line || (col != tt.col && tt.col >= 0) {
				t.Errorf("CompileGuard(%q):\n got %d:%d %q\nwant %d:%d %q", tt.src, line, col, msg, tt.line, tt.col, tt.msg)
			}
			if err.Error() != msg {
				t.Errorf("Error() = %q, want the message alone %q", err.Error(), msg)
			}
		})
	}
}

// TestLimitsAreNotTooTight: an expression just within the limits compiles.
func TestLimitsAreNotTooTight(t *testing.T) {
	t.Parallel()
	src := strings.Repeat(" ", guards.MaxSourceBytes-4) + "true"
	if _, err := guards.CompileGuard(src, env); err != nil {
		t.Errorf("an expression of exactly MaxSourceBytes: %v", err)
	}
	src = "1" + strings.Repeat("+1", guards.MaxNodes/2-10) + " > 0"
	if _, err := guards.CompileGuard(src, env); err != nil {
		t.Errorf("an expression of fewer than MaxNodes nodes: %v", err)
	}
}

func TestCompileValueTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want *schema.Type
		err  string // "" when it compiles
	}{
		{`ctx.s + "!"`, tString, ""},
		{`ctx.n`, tString, "expression is of type int, want string"},
		{`ctx.n + 1`, tInt, ""},
		{`len(ctx.tags)`, tInt, ""},
		{`ctx.f`, tInt, "expression is of type float, want int"},
		{`ctx.n / 2`, tInt, "expression is of type float, want int"},
		{`ctx.n * 1.5`, tInt, "expression is of type float, want int"},
		{`ctx.d`, tInt, "expression is of type duration, want int"},
		{`ctx.f * 2`, tFloat, ""},
		{`ctx.n`, tFloat, ""},
		{`ctx.n + 1`, tFloat, ""},
		{`ctx.s`, tFloat, "expression is of type string, want float"},
		{`!ctx.b`, tBool, ""},
		{`ctx.n`, tBool, "expression is of type int, want bool"},
		{`now`, tTime, ""},
		{`ctx.t + ctx.d`, tTime, ""},
		{`ctx.s`, tTime, "expression is of type string, want time"},
		{`ctx.d`, tTime, "expression is of type duration, want time"},
		{`now - ctx.t`, tDuration, ""},
		{`duration("90m")`, tDuration, ""},
		{`now`, tDuration, "expression is of type time, want duration"},
		{`ctx.n`, tDuration, "expression is of type int, want duration"},
		{`concat(ctx.tags, ["paid"])`, schema.ListOf(tString), ""},
		{`ctx.tags`, schema.ListOf(tString), ""},
		{`ctx.s`, schema.ListOf(tString), "expression is of type string, want [string]"},
		{`ctx.customer`, schema.ObjectOf(field("tier", tString), field("points", tInt)), ""},
		{`{"tier": "gold"}`, ctxType.Field("customer").Type, ""},
		{`ctx.n`, ctxType.Field("customer").Type, "expression is of type int, want {tier: string, points: int}"},
		{`ctx.n`, tAny, ""},
		{`ctx.customer`, tAny, ""},
		{`ctx.a`, tInt, ""}, // any: checked when it runs
		{`ctx.nope`, tInt, "unknown field nope"},
	}
	for _, tt := range tests {
		_, err := guards.CompileValue(tt.src, env, tt.want)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.err {
			t.Errorf("CompileValue(%q, %s) error = %q, want %q", tt.src, tt.want, got, tt.err)
		}
	}
}

func TestCompileTime(t *testing.T) {
	t.Parallel()
	noEvent := guards.Env{Context: ctxType, NoEvent: true}
	for _, src := range []string{`now + duration("1h")`, `ctx.t`, `instance.entered_at + ctx.d`, `date("2026-05-01T00:00:00Z")`} {
		if _, err := guards.CompileTime(src, noEvent); err != nil {
			t.Errorf("CompileTime(%q): %v", src, err)
		}
	}
	tests := []struct {
		src, msg string
	}{
		{`ctx.s`, "expression is of type string, want time"},
		{`ctx.d`, "expression is of type duration, want time"},
		{`now > ctx.t`, "expression is of type bool, want time"},
		{`event.at`, "unknown name event"},
		{`now()`, "time.Time is not callable (now is the time of the event: write now, not now())"},
	}
	for _, tt := range tests {
		_, err := guards.CompileTime(tt.src, noEvent)
		if msg, _, _ := compileErr(t, err); msg != tt.msg {
			t.Errorf("CompileTime(%q) = %q, want %q", tt.src, msg, tt.msg)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`ctx.amount > 1000`, `ctx.currency ?? "EUR"`, `anything.at.all`, `now`} {
		if err := guards.Check(src); err != nil {
			t.Errorf("Check(%q): %v", src, err)
		}
	}
	tests := []struct {
		src       string
		msg       string
		line, col int
	}{
		{`ctx.amount >`, "unexpected token EOF", 1, 11},
		{`(ctx.a`, "unexpected token EOF", 1, 5},
		{"ctx.a &&\n  ctx.b ==", "unexpected token EOF", 2, 9},
		{strings.Repeat("1+", guards.MaxSourceBytes/2) + "1",
			fmt.Sprintf("expression is %d bytes long; the limit is %d", guards.MaxSourceBytes+1, guards.MaxSourceBytes), 1, 0},
		{"1" + strings.Repeat("+1", guards.MaxNodes/2), "compilation failed: expression exceeds maximum allowed nodes", 1, -1},
	}
	for _, tt := range tests {
		msg, line, col := compileErr(t, guards.Check(tt.src))
		if msg != tt.msg || line != tt.line || (col != tt.col && tt.col >= 0) {
			t.Errorf("Check(%.40q):\n got %d:%d %q\nwant %d:%d %q", tt.src, line, col, msg, tt.line, tt.col, tt.msg)
		}
	}
}

func TestBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want bool
	}{
		{`event.amount >= ctx.f && event.method in ["card", "sepa"]`, true},
		{`event.amount < ctx.f`, false},
		{`ctx.customer.tier == "gold" && ctx.customer.points == 7`, true},
		{`"y" in ctx.tags && 3 in ctx.nums`, true},
		{`ctx.a == "anything"`, true},
		{`ctx.a`, false}, // a string where a bool was wanted: an error, tested below
	}
	for _, tt := range tests[:len(tests)-1] {
		p, err := guards.CompileGuard(tt.src, env)
		if err != nil {
			t.Fatalf("CompileGuard(%q): %v", tt.src, err)
		}
		got, err := p.Bool(scope())
		if err != nil || got != tt.want {
			t.Errorf("Bool(%q) = %v, %v; want %v", tt.src, got, err, tt.want)
		}
	}
	p, err := guards.CompileGuard(`ctx.a`, env)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Bool(scope()); err == nil || err.Error() != `evaluating "ctx.a": invalid operation: bool(string)` {
		t.Errorf("Bool(ctx.a) with a string = %v, %v; want an error", got, err)
	}
}

// TestNewScope: what Vars holds is what expressions see, under their documented names.
func TestNewScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want any
	}{
		{`state`, "created"},
		{`now`, now},
		{`instance.id`, "i-1"},
		{`instance.version`, 4},
		{`instance.created_at`, t0},
		{`instance.entered_at`, t0.Add(time.Hour)},
		{`ctx.s`, "hello"},
		{`ctx.customer.points`, 7},
		{`event.method`, "card"},
		{`event.amount`, 10.0},
		{`now - instance.entered_at`, now.Sub(t0.Add(time.Hour))},
	}
	for _, tt := range tests {
		p, err := guards.CompileValue(tt.src, env, tAny)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", tt.src, err)
		}
		got, err := p.Value(scope())
		if err != nil || !schema.Equal(got, tt.want) {
			t.Errorf("%s = %#v, %v; want %#v", tt.src, got, err, tt.want)
		}
	}
	s := scope()
	for _, name := range []string{"ctx", "event", "state", "now", "instance"} {
		if _, ok := s[name]; !ok {
			t.Errorf("NewScope has no %q", name)
		}
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want *schema.Type
		out  any // the value, with its Go type
	}{
		{`ctx.n + 1`, tInt, 4},
		{`ctx.n`, tFloat, 3.0}, // an int converted to float64
		{`event.amount * 2`, tFloat, 20.0},
		{`upper(ctx.s)`, tString, "HELLO"},
		{`now`, tTime, now},
		{`now - ctx.t`, tDuration, now.Sub(t0)},
		{`!ctx.b`, tBool, false},
		{`concat(ctx.tags, ["paid"])`, schema.ListOf(tString), []any{"x", "y", "paid"}},
		{`split("a,b", ",")`, schema.ListOf(tString), []any{"a", "b"}},
		{`map(ctx.nums, # * 2)`, schema.ListOf(tFloat), []any{2.0, 4.0, 6.0}},
		{`{"tier": "silver"}`, ctxType.Field("customer").Type, map[string]any{"tier": "silver", "points": 0}},
		{`ctx.customer`, ctxType.Field("customer").Type, map[string]any{"tier": "gold", "points": 7}},
		{`ctx.tags`, tAny, []any{"x", "y"}},
	}
	for _, tt := range tests {
		p, err := guards.CompileValue(tt.src, env, tt.want)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", tt.src, err)
		}
		got, err := p.Value(scope())
		if err != nil {
			t.Errorf("Value(%q): %v", tt.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.out) {
			t.Errorf("Value(%q) = %#v (%T), want %#v (%T)", tt.src, got, got, tt.out, tt.out)
		}
	}

	// The value is converted to a fresh one: changing it does not change the context.
	s := scope()
	p, err := guards.CompileValue(`ctx.tags`, env, schema.ListOf(tString))
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Value(s)
	if err != nil {
		t.Fatal(err)
	}
	v.([]any)[0] = "changed"
	if s["ctx"].(map[string]any)["tags"].([]any)[0] != "x" {
		t.Errorf("Value returned the context's own list")
	}
}

func TestTime(t *testing.T) {
	t.Parallel()
	p, err := guards.CompileTime(`instance.entered_at + duration("72h")`, guards.Env{Context: ctxType, NoEvent: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Time(scope())
	if want := t0.Add(73 * time.Hour); err != nil || !got.Equal(want) {
		t.Errorf("Time = %v, %v; want %v", got, err, want)
	}
}

// TestRuntimeErrors: what compiles can still fail on the values it meets; that is an error, quickly,
// never a panic or a hang.
func TestRuntimeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want *schema.Type // nil: a guard
		err  string       // the whole error
	}{
		{"index out of range", `ctx.tags[5] == "x"`, nil, `evaluating "ctx.tags[5] == \"x\"": index out of range: 5 (array length is 2)`},
		{"integer division by zero", `ctx.n % (ctx.n - 3) == 0`, nil, `evaluating "ctx.n % (ctx.n - 3) == 0": runtime error: integer divide by zero`},
		{"repeat over the memory budget", `repeat("a", 100000000) != ""`, nil, `evaluating "repeat(\"a\", 100000000) != \"\"": memory budget exceeded: the expressions of one event may build at most 8388608 bytes`},
		{"range over the memory budget", `len(map(1..100000000, #)) > 0`, nil, `evaluating "len(map(1..100000000, #)) > 0": memory budget exceeded`},
		{"any is not an int", `ctx.a`, tInt, `evaluating "ctx.a": expected int, got string "anything"`},
		{"a list element of the wrong type", `concat(ctx.tags, [1])`, schema.ListOf(tString), `evaluating "concat(ctx.tags, [1])": [2]: expected string, got number`},
		{"an object with an unknown field", `{"tier": "x", "rank": 1}`, ctxType.Field("customer").Type, `evaluating "{\"tier\": \"x\", \"rank\": 1}": rank: unknown field`},
		{"a bad date", `date(ctx.s) > now`, nil, `evaluating "date(ctx.s) > now": invalid date hello`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				p   *guards.Program
				err error
			)
			if tt.want == nil {
				p, err = guards.CompileGuard(tt.src, env)
			} else {
				p, err = guards.CompileValue(tt.src, env, tt.want)
			}
			if err != nil {
				t.Fatalf("compile %q: %v", tt.src, err)
			}
			start := time.Now()
			if tt.want == nil {
				_, err = p.Bool(scope())
			} else {
				_, err = p.Value(scope())
			}
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("%q took %v to fail", tt.src, d)
			}
			if err == nil || err.Error() != tt.err {
				t.Errorf("evaluating %q:\n got %v\nwant %s", tt.src, err, tt.err)
			}
		})
	}
}

// TestMemoryBudgetIsPerEvaluation: pooled VMs start each evaluation with the whole budget.
func TestMemoryBudgetIsPerEvaluation(t *testing.T) {
	t.Parallel()
	src := fmt.Sprintf(`len(1..%d) > 0`, guards.MemoryBudget*6/10)
	p, err := guards.CompileGuard(src, env)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if ok, err := p.Bool(scope()); err != nil || !ok {
			t.Fatalf("evaluation %d = %v, %v; want true", i+1, ok, err)
		}
	}
}

// TestEvaluateMissingValues: a scope without some values (a nil context, no payload) gives errors or
// zero results, never a panic.
func TestEvaluateMissingValues(t *testing.T) {
	t.Parallel()
	empty := guards.NewScope(guards.Vars{})
	for _, src := range []string{`ctx.n > 0`, `ctx.customer.tier == "gold"`, `event.amount > 1`, `len(ctx.tags) > 0`, `ctx.tags[0] == ""`, `instance.id == ""`} {
		p, err := guards.CompileGuard(src, env)
		if err != nil {
			t.Fatalf("CompileGuard(%q): %v", src, err)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Bool(%q) on an empty scope panicked: %v", src, r)
				}
			}()
			_, _ = p.Bool(empty)
		}()
	}
}

func TestConcurrentEvaluation(t *testing.T) {
	t.Parallel()
	guard, err := guards.CompileGuard(`event.amount >= ctx.f && "x" in ctx.tags`, env)
	if err != nil {
		t.Fatal(err)
	}
	value, err := guards.CompileValue(`concat(ctx.tags, [state])`, env, schema.ListOf(tString))
	if err != nil {
		t.Fatal(err)
	}
	s := scope() // shared: evaluation must only read it
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ok, err := guard.Bool(s)
				if err != nil || !ok {
					errs <- fmt.Errorf("goroutine %d, run %d: Bool = %v, %v", g, i, ok, err)
					return
				}
				v, err := value.Value(s)
				if err != nil || len(v.([]any)) != 3 {
					errs <- fmt.Errorf("goroutine %d, run %d: Value = %v, %v", g, i, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMemoryBudgetCountsStrings: expr's budget counts elements of lists and maps, not bytes of
// strings, so a chain of let bindings that doubles a string would escape it; the meter counts them.
// 22 doublings of 4 bytes make 16 MiB, twice MaxBuildBytes; 40 would make 4 TiB.
func TestMemoryBudgetCountsStrings(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`let v0 = "aaaa"; `)
	for i := 1; i <= 22; i++ {
		fmt.Fprintf(&b, "let v%d = v%d + v%d; ", i, i-1, i-1)
	}
	b.WriteString(`len(v22) > 0`)
	p, err := guards.CompileGuard(b.String(), env)
	if err != nil {
		return // refusing such an expression when it is compiled is a fix too
	}
	if _, err := p.Bool(scope()); err == nil || !strings.Contains(err.Error(), "memory budget exceeded") {
		t.Errorf("a 16 MiB string built by doubling: err = %v, want the memory budget exceeded", err)
	}
}

// TestListElementTypesAreChecked: a list whose elements cannot fit the field is a load error, as a
// scalar of the wrong type is, where expr knows the element type.
func TestListElementTypesAreChecked(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`ctx.nums`, `[1, 2]`, `map(ctx.nums, # * 2)`} {
		if _, err := guards.CompileValue(src, env, schema.ListOf(tString)); err == nil {
			t.Errorf("CompileValue(%q, [string]) compiled", src)
		}
	}
}
