package schema

import "time"

// Equal compares typed values: times by instant, numbers by value whatever their Go type (an `any`
// field may hold an int where a test wrote a float), lists and objects element by element.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !Equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if _, isDur := a.(time.Duration); !isDur {
		if fa, ok := toFloat(a); ok {
			fb, ok := toFloat(b)
			_, bDur := b.(time.Duration)
			return ok && !bDur && fa == fb
		}
	}
	return a == b
}
