package auth_test

import (
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/auth"
)

const hash = "4f0c9a2b9b7e3f5d1c0a8e6b4d2f0a9c7e5b3d1f0e8c6a4b2d0f9e7c5a3b1d0f"

// TestParse: a keys file's lines, good and bad; a bad one names the file and the line.
func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		want       string // the keys' names, or the error
	}{
		{"empty", "", "keys: no keys (only blank lines and comments)"},
		{"only comments", "# read " + hash + " ops\n\n# none yet\n", "keys: no keys (only blank lines and comments)"},
		{"comments and blank lines", "# keys\n\n  \nread " + hash + " ops\n", "ops"},
		{"no name: one from the hash", "admin " + hash, "key-4f0c9a2b"},
		{"upper-case hex", "write " + strings.ToUpper(hash) + " ci", "ci"},
		{"an unknown role", "root " + hash, `keys:1: unknown role "root"`},
		{"a short hash", "read 4f0c ops", "keys:1: the key's hash must be 64 hexadecimal digits"},
		{"a key in clear", "read fsmd_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG ops", "keys:1: the key's hash must be 64"},
		{"too many fields", "read " + hash + " ops extra", "keys:1: want ROLE SHA256-HEX-OF-KEY [NAME] [groups=A,B], found 4 fields"},
		{"bad group", "read " + hash + " ops groups=a,b c", "keys:1: want ROLE"},
		{"an empty group", "read " + hash + " ops groups=a,,b", `keys:1: the group ""`},
		{"groups without a name", "read " + hash + " groups=a,b", "key-4f0c9a2b"},
		{"one field", "\n\nread", "keys:3: want ROLE"},
		{"a bad name", "read " + hash + " <script>", `keys:1: the name "<script>"`},
		{"the same key twice", "read " + hash + " a\nadmin " + hash + " b", "keys:2: the same key as line 1"},
		{"the same name twice", "read " + hash + " a\nadmin " + strings.Repeat("1", 64) + " a", `keys:2: the name "a" is line 1's too`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := auth.Parse("keys", strings.NewReader(tt.file))
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = strings.Join(keys.Names(), " ")
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q...", got, tt.want)
			}
		})
	}
}

// TestCheck: a key made by New and granted by its line is accepted with its role and name; any
// other string, malformed or near, is not.
func TestCheck(t *testing.T) {
	t.Parallel()
	key, line, err := auth.New(auth.Write, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != auth.KeyLength || !strings.HasPrefix(key, auth.Prefix) || !strings.HasPrefix(line, "write ") || !strings.HasSuffix(line, " ci") {
		t.Fatalf("New: %q, %q", key, line)
	}
	if strings.Contains(line, key) {
		t.Fatal("the line holds the key in clear")
	}
	keys, err := auth.Parse("keys", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := keys.Check(key); !ok || k.Role != auth.Write || k.Name != "ci" {
		t.Fatalf("Check(the key): %+v %v", k, ok)
	}
	for _, bad := range []string{"", key[:len(key)-1], key + "x", " " + key, key + " ", strings.ToUpper(key), "short"} {
		if _, ok := keys.Check(bad); ok {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
	if _, _, err := auth.New(auth.None, ""); err == nil {
		t.Error("New without a role")
	}
	if _, _, err := auth.New(auth.Read, "a b"); err == nil {
		t.Error("New with a name holding a space")
	}
}
