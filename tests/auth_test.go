package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/auth/authtest"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

const authBell = `name: bell
initial: quiet
states:
  quiet: {on: {ring: quiet}}
`

// authKeys makes a key of each role, and the keys file that grants them.
func authKeys(t *testing.T) (map[auth.Role]string, *auth.Keys) {
	t.Helper()
	keys := map[auth.Role]string{}
	var file strings.Builder
	for _, r := range []auth.Role{auth.Read, auth.Write, auth.Admin} {
		key, line, err := auth.New(r, r.String()+"-key")
		if err != nil {
			t.Fatal(err)
		}
		keys[r] = key
		file.WriteString(line + "\n")
	}
	parsed, err := auth.Parse("keys", strings.NewReader(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	return keys, parsed
}

// authBellService is a service over db with the bell definition (from a folder, returned for
// reloads) and its instance b1.
func authBellService(t *testing.T, db *persistence.DB) (*service.Service, string) {
	t.Helper()
	ctx := context.Background()
	defs := t.TempDir()
	if err := os.WriteFile(filepath.Join(defs, "bell.yaml"), []byte(authBell), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := service.New(db, service.Options{})
	t.Cleanup(svc.Close)
	set, diags, err := machine.Load(defs)
	if err != nil || diags.Errors() > 0 {
		t.Fatalf("%v %v", err, diags)
	}
	if err := svc.Register(ctx, set); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "bell", ID: "b1"}); err != nil {
		t.Fatal(err)
	}
	return svc, defs
}

// TestAuthMatrix: every endpoint, with no key, a wrong key and a key of each role: the role that
// may call it (and those above) get its answer, the others 403, no key or a wrong one 401; the
// probes are open. The history records the key's name as the actor.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc, defs := authBellService(t, db)
		keys, parsed := authKeys(t)
		srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed, Definitions: defs}))
		t.Cleanup(srv.Close)

		type who struct {
			name string
			key  string
			role auth.Role
		}
		callers := []who{{"no key", "", auth.None}, {"a wrong key", auth.Prefix + strings.Repeat("x", 43), auth.None},
			{"read", keys[auth.Read], auth.Read}, {"write", keys[auth.Write], auth.Write}, {"admin", keys[auth.Admin], auth.Admin}}
		endpoints := []struct {
			method, path, body, contentType string
			need                            auth.Role // auth.None: open
			ok                              int
		}{
			{"GET", "/healthz", "", "", auth.None, 200},
			{"GET", "/readyz", "", "", auth.None, 200},
			{"GET", "/metrics", "", "", auth.None, 200},
			{"GET", "/ui/", "", "", auth.None, 200},
			{"GET", "/ui/instances/b1", "", "", auth.None, 200},
			{"GET", "/ui/assets/app.js", "", "", auth.None, 200},
			{"GET", "/v1/definitions", "", "", auth.Read, 200},
			{"GET", "/v1/definitions/bell", "", "", auth.Read, 200},
			{"GET", "/v1/definitions/bell/versions", "", "", auth.Read, 200},
			{"GET", "/v1/definitions/bell/versions/1", "", "", auth.Read, 200},
			{"GET", "/v1/definitions/bell/diagram", "", "", auth.Read, 200},
			{"GET", "/v1/definitions/bell/migrations", "", "", auth.Read, 200},
			{"GET", "/v1/instances", "", "", auth.Read, 200},
			{"GET", "/v1/instances/b1", "", "", auth.Read, 200},
			{"GET", "/v1/instances/b1/history", "", "", auth.Read, 200},
			{"GET", "/v1/migrations/nope", "", "", auth.Read, 404},
			{"GET", "/v1/outbox/dead", "", "", auth.Read, 200},
			{"GET", "/v1/messages/dead", "", "", auth.Read, 200},
			{"POST", "/v1/instances", `{"definition": "bell"}`, "application/json", auth.Write, 201},
			{"POST", "/v1/instances/b1/events", `{"event": "ring"}`, "application/json", auth.Write, 200},
			{"POST", "/v1/instances/b1/explain", `{"event": "ring"}`, "application/json", auth.Write, 200},
			{"PUT", "/v1/definitions/bell", authBell, "application/yaml", auth.Admin, 200},
			{"POST", "/v1/definitions/bell/migrations/plan", `{}`, "application/json", auth.Admin, 200},
			{"POST", "/v1/reload", "", "", auth.Admin, 200},
			{"POST", "/v1/outbox/dead/redrive", "", "", auth.Admin, 200},
			{"POST", "/v1/messages/dead/nope/redrive", "", "", auth.Admin, 404},
		}
		for _, e := range endpoints {
			for _, c := range callers {
				want := e.ok
				switch {
				case e.need == auth.None:
				case c.role == auth.None:
					want = http.StatusUnauthorized
				case c.role < e.need:
					want = http.StatusForbidden
				}
				req, _ := http.NewRequest(e.method, srv.URL+e.path, strings.NewReader(e.body))
				if e.contentType != "" {
					req.Header.Set("Content-Type", e.contentType)
				}
				if c.key != "" {
					req.Header.Set("Authorization", "Bearer "+c.key)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var body bytes.Buffer
				_, _ = body.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("%s %s with %s: %d %s, want %d", e.method, e.path, c.name, resp.StatusCode, body.String(), want)
					continue
				}
				if want == 401 || want == 403 {
					var p struct{ Code string }
					if json.Unmarshal(body.Bytes(), &p); p.Code != map[int]string{401: "unauthorized", 403: "forbidden"}[want] ||
						resp.Header.Get("Content-Type") != "application/problem+json" {
						t.Errorf("%s %s with %s: %s %s", e.method, e.path, c.name, resp.Header.Get("Content-Type"), body.String())
					}
				}
			}
		}
		h, err := svc.History(ctx, "b1", 0, 10)
		if err != nil || len(h.Items) != 2 || h.Items[0].Actor != "write-key" || h.Items[1].Actor != "admin-key" {
			t.Errorf("history: %+v, %v; want two rings, by write-key and admin-key", h.Items, err)
		}
	})
}

// authFrom is an HTTP client whose connections come from the loopback address local (the whole of
// 127.0.0.0/8 is loopback on Linux): a client at an address of its own.
func authFrom(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// authGet sends GET /v1/definitions with key, from hc, with X-Forwarded-For xff unless "", and
// returns the status and Retry-After.
func authGet(t *testing.T, hc *http.Client, base, key, xff string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/definitions", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// authWrongKey is the i-th of many keys the server does not have.
func authWrongKey(i int) string { return fmt.Sprintf("%s%043d", auth.Prefix, i) }

// TestAuthBruteForce: a client that fails to authenticate too often has its further failures
// refused for a while (429 and Retry-After), but a valid key from it always passes: the users
// behind one address (a NAT, a proxy) are not locked out by one of them guessing. Without trusted
// proxies the client is the peer, whatever X-Forwarded-For says: a spoofed one neither escapes the
// lockout nor locks out the address it names.
func TestAuthBruteForce(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	svc := service.New(db, service.Options{})
	t.Cleanup(svc.Close)
	keys, parsed := authKeys(t)
	srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed}))
	t.Cleanup(srv.Close)
	guesser, neighbour := authFrom(t, "127.0.0.1"), authFrom(t, "127.0.0.2")

	for i := range 20 {
		if st, _ := authGet(t, guesser, srv.URL, authWrongKey(i), "127.0.0.2"); st != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d, want 401", i, st)
		}
	}
	for i := range 3 {
		if st, retry := authGet(t, guesser, srv.URL, authWrongKey(100+i), ""); st != http.StatusTooManyRequests || retry == "" {
			t.Errorf("a wrong key after 20 failures: %d (Retry-After %q), want 429", st, retry)
		}
		for _, r := range []auth.Role{auth.Read, auth.Admin} {
			if st, _ := authGet(t, guesser, srv.URL, keys[r], ""); st != http.StatusOK {
				t.Errorf("the %s key from the locked-out address: %d, want 200", r, st)
			}
		}
	}
	if st, _ := authGet(t, guesser, srv.URL, authWrongKey(200), "198.51.100.7"); st != http.StatusTooManyRequests {
		t.Errorf("a wrong key with a spoofed X-Forwarded-For: %d, want 429 (the peer is locked out)", st)
	}
	if st, _ := authGet(t, neighbour, srv.URL, authWrongKey(300), ""); st != http.StatusUnauthorized {
		t.Errorf("a wrong key from the address the guesser named in X-Forwarded-For: %d, want 401", st)
	}
}

// TestAuthBruteForceProxies: behind a trusted proxy (--trusted-proxies) the lockout counts each
// forwarded client apart: the nearest X-Forwarded-For address that is not a trusted proxy, so that
// what a client writes at the start of the header changes nothing. An untrusted peer's
// X-Forwarded-For is not believed.
func TestAuthBruteForceProxies(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	svc := service.New(db, service.Options{})
	t.Cleanup(svc.Close)
	keys, parsed := authKeys(t)
	srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
	t.Cleanup(srv.Close)
	proxy, stranger := authFrom(t, "127.0.0.1"), authFrom(t, "127.0.0.2")

	// 203.0.113.1 guesses, claiming to be 203.0.113.2 at the start of the header; the proxy appends
	// the address it sees.
	for i := range 20 {
		if st, _ := authGet(t, proxy, srv.URL, authWrongKey(i), "203.0.113.2, 203.0.113.1"); st != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d, want 401", i, st)
		}
	}
	for _, tc := range []struct {
		name, key, xff string
		want           int
	}{
		{"the guesser, a wrong key", authWrongKey(100), "203.0.113.1", http.StatusTooManyRequests},
		{"the guesser, a valid key", keys[auth.Read], "203.0.113.1", http.StatusOK},
		{"the guesser through two trusted hops", authWrongKey(101), "203.0.113.1, 127.0.0.1", http.StatusTooManyRequests},
		{"the client it named, a wrong key", authWrongKey(102), "203.0.113.2", http.StatusUnauthorized},
		{"another client, a wrong key", authWrongKey(103), "203.0.113.3", http.StatusUnauthorized},
		{"another client, a valid key", keys[auth.Write], "203.0.113.3", http.StatusOK},
	} {
		if st, _ := authGet(t, proxy, srv.URL, tc.key, tc.xff); st != tc.want {
			t.Errorf("%s (X-Forwarded-For: %s): %d, want %d", tc.name, tc.xff, st, tc.want)
		}
	}

	// A peer that is no trusted proxy is itself the client, whatever its header says.
	for i := range 20 {
		if st, _ := authGet(t, stranger, srv.URL, authWrongKey(200+i), "203.0.113.9"); st != http.StatusUnauthorized {
			t.Fatalf("wrong key %d from an untrusted peer: %d, want 401", i, st)
		}
	}
	if st, _ := authGet(t, stranger, srv.URL, authWrongKey(300), "203.0.113.10"); st != http.StatusTooManyRequests {
		t.Errorf("the untrusted peer, another X-Forwarded-For: %d, want 429", st)
	}
	if st, _ := authGet(t, proxy, srv.URL, authWrongKey(301), "203.0.113.9"); st != http.StatusUnauthorized {
		t.Errorf("the address the untrusted peer named, through the proxy: %d, want 401", st)
	}
}

// TestAuthTokens: a server with API keys and bearer tokens (a JWKS of freshly made RSA, P-256 and
// Ed25519 keys) takes both in one run: a token of each algorithm is let in with its role and its
// name recorded as the actor; expired, unknown-kid, wrongly addressed and oversized tokens are
// 401 with WWW-Authenticate; a read token may not send events (403); a key still works.
func TestAuthTokens(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc, _ := authBellService(t, db)
		is := authtest.NewIssuer(t, t.TempDir())
		tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: is.JWKS, Issuer: "https://id.example", Audience: "fsmd"})
		if err != nil {
			t.Fatal(err)
		}
		keys, parsed := authKeys(t)
		srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed, Tokens: tokens}))
		t.Cleanup(srv.Close)
		claims := func(sub, role string, exp time.Time, aud string) map[string]any {
			return map[string]any{"iss": "https://id.example", "aud": aud, "sub": sub, "fsmd_role": role,
				"groups": []string{"approvers"}, "exp": exp, "iat": time.Now()}
		}
		hour := time.Now().Add(time.Hour)
		ring := func(bearer string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest("POST", srv.URL+"/v1/instances/b1/events", strings.NewReader(`{"event": "ring"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+bearer)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		for _, kid := range []string{"rsa", "ec", "ed"} {
			if resp := ring(is.Sign(t, kid, claims("ada-"+kid, "write", hour, "fsmd"))); resp.StatusCode != http.StatusOK {
				t.Errorf("a write token signed with %s: %d", kid, resp.StatusCode)
			}
		}
		if resp := ring(keys[auth.Write]); resp.StatusCode != http.StatusOK {
			t.Errorf("a write key beside tokens: %d", resp.StatusCode)
		}
		if resp := ring(is.Sign(t, "ec", claims("bob", "read", hour, "fsmd"))); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a read token sending an event: %d, want 403", resp.StatusCode)
		}
		refused := map[string]string{
			"expired":          is.Sign(t, "ed", claims("ada", "write", time.Now().Add(-time.Hour), "fsmd")),
			"another audience": is.Sign(t, "ed", claims("ada", "write", hour, "elsewhere")),
			"an unknown kid":   authtest.NewIssuer(t, t.TempDir()).Sign(t, "rsa", claims("ada", "write", hour, "fsmd")),
			"64 KB":            "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("a", 64<<10) + ".c2ln",
		}
		for name, tok := range refused {
			resp := ring(tok)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("%s: %d %q, want 401 with WWW-Authenticate", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
		hist, err := svc.History(ctx, "b1", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var actors []string
		for _, e := range hist.Items {
			actors = append(actors, e.Actor)
		}
		if got := strings.Join(actors, " "); got != "ada-rsa ada-ec ada-ed write-key" {
			t.Errorf("the history's actors: %q", got)
		}
	})
}
