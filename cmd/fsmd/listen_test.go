package main

import (
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/auth"
)

// TestListenAddr: without API keys fsmd listens on loopback only: the default address moves to
// 127.0.0.1, one given beyond loopback is refused unless --insecure; with keys, anywhere.
func TestListenAddr(t *testing.T) {
	t.Parallel()
	_, line, err := auth.New(auth.Read, "r")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.Parse("keys", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr            string
		keys            *auth.Keys
		given, insecure bool
		want            string // the address, or the start of the error
	}{
		{":8080", nil, false, false, "127.0.0.1:8080"},
		{":8080", nil, true, false, "--addr :8080 listens beyond loopback, but there are no API keys"},
		{"0.0.0.0:9000", &auth.Keys{}, true, false, "--addr 0.0.0.0:9000 listens beyond loopback"},
		{"0.0.0.0:9000", nil, true, true, "0.0.0.0:9000"},
		{"127.0.0.1:0", nil, true, false, "127.0.0.1:0"},
		{"[::1]:8080", nil, true, false, "[::1]:8080"},
		{"localhost:8080", nil, true, false, "localhost:8080"},
		{":8080", keys, true, false, ":8080"},
		{"nonsense", nil, true, false, `--addr "nonsense"`},
	}
	for _, tt := range tests {
		got, err := listenAddr(tt.addr, tt.keys != nil && tt.keys.Len() > 0, tt.given, tt.insecure)
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("listenAddr(%q, keys %v, given %v, insecure %v) = %q, want %q", tt.addr, tt.keys != nil, tt.given, tt.insecure, got, tt.want)
		}
	}
}
