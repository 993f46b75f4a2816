package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Bearer tokens (JWT) are the other credential fsmd takes, beside API keys: an identity provider
// signs them, fsmd verifies them against the provider's public keys (a JWKS file) and reads who the
// caller is (name, groups) and what they may do (role) from their claims. The cryptography is
// lestrrat-go/jwx's; this file only says which tokens fsmd accepts.

// Bounds of what a token may be, so that a request cannot make fsmd parse or hold much.
const (
	MaxTokenLength = 8 << 10 // bytes of a token as sent
	MaxGroups      = 256     // groups a token may name
	maxGroupLength = 200     // characters of one group's name
)

// TokenConfig says which tokens a server accepts (fsmd serve's --jwt-* flags).
type TokenConfig struct {
	JWKSFile string // the identity provider's public keys: RSA (RS256), P-256 (ES256) and Ed25519 (EdDSA) only
	Issuer   string // the `iss` a token must have; "" for any
	Audience string // a value `aud` must hold; "" for any

	NameClaim   string        // the claim naming the caller; "sub" when ""
	GroupsClaim string        // the claim listing the caller's groups; "groups" when ""
	RoleClaim   string        // the claim giving the role (read, write, admin); "fsmd_role" when ""
	Skew        time.Duration // allowed clock difference for exp, nbf and iat; 30 s when 0
}

// Tokens verifies bearer tokens. It holds the parsed key set: nothing is read per request.
type Tokens struct {
	cfg  TokenConfig
	keys jwk.Set

	// verified remembers the tokens verified, by their SHA-256, until they expire: a client sends
	// the same token with every request, and checking its signature again each time costs more
	// than the rest of an event (about 100 µs with Ed25519 or P-256). The key set never changes
	// while the process runs, so a token valid once is valid until its exp.
	mu       sync.Mutex
	verified map[[32]byte]verifiedToken
}

// verifiedToken is a token verified, who it names, and until when that holds.
type verifiedToken struct {
	p     Principal
	until time.Time
}

// Bounds of the verified tokens kept: how many, and how long one without exp is kept.
const (
	maxVerified      = 10000
	verifiedNoExpTTL = time.Minute
)

// Principal is who a credential names: its name, groups and role.
type Principal struct {
	Name   string
	Groups []string
	Role   Role
}

// NewTokens reads the JWKS file and checks that every key in it is one fsmd accepts. A key without
// `alg` gets its type's one algorithm (RSA: RS256, P-256: ES256, Ed25519: EdDSA), so that what a
// token's header says is never what decides how it is verified.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	cfg.NameClaim = or(cfg.NameClaim, "sub")
	cfg.GroupsClaim = or(cfg.GroupsClaim, "groups")
	cfg.RoleClaim = or(cfg.RoleClaim, "fsmd_role")
	if cfg.Skew == 0 {
		cfg.Skew = 30 * time.Second
	}
	data, err := os.ReadFile(cfg.JWKSFile)
	if err != nil {
		return nil, err
	}
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a JWKS: %w", cfg.JWKSFile, err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("%s: the JWKS holds no key", cfg.JWKSFile)
	}
	public := jwk.NewSet()
	for i := range set.Len() {
		key, _ := set.Key(i)
		kid, _ := key.KeyID()
		if kid == "" {
			return nil, fmt.Errorf("%s: key %d has no kid: fsmd picks a token's key by its kid", cfg.JWKSFile, i+1)
		}
		pub, err := jwk.PublicKeyOf(key)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", cfg.JWKSFile, kid, err)
		}
		alg, err := algorithmOf(pub)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", cfg.JWKSFile, kid, err)
		}
		if err := pub.Set(jwk.AlgorithmKey, alg); err != nil {
			return nil, err
		}
		if err := public.AddKey(pub); err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", cfg.JWKSFile, kid, err)
		}
	}
	return &Tokens{cfg: cfg, keys: public}, nil
}

// algorithmOf is the one algorithm fsmd verifies a key's signatures with; a key's own `alg`, when
// it has one, must be that one.
func algorithmOf(key jwk.Key) (jwa.SignatureAlgorithm, error) {
	var want jwa.SignatureAlgorithm
	switch k := key.(type) {
	case jwk.RSAPublicKey:
		want = jwa.RS256()
	case jwk.ECDSAPublicKey:
		if crv, _ := k.Crv(); crv != jwa.P256() {
			return want, fmt.Errorf("an EC key on %s: fsmd takes P-256 (ES256) only", crv)
		}
		want = jwa.ES256()
	case jwk.OKPPublicKey:
		if crv, _ := k.Crv(); crv != jwa.Ed25519() {
			return want, fmt.Errorf("an OKP key on %s: fsmd takes Ed25519 (EdDSA) only", crv)
		}
		want = jwa.EdDSA()
	default:
		return want, fmt.Errorf("a %s key: fsmd takes RSA, P-256 and Ed25519 keys", key.KeyType())
	}
	if alg, ok := key.Algorithm(); ok && alg.String() != want.String() {
		return want, fmt.Errorf("alg %s: fsmd verifies this key with %s only", alg, want)
	}
	return want, nil
}

// LooksLikeToken tells a JWT (three base64url parts) from an API key, which has no dot.
func LooksLikeToken(s string) bool { return strings.Count(s, ".") == 2 }

// Verify checks a token's signature (by its kid, with the key's one algorithm: `alg: none` and a
// header's algorithm never count), its times (with the skew), issuer and audience, and reads the
// principal from its claims. The error says what is wrong, for a 401.
func (t *Tokens) Verify(token string) (Principal, error) {
	if len(token) > MaxTokenLength {
		return Principal{}, fmt.Errorf("the token is %d bytes; the most is %d", len(token), MaxTokenLength)
	}
	sum := sha256.Sum256([]byte(token))
	now := time.Now()
	t.mu.Lock()
	v, ok := t.verified[sum]
	t.mu.Unlock()
	if ok && now.Before(v.until) {
		return v.p, nil
	}
	p, until, err := t.verify(token, now)
	if err != nil {
		return Principal{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.verified == nil || len(t.verified) >= maxVerified {
		t.verified = make(map[[32]byte]verifiedToken) // the simplest bound: start again
	}
	t.verified[sum] = verifiedToken{p: p, until: until}
	return p, nil
}

// verify checks a token's signature and claims at now: who it names, and until when (its exp, or
// a minute for a token without one).
func (t *Tokens) verify(token string, now time.Time) (Principal, time.Time, error) {
	opts := []jwt.ParseOption{
		jwt.WithKeySet(t.keys, jws.WithRequireKid(true)),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(t.cfg.Skew),
	}
	if t.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(t.cfg.Issuer))
	}
	if t.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(t.cfg.Audience))
	}
	tok, err := jwt.ParseString(token, opts...)
	if err != nil {
		return Principal{}, time.Time{}, tokenError(err)
	}
	var p Principal
	if err := tok.Get(t.cfg.NameClaim, &p.Name); err != nil || p.Name == "" || !nameRE.MatchString(p.Name) {
		return Principal{}, time.Time{}, fmt.Errorf("claim %s: want a name of 1 to 64 letters, digits or ._@-", t.cfg.NameClaim)
	}
	var role string
	if err := tok.Get(t.cfg.RoleClaim, &role); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("claim %s: want read, write or admin", t.cfg.RoleClaim)
	}
	if p.Role, err = ParseRole(role); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("claim %s: %w", t.cfg.RoleClaim, err)
	}
	if p.Groups, err = groupsOf(tok, t.cfg.GroupsClaim); err != nil {
		return Principal{}, time.Time{}, err
	}
	until := now.Add(verifiedNoExpTTL)
	if exp, ok := tok.Expiration(); ok && exp.Before(until) {
		until = exp
	}
	return p, until, nil
}

// groupsOf reads the groups claim: absent, or a list of at most MaxGroups names.
func groupsOf(tok jwt.Token, claim string) ([]string, error) {
	if !tok.Has(claim) {
		return nil, nil
	}
	var raw []any
	if err := tok.Get(claim, &raw); err != nil {
		return nil, fmt.Errorf("claim %s: want a list of group names", claim)
	}
	if len(raw) > MaxGroups {
		return nil, fmt.Errorf("claim %s: %d groups; the most is %d", claim, len(raw), MaxGroups)
	}
	groups := make([]string, len(raw))
	for i, g := range raw {
		s, ok := g.(string)
		if !ok || s == "" || len(s) > maxGroupLength || strings.ContainsFunc(s, isControl) {
			return nil, fmt.Errorf("claim %s: group %d is not a name of 1 to %d printable characters", claim, i+1, maxGroupLength)
		}
		groups[i] = s
	}
	return groups, nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// tokenError names what is wrong with a token that did not parse or validate.
func tokenError(err error) error {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return errors.New("the token has expired")
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return errors.New("the token is not valid yet")
	case errors.Is(err, jwt.InvalidIssuerError()):
		return errors.New("the token's issuer is not the one this server accepts")
	case errors.Is(err, jwt.InvalidAudienceError()):
		return errors.New("the token is not addressed to this server (audience)")
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return errors.New("the token is issued in the future")
	}
	return fmt.Errorf("the token cannot be verified: %v", err)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
