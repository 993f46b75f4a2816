package main

import (
	"cmp"
	"io"
	"strings"
	"testing"
)

// TestServeExprBudget: --expr-budget (FSMD_EXPR_BUDGET) takes a duration from 1ms to 10s; fsmd
// serve refuses anything else before it opens the database.
func TestServeExprBudget(t *testing.T) {
	// Not parallel: it sets an environment variable.
	tests := []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--expr-budget", "0s"}, "--expr-budget must be from 1ms to 10s, not 0s"},
		{"", []string{"--expr-budget", "500us"}, "--expr-budget must be from 1ms to 10s, not 500µs"},
		{"", []string{"--expr-budget", "11s"}, "--expr-budget must be from 1ms to 10s, not 11s"},
		{"", []string{"--expr-budget", "fast"}, `--expr-budget: time: invalid duration "fast"`},
		{"1m", nil, "--expr-budget must be from 1ms to 10s, not 1m0s"},
		{"1m", []string{"--expr-budget", "-1s"}, "--expr-budget must be from 1ms to 10s, not -1s"}, // the flag wins
	}
	for _, tt := range tests {
		t.Setenv("FSMD_EXPR_BUDGET", cmp.Or(tt.env, "100ms"))
		var stderr strings.Builder
		code := runServe(append([]string{"--definitions", t.TempDir()}, tt.args...), io.Discard, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v with FSMD_EXPR_BUDGET=%q: exit %d, %q; want %d and %q", tt.args, tt.env, code, stderr.String(), exitUsage, tt.want)
		}
	}
}
