package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/auth/authtest"
)

// claims are a valid token's claims, changed by the pairs given (a nil value removes the claim).
func claims(kv ...any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": "https://id.example", "aud": "fsmd", "sub": "ada", "fsmd_role": "write",
		"groups": []string{"approvers", "finance"}, "exp": now.Add(time.Hour), "nbf": now.Add(-time.Minute), "iat": now}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// unsigned builds a token by hand: a header and claims, and a signature of choice.
func unsigned(header string, c map[string]any, sig string) string {
	body, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc(body) + "." + sig
}

// TestTokens: tokens signed by each accepted algorithm name their caller; every kind of bad token
// is refused with an error that says what is wrong.
func TestTokens(t *testing.T) {
	t.Parallel()
	is := authtest.NewIssuer(t, t.TempDir())
	tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: is.JWKS, Issuer: "https://id.example", Audience: "fsmd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"rsa", "ec", "ed"} {
		p, err := tokens.Verify(is.Sign(t, kid, claims()))
		if err != nil || p.Name != "ada" || p.Role != auth.Write || strings.Join(p.Groups, ",") != "approvers,finance" {
			t.Errorf("%s: %+v, %v", kid, p, err)
		}
	}
	// A token of another issuer's key that takes a kid fsmd knows: the signature does not verify.
	other := authtest.NewIssuer(t, t.TempDir())
	// An HS256 token "signed" with the RSA key's public JWK as its secret: the old key-confusion attack.
	pubJSON, _ := os.ReadFile(is.JWKS)
	mac := hmac.New(sha256.New, pubJSON)
	hsHeader := `{"alg":"HS256","kid":"rsa","typ":"JWT"}`
	hsBody, _ := json.Marshal(claims())
	enc := base64.RawURLEncoding.EncodeToString
	mac.Write([]byte(enc([]byte(hsHeader)) + "." + enc(hsBody)))
	hs := enc([]byte(hsHeader)) + "." + enc(hsBody) + "." + enc(mac.Sum(nil))

	manyGroups := make([]string, 10_000)
	for i := range manyGroups {
		manyGroups[i] = "g"
	}
	bad := []struct {
		name, token, want string
	}{
		{"expired", is.Sign(t, "ec", claims("exp", time.Now().Add(-time.Hour))), "expired"},
		{"not valid yet", is.Sign(t, "ec", claims("nbf", time.Now().Add(time.Hour))), "not valid yet"},
		{"another issuer", is.Sign(t, "rsa", claims("iss", "https://evil.example")), "issuer"},
		{"another audience", is.Sign(t, "rsa", claims("aud", "other")), "audience"},
		{"a bad signature", other.Sign(t, "ed", claims()), "cannot be verified"},
		{"an unknown kid", unsigned(`{"alg":"ES256","kid":"nope"}`, claims(), "c2ln"), "cannot be verified"},
		{"no kid", unsigned(`{"alg":"ES256"}`, claims(), "c2ln"), "cannot be verified"},
		{"alg none", unsigned(`{"alg":"none","kid":"ec"}`, claims(), ""), "cannot be verified"},
		{"HS256 with the public key", hs, "cannot be verified"},
		{"no role", is.Sign(t, "ed", claims("fsmd_role", nil)), "claim fsmd_role"},
		{"an unknown role", is.Sign(t, "ed", claims("fsmd_role", "root")), "unknown role"},
		{"no name", is.Sign(t, "ed", claims("sub", nil)), "claim sub"},
		{"a name with control characters", is.Sign(t, "ed", claims("sub", "ada\n")), "claim sub"},
		{"10,000 groups", is.Sign(t, "ed", claims("groups", manyGroups)), "bytes; the most is"},
		{"300 groups", is.Sign(t, "ed", claims("groups", manyGroups[:300])), "300 groups; the most is 256"},
		{"groups not a list", is.Sign(t, "ed", claims("groups", "approvers")), "claim groups"},
		{"64 KB", strings.Repeat("a", 64<<10), "bytes; the most is"},
		{"malformed", "a.b.c", "cannot be verified"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tokens.Verify(tt.token)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify: %+v, %v; want an error saying %q", p, err, tt.want)
			}
		})
	}
}

// TestTokensSkew: a token expired a little less than the allowed skew ago still passes.
func TestTokensSkew(t *testing.T) {
	t.Parallel()
	is := authtest.NewIssuer(t, t.TempDir())
	tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: is.JWKS, Skew: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(is.Sign(t, "rsa", claims("exp", time.Now().Add(-30*time.Second)))); err != nil {
		t.Errorf("expired 30 s ago, skew 1 min: %v", err)
	}
	if _, err := tokens.Verify(is.Sign(t, "rsa", claims("exp", time.Now().Add(-2*time.Minute)))); err == nil {
		t.Error("expired 2 min ago, skew 1 min: accepted")
	}
}

// TestTokensRemembered: a token verified once is answered from memory until it expires (the same
// principal), and not after: an expired token is refused even when it was verified before.
func TestTokensRemembered(t *testing.T) {
	t.Parallel()
	is := authtest.NewIssuer(t, t.TempDir())
	tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: is.JWKS, Skew: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tok := is.Sign(t, "ed", claims("exp", time.Now().Add(time.Second)))
	first, err := tokens.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	again, err := tokens.Verify(tok)
	if err != nil || again.Name != first.Name || again.Role != first.Role || len(again.Groups) != len(first.Groups) {
		t.Fatalf("verified again: %+v %v, want %+v", again, err, first)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := tokens.Verify(tok); err == nil {
		t.Error("a remembered token was accepted after it expired")
	}
}

// TestNewTokensRefuses: a JWKS fsmd cannot use is refused at start, naming the key.
func TestNewTokensRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hmacKey := `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`
	tests := []struct{ name, file, want string }{
		{"missing", filepath.Join(dir, "nope.json"), "no such file"},
		{"not JSON", write("bad.json", "{"), "not a JWKS"},
		{"no keys", write("empty.json", `{"keys":[]}`), "holds no key"},
		{"a symmetric key", write("oct.json", hmacKey), "fsmd takes RSA, P-256 and Ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := auth.NewTokens(auth.TokenConfig{JWKSFile: tt.file}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewTokens: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
