package server

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientIP: X-Forwarded-For names the client only when the peer is a trusted proxy, and then
// the nearest address in it that is not one; echo's own trust of loopback and private peers is off.
func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     string
		want    string
	}{
		{"no proxies: the peer", nil, "10.1.2.3:5000", "198.51.100.7", "10.1.2.3"},
		{"a trusted proxy", trusted, "10.1.2.3:5000", "198.51.100.7", "198.51.100.7"},
		{"a trusted proxy, no header", trusted, "10.1.2.3:5000", "", "10.1.2.3"},
		{"a spoofed start", trusted, "10.1.2.3:5000", "192.0.2.1, 198.51.100.7", "198.51.100.7"},
		{"two trusted hops", trusted, "10.1.2.3:5000", "198.51.100.7, 10.9.9.9", "198.51.100.7"},
		{"an untrusted peer", trusted, "192.0.2.50:5000", "198.51.100.7", "192.0.2.50"},
		{"loopback is not trusted unless listed", trusted, "127.0.0.1:5000", "198.51.100.7", "127.0.0.1"},
		{"a private peer is not trusted unless listed", trusted, "192.168.1.1:5000", "198.51.100.7", "192.168.1.1"},
		{"an IPv6 proxy", trusted, "[2001:db8::1]:5000", "2001:db8:1::7", "2001:db8:1::7"},
		{"garbage in the header", trusted, "10.1.2.3:5000", "198.51.100.7, not-an-address", "10.1.2.3"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = tt.peer
		if tt.xff != "" {
			req.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := clientIP(tt.trusted)(req); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestFailureClient: the lockout counts an IPv6 client by its /64, an IPv4 one by its address.
func TestFailureClient(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"198.51.100.7":            "198.51.100.7",
		"2001:db8:1:2:aaaa::1":    "2001:db8:1:2::/64",
		"2001:db8:1:2:bbbb::9":    "2001:db8:1:2::/64",
		"::ffff:198.51.100.7":     "::ffff:198.51.100.7",
		"":                        "",
		"not an address, somehow": "not an address, somehow",
	} {
		if got := failureClient(in); got != want {
			t.Errorf("failureClient(%q) = %q, want %q", in, got, want)
		}
	}
}
