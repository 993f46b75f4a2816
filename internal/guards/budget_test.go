package guards_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// budgetEnv has a count, a list and a string in the payload: what a hostile client sends to a
// definition whose guard loops over them.
func budgetEnv() guards.Env {
	return guards.Env{Event: schema.ObjectOf(
		&schema.Field{Name: "k", Type: schema.Scalar(schema.Int)},
		&schema.Field{Name: "xs", Type: schema.ListOf(schema.Scalar(schema.Int))},
	)}
}

func budgetPayload() map[string]any {
	xs := make([]any, 100_000)
	for i := range xs {
		xs[i] = i
	}
	return map[string]any{"k": 100_000, "xs": xs}
}

// evalWithin evaluates p on s, and fails the test when it is still running after limit (before the
// budget, these ran for minutes: the goroutine is then left behind, the test failed).
func evalWithin(t *testing.T, p *guards.Program, s guards.Scope, limit time.Duration) (time.Duration, error) {
	t.Helper()
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		_, err := p.Bool(s)
		done <- result{time.Since(start), err}
	}()
	select {
	case r := <-done:
		return r.took, r.err
	case <-time.After(limit):
		t.Fatalf("%s: still running after %v", p.Source, limit)
		return 0, nil
	}
}

// TestTimeBudgetStopsLoops: nested predicates over a range or a long payload list, and a loop whose
// body scans a list, each fail with "time budget exceeded" about when the budget is spent (100 ms by
// default), where they ran for minutes to hours before.
func TestTimeBudgetStopsLoops(t *testing.T) {
	// Not parallel: it measures time on a machine the other tests load.
	tests := []struct {
		name, src string
		budget    time.Duration
	}{
		{"nested over a range", `let r = 1..event.k; all(r, {all(r, {true})})`, 0},
		{"nested over the payload", `all(event.xs, {all(event.xs, {# >= 0})})`, 0},
		{"a body that scans the payload", `sum(event.xs, {# in event.xs ? 1 : 0}) < 0`, 0},
		{"a filter in a loop", `all(event.xs, {len(filter(event.xs, {# < 0})) == 0})`, 0},
		{"reduce over sortBy", `reduce(event.xs, {#acc + len(sortBy(event.xs, {-#}))}, 0) > 0`, 0},
		{"a budget of 300 ms", `let r = 1..event.k; any(r, {any(r, {# < 0})})`, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		p, err := guards.CompileGuard(tt.src, budgetEnv())
		if err != nil {
			t.Fatalf("%s: compile: %v", tt.name, err)
		}
		s := guards.NewScope(guards.Vars{Event: budgetPayload(), Budget: tt.budget})
		took, err := evalWithin(t, p, s, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "time budget exceeded") {
			t.Errorf("%s: got %v, want the time budget error", tt.name, err)
		}
		budget := tt.budget
		if budget == 0 {
			budget = guards.DefaultBudget
		}
		// Stopped by the budget, and soon after it: one iteration's work (the race detector slows
		// the VM about tenfold, and the timer may fire late on a loaded machine).
		if took < budget*9/10 || took > budget+400*time.Millisecond {
			t.Errorf("%s: failed after %v, want about %v", tt.name, took, budget)
		}
	}
}

// TestTimeBudgetIsShared: the expressions of one event share one budget. Once a guard spent it,
// the next expression on the same scope, or on one made With it (a timer's `at`), fails at once,
// loops or not; on a scope of its own the same expression holds.
func TestTimeBudgetIsShared(t *testing.T) {
	t.Parallel()
	slow, err := guards.CompileGuard(`let r = 1..event.k; all(r, {all(r, {true})})`, budgetEnv())
	if err != nil {
		t.Fatal(err)
	}
	quick := map[string]string{
		"a loop":      `all(event.xs, {# >= 0})`,
		"no loop":     `event.k > 0`,
		"a metered":   `len(string(event.k)) > 0`,
		"a short let": `let n = event.k; n > 0`,
	}
	payload := map[string]any{"k": 100_000, "xs": []any{1, 2, 3}}
	s := guards.NewScope(guards.Vars{Event: payload})
	if _, err := evalWithin(t, slow, s, 5*time.Second); err == nil {
		t.Fatal("the slow guard held")
	}
	later := s.With(guards.Vars{Event: payload})
	for name, src := range quick {
		p, err := guards.CompileGuard(src, budgetEnv())
		if err != nil {
			t.Fatalf("%s: compile: %v", name, err)
		}
		for _, scope := range []guards.Scope{s, later} {
			if _, err := p.Bool(scope); err == nil || !strings.Contains(err.Error(), "time budget exceeded") {
				t.Errorf("%s after the budget was spent: got %v, want the time budget error", name, err)
			}
		}
		if ok, err := p.Bool(guards.NewScope(guards.Vars{Event: payload})); !ok || err != nil {
			t.Errorf("%s on a scope of its own: got %v, %v", name, ok, err)
		}
	}
}

// TestTicksKeepValues: the check added to predicate bodies changes no value nor type, whatever the
// predicate returns.
func TestTicksKeepValues(t *testing.T) {
	t.Parallel()
	ctx := schema.ObjectOf(
		&schema.Field{Name: "items", Type: schema.ListOf(schema.ObjectOf(
			&schema.Field{Name: "sku", Type: schema.Scalar(schema.String)},
			&schema.Field{Name: "qty", Type: schema.Scalar(schema.Int)},
		))},
	)
	env := guards.Env{Context: ctx}
	s := guards.NewScope(guards.Vars{Ctx: map[string]any{"items": []any{
		map[string]any{"sku": "a", "qty": 2}, map[string]any{"sku": "b", "qty": 3}}}})
	guardsHold := []string{
		`all(ctx.items, {.qty > 0}) && any(ctx.items, .sku == "b") && none(ctx.items, {.qty > 9})`,
		`one(ctx.items, {.sku == "a"}) && count(ctx.items, {.qty > 2}) == 1`,
		`sum(ctx.items, {.qty}) == 5 && reduce(ctx.items, {#acc + .qty}, 10) == 15`,
		`map(ctx.items, {.sku}) == ["a", "b"] && filter(ctx.items, {.qty > 2})[0].sku == "b"`,
		`find(ctx.items, {.qty == 3}).sku == "b" && findIndex(ctx.items, {.qty == 3}) == 1`,
		`sortBy(ctx.items, {-.qty})[0].sku == "b" && groupBy(ctx.items, {.qty > 2})[true][0].sku == "b"`,
		`all(ctx.items, {let q = .qty; all(1..q, {# <= q})})`,
	}
	for _, src := range guardsHold {
		p, err := guards.CompileGuard(src, env)
		if err != nil {
			t.Errorf("%s: compile: %v", src, err)
			continue
		}
		if ok, err := p.Bool(s); !ok || err != nil {
			t.Errorf("%s: got %v, %v", src, ok, err)
		}
	}
	want := schema.ListOf(schema.Scalar(schema.String))
	p, err := guards.CompileValue(`map(ctx.items, {.sku + "!"})`, env, want)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Value(s); err != nil || len(v.([]any)) != 2 || v.([]any)[1] != "b!" {
		t.Errorf("map: got %v, %v", v, err)
	}
	// A predicate's type is still checked: a sequence does not hide it.
	if _, err := guards.CompileGuard(`all(ctx.items, {.sku})`, env); err == nil {
		t.Error("all over a string predicate compiled")
	}
}
