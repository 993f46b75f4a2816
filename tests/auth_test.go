package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/auth"
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

// TestAuthMatrix: every endpoint, with no key, a wrong key and a key of each role: the role that
// may call it (and those above) get its answer, the others 403, no key or a wrong one 401; the
// probes are open. The history records the key's name as the actor.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
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
			{"POST", "/v1/instances", `{"definition": "bell"}`, "application/json", auth.Write, 201},
			{"POST", "/v1/instances/b1/events", `{"event": "ring"}`, "application/json", auth.Write, 200},
			{"POST", "/v1/instances/b1/explain", `{"event": "ring"}`, "application/json", auth.Write, 200},
			{"PUT", "/v1/definitions/bell", authBell, "application/yaml", auth.Admin, 200},
			{"POST", "/v1/definitions/bell/migrations/plan", `{}`, "application/json", auth.Admin, 200},
			{"POST", "/v1/reload", "", "", auth.Admin, 200},
			{"POST", "/v1/outbox/dead/redrive", "", "", auth.Admin, 200},
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

// TestAuthBruteForce: a client that fails to authenticate too often is refused for a while, with
// 429 and Retry-After, whatever key it sends then; another client is not.
func TestAuthBruteForce(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	svc := service.New(db, service.Options{})
	t.Cleanup(svc.Close)
	keys, parsed := authKeys(t)
	srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed}))
	t.Cleanup(srv.Close)
	get := func(key string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/definitions", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 20 {
		if resp := get(auth.Prefix + strings.Repeat("y", 42) + string(rune('a'+i))); resp.StatusCode != 401 {
			t.Fatalf("wrong key %d: %d, want 401", i, resp.StatusCode)
		}
	}
	resp := get(keys[auth.Read])
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 20 failures: %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
