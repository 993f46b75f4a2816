package guards

import (
	"fmt"
	"math"
	"reflect"

	"github.com/expr-lang/expr/builtin"
)

// checkedIntOps name the functions that `+`, `-` and `*` on ints are rewritten to (compile.go).
var checkedIntOps = map[string]string{"+": "__iadd", "-": "__isub", "*": "__imul"}

// intFunctions are int arithmetic that fails on overflow, as Go's wraps around.
var intFunctions = []*builtin.Function{
	intFunction("__iadd", "+", func(a, b int) bool {
		return b > 0 && a > math.MaxInt-b || b < 0 && a < math.MinInt-b
	}, func(a, b int) int { return a + b }),
	intFunction("__isub", "-", func(a, b int) bool {
		return b < 0 && a > math.MaxInt+b || b > 0 && a < math.MinInt+b
	}, func(a, b int) int { return a - b }),
	intFunction("__imul", "*", func(a, b int) bool {
		if a == 0 || b == 0 {
			return false
		}
		c := a * b
		return c/b != a || a == -1 && b == math.MinInt || b == -1 && a == math.MinInt
	}, func(a, b int) int { return a * b }),
}

func intFunction(name, op string, overflows func(a, b int) bool, do func(a, b int) int) *builtin.Function {
	return &builtin.Function{
		Name:  name,
		Types: []reflect.Type{reflect.TypeOf(func(int, int) int { return 0 })},
		Func: func(args ...any) (any, error) {
			a, b := args[0].(int), args[1].(int)
			if overflows(a, b) {
				return nil, fmt.Errorf("integer overflow: %d %s %d is beyond the range of int", a, op, b)
			}
			return do(a, b), nil
		},
	}
}
