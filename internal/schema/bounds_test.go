package schema_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// nest is a value of n nested lists around v.
func nest(n int, v any) any {
	for range n {
		v = []any{v}
	}
	return v
}

func TestCheckContext(t *testing.T) {
	t.Parallel()
	// {"s":"..."} is 8 bytes and its text; `<` is one byte, as the API writes it.
	text := func(n int, c string) map[string]any { return map[string]any{"s": strings.Repeat(c, n-8)} }
	tests := []struct {
		name string
		ctx  map[string]any
		size int    // of the JSON, when accepted
		err  string // when refused
	}{
		{"empty", map[string]any{}, 2, ""},
		{"exactly the most", text(schema.MaxContextSize, "x"), schema.MaxContextSize, ""},
		{"a byte more", text(schema.MaxContextSize+1, "x"), 0, "the context would take 262145 bytes as JSON; the most is 262144 (256 KiB)"},
		{"HTML characters are one byte each", text(schema.MaxContextSize, "<"), schema.MaxContextSize, ""},
		{"typed values as the API shows them", map[string]any{"t": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "d": 90 * time.Minute},
			len(`{"d":"1h30m0s","t":"2026-01-02T03:04:05Z"}`), ""},
		{"nested to the most", map[string]any{"m": nest(schema.MaxDepth-1, 1)}, len(`{"m":1}`) + 2*(schema.MaxDepth-1), ""},
		{"nested deeper", map[string]any{"m": nest(schema.MaxDepth, 1)}, 0, "the context would nest deeper than 100 levels"},
		{"nested far deeper", map[string]any{"m": nest(100_000, map[string]any{})}, 0, "the context would nest deeper than 100 levels"},
		{"NaN", map[string]any{"f": math.NaN()}, 0, "the context cannot be written as JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := schema.CheckContext(tt.ctx)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err == "" && len(b) != tt.size:
				t.Errorf("%d bytes, want %d: %.60s", len(b), tt.size, b)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}
