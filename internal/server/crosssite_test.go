package server

import "testing"

// TestLoopbackHost: the Host values a server without keys answers: loopback addresses and
// localhost names, with or without a port; nothing a page's own name can be.
func TestLoopbackHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost": true, "localhost:8080": true, "LOCALHOST": true, "localhost.": true, "localhost.:8080": true,
		"ui.localhost:8080": true, "127.0.0.1": true, "127.0.0.1:8080": true, "127.9.8.7:1": true,
		"[::1]": true, "[::1]:8080": true, "::1": true, "[::ffff:127.0.0.1]:8080": true,
		"": false, "evil.example.com": false, "evil.example.com:8080": false, "localhost.evil.example.com": false,
		"127.0.0.1.nip.io": false, "evillocalhost": false, "10.0.0.1:8080": false, "[::2]:8080": false, "0.0.0.0:8080": false,
		"[::1": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
