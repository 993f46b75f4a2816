package schema_test

import (
	"fmt"
	"testing"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// TestInEnum: a value is in an enumeration or not, whether SetEnum keeps its values in a set (a
// long one) or InEnum compares them (a short one, or one made without SetEnum); a value of another
// type, one a set cannot hold among them (a list, an object), is in none, without a panic.
func TestInEnum(t *testing.T) {
	t.Parallel()
	long := make([]any, 100)
	for i := range long {
		long[i] = fmt.Sprint("v", i)
	}
	ints := []any{1, 2, 3}
	for _, tc := range []struct {
		name string
		typ  *schema.Type
		v    any
		want bool
	}{
		{"long: a value", withEnum(schema.String, long), "v99", true},
		{"long: no value", withEnum(schema.String, long), "v100", false},
		{"long: an int", withEnum(schema.String, long), 99, false},
		{"long: a list", withEnum(schema.String, long), []any{"v1"}, false},
		{"long: an object", withEnum(schema.String, long), map[string]any{"v1": 1}, false},
		{"short: a value", withEnum(schema.Int, ints), 2, true},
		{"short: no value", withEnum(schema.Int, ints), 4, false},
		{"short: a string", withEnum(schema.Int, ints), "2", false},
		{"without SetEnum", &schema.Type{Kind: schema.String, Enum: long}, "v50", true},
		{"without SetEnum: no value", &schema.Type{Kind: schema.String, Enum: long}, "v", false},
		{"no enumeration", schema.Scalar(schema.String), "anything", true},
	} {
		if got := tc.typ.InEnum(tc.v); got != tc.want {
			t.Errorf("%s: InEnum(%v) = %v, want %v", tc.name, tc.v, got, tc.want)
		}
	}
}

func withEnum(k schema.Kind, values []any) *schema.Type {
	t := schema.Scalar(k)
	t.SetEnum(values)
	return t
}
