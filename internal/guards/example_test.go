package guards_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// A guard is compiled once, against the types of the context and of the event's payload, and then
// evaluated for each event in a scope holding their values.
func Example() {
	env := guards.Env{
		Context: schema.ObjectOf(&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)}),
		Event: schema.ObjectOf(
			&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)},
			&schema.Field{Name: "method", Type: schema.Scalar(schema.String)},
		),
	}
	guard, err := guards.CompileGuard(`event.amount >= ctx.amount && event.method in ["card", "sepa"]`, env)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, method := range []string{"card", "cash"} {
		ok, err := guard.Bool(guards.NewScope(guards.Vars{
			Ctx:   map[string]any{"amount": 40.0},
			Event: map[string]any{"amount": 42.0, "method": method},
			State: "awaiting_payment",
			Now:   time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC),
		}))
		fmt.Println(method, ok, err)
	}
	// Output:
	// card true <nil>
	// cash false <nil>
}

// A mistake is found when the expression is compiled, not when an event comes: here a field the
// context's schema does not have. The error is a *guards.Error with its position in the source
// (line from 1, column from 0).
func Example_compileError() {
	env := guards.Env{Context: schema.ObjectOf(&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)})}
	src := `ctx.amount > 0 && ctx.amuont < 100`
	_, err := guards.CompileGuard(src, env)
	var ce *guards.Error
	if errors.As(err, &ce) {
		fmt.Printf("%d:%d: %s\n", ce.Line, ce.Column, ce.Message)
		fmt.Println(src)
		fmt.Printf("%*s\n", ce.Column+1, "^")
	}
	// Output:
	// 1:22: unknown field amuont
	// ctx.amount > 0 && ctx.amuont < 100
	//                       ^
}
