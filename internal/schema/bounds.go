package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The bounds of the values fsmd keeps. They are here, with the types, so that the HTTP layer, the
// engine and the migrations refuse alike what one of the databases could not store, or what would
// make an instance too costly to read.
const (
	// MaxDepth is how deep objects and lists may nest in a request body or a context, the outermost
	// counting as 1. SQLite's JSON functions refuse documents deeper than 1,000 levels, and each
	// level costs a frame of every recursive walk of a value.
	MaxDepth = 100
	// MaxContextSize is the most an instance's context takes as JSON, as the API shows it, in bytes:
	// each answer and history row that carries a context stays bounded by it.
	MaxContextSize = 256 << 10
)

// CheckContext encodes a typed context as the API shows it (JSON without HTML escaping), and
// refuses one larger than MaxContextSize or nested deeper than MaxDepth. Creating an instance (its
// defaults filled in), a `set` and a migration's new context are checked with it.
func CheckContext(ctx map[string]any) ([]byte, error) {
	if depth(ctx, MaxDepth+1) > MaxDepth {
		return nil, &DecodeError{"", fmt.Sprintf("the context would nest deeper than %d levels", MaxDepth)}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Encode(ctx)); err != nil {
		return nil, &DecodeError{"", fmt.Sprintf("the context cannot be written as JSON: %v", err)}
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(out) > MaxContextSize {
		return nil, &DecodeError{"", fmt.Sprintf("the context would take %d bytes as JSON; the most is %d (256 KiB)", len(out), MaxContextSize)}
	}
	return out, nil
}

// depth is how deep v nests, an object or a list counting 1 and a scalar 0, counted no further than
// limit.
func depth(v any, limit int) int {
	if limit == 0 {
		return 0
	}
	deepest := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			deepest = max(deepest, depth(e, limit-1))
		}
	case []any:
		for _, e := range x {
			deepest = max(deepest, depth(e, limit-1))
		}
	default:
		return 0
	}
	return deepest + 1
}
