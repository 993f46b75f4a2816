package main

import (
	"cmp"
	"io"
	"strings"
	"testing"
)

// TestServeGroupCommit: --group-commit (FSMD_GROUP_COMMIT) takes a whole number from 0 to 1024;
// fsmd serve refuses anything else before it opens the database.
func TestServeGroupCommit(t *testing.T) {
	// Not parallel: it sets an environment variable.
	tests := []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--group-commit", "1025"}, "--group-commit must be from 0 to 1024, not 1025"},
		{"", []string{"--group-commit", "-3"}, "--group-commit must be from 0 to 1024, not -3"},
		{"", []string{"--group-commit", "many"}, `--group-commit: "many" is not a whole number`},
		{"2000", nil, "--group-commit must be from 0 to 1024, not 2000"},
		{"2000", []string{"--group-commit", "-1"}, "--group-commit must be from 0 to 1024, not -1"}, // the flag wins
	}
	for _, tt := range tests {
		t.Setenv("FSMD_GROUP_COMMIT", cmp.Or(tt.env, "0"))
		var stderr strings.Builder
		code := runServe(append([]string{"--definitions", t.TempDir()}, tt.args...), io.Discard, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v with FSMD_GROUP_COMMIT=%q: exit %d, %q; want %d and %q", tt.args, tt.env, code, stderr.String(), exitUsage, tt.want)
		}
	}
}
