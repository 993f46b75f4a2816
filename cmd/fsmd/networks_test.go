package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestNetworks: --webhook-allow and --webhook-deny take networks, addresses and "private", and name
// what they cannot read.
func TestNetworks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // the prefixes, or the error
	}{
		{"", "[]"},
		{"169.254.169.254", "[169.254.169.254/32]"},
		{" 10.1.2.3/8 , fd00::/8", "[10.0.0.0/8 fd00::/8]"},
		{"private", "private"},
		{"10.0.0.0/33", `error: "10.0.0.0/33" is not a network`},
		{"metadata", `error: "metadata" is not a network`},
	}
	for _, tt := range tests {
		got, err := networks(tt.in)
		s := fmt.Sprint(got)
		if got == nil {
			s = "[]"
		}
		switch {
		case err != nil:
			s = "error: " + err.Error()
		case tt.want == "private":
			if len(got) < 3 {
				t.Errorf("private: %v", got)
			}
			continue
		}
		if len(s) < len(tt.want) || s[:len(tt.want)] != tt.want {
			t.Errorf("networks(%q) = %s, want %s", tt.in, s, tt.want)
		}
	}
}

// TestServeTrustedProxies: --trusted-proxies (or FSMD_TRUSTED_PROXIES) that is not a list of
// networks refuses the start, naming the flag.
func TestServeTrustedProxies(t *testing.T) {
	var stderr strings.Builder
	if code := run([]string{"serve", "--addr", "127.0.0.1:0", "--trusted-proxies", "10.0.0.0/8,proxy.example"}, &strings.Builder{}, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), `--trusted-proxies: "proxy.example" is not a network`) {
		t.Errorf("--trusted-proxies proxy.example: exit %d, %s", code, stderr.String())
	}
	t.Setenv("FSMD_TRUSTED_PROXIES", "10.0.0.0/33")
	stderr.Reset()
	if code := run([]string{"serve", "--addr", "127.0.0.1:0"}, &strings.Builder{}, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), `--trusted-proxies: "10.0.0.0/33" is not a network`) {
		t.Errorf("FSMD_TRUSTED_PROXIES=10.0.0.0/33: exit %d, %s", code, stderr.String())
	}
	var stdout strings.Builder
	if code := run([]string{"serve", "-h"}, &stdout, &strings.Builder{}); code != exitOK || !strings.Contains(stdout.String(), "(FSMD_TRUSTED_PROXIES)") {
		t.Errorf("fsmd serve -h: exit %d\n%s", code, stdout.String())
	}
}
