package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/auth"
)

// testKey is an API key a test server takes: its role, name and groups.
type testKey struct {
	role   auth.Role
	name   string
	groups []string
}

// testKeys makes a key for each of ks and the parsed keys file that holds them: the keys by name.
func testKeys(t testing.TB, ks ...testKey) (map[string]string, *auth.Keys) {
	t.Helper()
	keys := map[string]string{}
	var file strings.Builder
	for _, k := range ks {
		key, line, err := auth.New(k.role, k.name, k.groups...)
		if err != nil {
			t.Fatal(err)
		}
		keys[k.name] = key
		file.WriteString(line + "\n")
	}
	parsed, err := auth.Parse("keys", strings.NewReader(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	return keys, parsed
}

// apiCaller calls the API of one server with one credential ("" for none).
type apiCaller func(method, path, body string) (int, map[string]any)

// callerOf calls base's API with bearer through http.DefaultClient (the conformance harness
// checks each exchange) and decodes the JSON answer.
func callerOf(t *testing.T, base, bearer string) apiCaller {
	return func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, out
	}
}

// must is call's answer, which must have status.
func (call apiCaller) must(t *testing.T, method, path, body string, status int) map[string]any {
	t.Helper()
	code, out := call(method, path, body)
	if code != status {
		t.Fatalf("%s %s %.200s: %d %v, want %d", method, path, body, code, out, status)
	}
	return out
}
