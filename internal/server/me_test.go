package server

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/auth/authtest"
)

// TestMe: GET /v1/me answers who the credential names (a key of each role, with or without
// groups, a token), any role may ask, and a server without keys or tokens answers the anonymous
// user it lets in: no name, no group, every right.
func TestMe(t *testing.T) {
	t.Parallel()
	var lines []string
	newKey := func(role auth.Role, name string, groups ...string) string {
		key, line, err := auth.New(role, name, groups...)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		return key
	}
	reader := newKey(auth.Read, "reader")
	writer := newKey(auth.Write, "writer", "finance", "managers")
	admin := newKey(auth.Admin, "")
	keys, err := auth.Parse("keys", strings.NewReader(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	is := authtest.NewIssuer(t, t.TempDir())
	tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: is.JWKS})
	if err != nil {
		t.Fatal(err)
	}
	token := is.Sign(t, "ec", map[string]any{"sub": "ada@example.com", "fsmd_role": "write", "groups": []string{"approvers"},
		"exp": time.Now().Add(time.Hour), "iat": time.Now()})
	withKeys := setup(t, Options{Keys: keys, Tokens: tokens})
	open := setup(t, Options{})

	tests := []struct {
		name   string
		b      *bundle
		bearer string // "" sends no Authorization
		want   string // the answer's body, or the problem's code
		status int
	}{
		{"a read key", withKeys, reader, `{"name":"reader","kind":"user","role":"read","groups":[]}`, 200},
		{"a write key with groups", withKeys, writer, `{"name":"writer","kind":"user","role":"write","groups":["finance","managers"]}`, 200},
		{"an admin key named by its hash", withKeys, admin, `{"name":"key-` + keyHash(admin)[:8] + `","kind":"user","role":"admin","groups":[]}`, 200},
		{"a token", withKeys, token, `{"name":"ada@example.com","kind":"user","role":"write","groups":["approvers"]}`, 200},
		{"no key", withKeys, "", "unauthorized", 401},
		{"a key the server does not have", withKeys, "fsmd_" + strings.Repeat("x", 43), "unauthorized", 401},
		{"a server without keys: the anonymous user", open, "", `{"name":"","kind":"user","role":"admin","groups":[]}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req{method: "GET", path: "/v1/me"}
			if tt.bearer != "" {
				r.header = map[string]string{"Authorization": "Bearer " + tt.bearer}
			}
			rec := tt.b.do(t, r)
			if tt.status != 200 {
				problem(t, rec, tt.status, tt.want)
				return
			}
			if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != tt.want {
				t.Errorf("%d %s, want %s", rec.Code, rec.Body, tt.want)
			}
		})
	}
	problem(t, open.do(t, req{method: "GET", path: "/v1/me?x=1"}), 400, "invalid_request")
}

// keyHash is the SHA-256 of a key in hex, as the keys file holds it (and a key's default name
// takes its first 8 digits).
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
