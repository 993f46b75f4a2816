// Package authtest is a test identity provider for fsmd's bearer tokens: fresh RSA, P-256 and
// Ed25519 keys, their public halves in a JWKS file, and tokens signed with each. Tests only.
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Issuer is a test identity provider: an RSA (kid "rsa"), a P-256 (kid "ec") and an Ed25519 (kid
// "ed") key, made fresh, whose public halves are in a JWKS file, and a way to sign tokens with each.
type Issuer struct {
	JWKS string             // the file
	keys map[string]jwk.Key // kid -> private key
	algs map[string]jwa.SignatureAlgorithm
}

// NewIssuer makes the keys and writes the JWKS file under dir.
func NewIssuer(t testing.TB, dir string) *Issuer {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{JWKS: filepath.Join(dir, "jwks.json"), keys: map[string]jwk.Key{},
		algs: map[string]jwa.SignatureAlgorithm{"rsa": jwa.RS256(), "ec": jwa.ES256(), "ed": jwa.EdDSA()}}
	public := jwk.NewSet()
	for kid, raw := range map[string]any{"rsa": rsaKey, "ec": ecKey, "ed": edKey} {
		key, err := jwk.Import(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := key.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
		is.keys[kid] = key
		pub, err := jwk.PublicKeyOf(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := public.AddKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(public)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(is.JWKS, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return is
}

// Sign signs claims with the key kid.
func (is *Issuer) Sign(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := jwt.Sign(tok, jwt.WithKey(is.algs[kid], is.keys[kid]))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
