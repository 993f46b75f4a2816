package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeKeysFileWithoutKeys: a keys file that holds no key (only comments and blank lines)
// refuses the start, naming the file, rather than serving without authentication.
func TestServeKeysFileWithoutKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	if err := os.WriteFile(file, []byte("# the keys of ops\n\n# read 4f0c... ci (revoked)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The database URL is one serve cannot open: a start that went on past the keys fails there
	// (exit 1) instead of serving, so that this test ends either way.
	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0", "--api-keys", file, "--database-url", "bogus://nothing", "--definitions", dir},
		{"serve", "--addr", "0.0.0.0:0", "--api-keys", file, "--database-url", "bogus://nothing", "--definitions", dir},
	} {
		var stderr strings.Builder
		code := run(args, &strings.Builder{}, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), file+": no keys") {
			t.Errorf("%s: exit %d, %s; want a refusal naming %s", strings.Join(args, " "), code, stderr.String(), file)
		}
	}
}
