package service

import (
	"errors"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// TestEncodeContext: a new instance's context over the bound is invalid_context; at the bound it is
// the JSON stored.
func TestEncodeContext(t *testing.T) {
	t.Parallel()
	const overhead = len(`{"note":""}`)
	b, err := encodeContext(map[string]any{"note": strings.Repeat("<", schema.MaxContextSize-overhead)})
	if err != nil || len(b) != schema.MaxContextSize || !strings.HasPrefix(string(b), `{"note":"<`) {
		t.Fatalf("at the bound: %d bytes, %v", len(b), err)
	}
	_, err = encodeContext(map[string]any{"note": strings.Repeat("x", schema.MaxContextSize-overhead+1)})
	var invalid *machine.InvalidContextError
	if !errors.As(err, &invalid) || code.Of(err) != code.InvalidContext || !strings.Contains(err.Error(), "256 KiB") {
		t.Errorf("a byte over: %v, want invalid_context", err)
	}
}
