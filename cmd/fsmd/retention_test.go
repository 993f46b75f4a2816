package main

import (
	"cmp"
	"io"
	"strings"
	"testing"
)

// TestServeRetentionEvery: --retention-every (FSMD_RETENTION_EVERY) takes a duration from 1s to
// 24h; fsmd serve refuses anything else before it opens the database.
func TestServeRetentionEvery(t *testing.T) {
	// Not parallel: it sets an environment variable.
	tests := []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--retention-every", "0s"}, "--retention-every must be from 1s to 24h, not 0s"},
		{"", []string{"--retention-every", "500ms"}, "--retention-every must be from 1s to 24h, not 500ms"},
		{"", []string{"--retention-every", "25h"}, "--retention-every must be from 1s to 24h, not 25h0m0s"},
		{"", []string{"--retention-every", "often"}, `--retention-every: time: invalid duration "often"`},
		{"-1m", nil, "--retention-every must be from 1s to 24h, not -1m0s"},
		{"48h", []string{"--retention-every", "0.5s"}, "--retention-every must be from 1s to 24h, not 500ms"}, // the flag wins
	}
	for _, tt := range tests {
		t.Setenv("FSMD_RETENTION_EVERY", cmp.Or(tt.env, "1m"))
		var stderr strings.Builder
		code := runServe(append([]string{"--definitions", t.TempDir()}, tt.args...), io.Discard, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v with FSMD_RETENTION_EVERY=%q: exit %d, %q; want %d and %q", tt.args, tt.env, code, stderr.String(), exitUsage, tt.want)
		}
	}
}
