package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/auth/authtest"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// authBenchDefs are the same counter twice: plain, and with `allow` and a guard on the actor on
// its only branch.
const authBenchDefs = `name: counter
initial: open
context: {n: int}
states:
  open:
    on:
      add: {to: open, set: {n: ctx.n + 1}}
---
name: counter_allow
initial: open
context: {n: int}
states:
  open:
    on:
      add:
        to: open
        allow: [depositors]
        guard: actor.name != ""
        set: {n: ctx.n + 1}
`

// BenchmarkEventPathAuth measures what authentication, `allow` and the actor add to the event path
// (issue 15: under 5%), side by side on one database, one service and one process, interleaved:
// each iteration is a round that sends authBenchEvents events one after the other through the HTTP
// API to each of four servers of the same service, a: without keys, to a definition without
// allow; b: with an API key of the group, to the same definition with allow and a guard on
// actor.name; c: a bearer token (EdDSA) likewise; k: the API key to the plain definition (the
// authentication alone). It reports each one's µs per event over all
// rounds and b's, c's and k's ratio to a's events per second:
//
//	go test ./tests -run '^$' -bench EventPathAuth -benchtime 10x
func BenchmarkEventPathAuth(b *testing.B) {
	ctx := context.Background()
	db, err := persistence.Open(ctx, dbtest.PostgresDatabaseURL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	quiet := slog.New(slog.DiscardHandler)
	svc := service.New(db, service.Options{Logger: quiet})
	b.Cleanup(svc.Close)
	ids := map[string][]string{}
	for _, src := range strings.Split(authBenchDefs, "---\n") {
		name := strings.TrimPrefix(strings.SplitN(src, "\n", 2)[0], "name: ")
		if _, err := svc.PutDefinition(ctx, name, []byte(src)); err != nil {
			b.Fatal(err)
		}
		for i := range 16 {
			id := fmt.Sprintf("%s-%d", name, i)
			if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: name, ID: id}); err != nil {
				b.Fatal(err)
			}
			ids[name] = append(ids[name], id)
		}
	}
	keys, parsed := testKeys(b, testKey{auth.Write, "bench", []string{"depositors"}})
	is := authtest.NewIssuer(b, b.TempDir())
	tokens, err := auth.NewTokens(auth.TokenConfig{JWKSFile: is.JWKS, Issuer: "https://id.example", Audience: "fsmd"})
	if err != nil {
		b.Fatal(err)
	}
	token := is.Sign(b, "ed", map[string]any{"iss": "https://id.example", "aud": "fsmd", "sub": "bench", "fsmd_role": "write",
		"groups": []string{"depositors"}, "exp": time.Now().Add(time.Hour), "iat": time.Now()})
	serve := func(o server.Options) *httptest.Server {
		o.Logger = quiet
		srv := httptest.NewServer(server.New(svc, o))
		b.Cleanup(srv.Close)
		return srv
	}
	configs := []struct {
		name   string
		srv    *httptest.Server
		bearer string
		ids    []string
		took   time.Duration
	}{
		{"a", serve(server.Options{}), "", ids["counter"], 0},
		{"b", serve(server.Options{Keys: parsed}), keys["bench"], ids["counter_allow"], 0},
		{"c", serve(server.Options{Tokens: tokens}), token, ids["counter_allow"], 0},
		{"k", serve(server.Options{Keys: parsed}), keys["bench"], ids["counter"], 0}, // the key alone, without allow
	}
	client := &http.Client{Transport: &http.Transport{}} // not the conformance harness of http.DefaultTransport: its checks would be measured
	send := func(srv *httptest.Server, bearer, id string) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/instances/"+id+"/events", strings.NewReader(`{"event":"add"}`))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", srv.URL, resp.StatusCode)
		}
	}
	for i := range configs { // warm-up: connections, caches, prepared statements
		for j := range 200 {
			send(configs[i].srv, configs[i].bearer, configs[i].ids[j%16])
		}
	}
	b.ResetTimer()
	for round := range b.N {
		for k := range configs {
			c := &configs[(k+round)%len(configs)] // the order turns each round
			start := time.Now()
			for j := range authBenchEvents {
				send(c.srv, c.bearer, c.ids[j%16])
			}
			c.took += time.Since(start)
		}
	}
	n := float64(b.N * authBenchEvents)
	for _, c := range configs {
		b.ReportMetric(float64(c.took.Microseconds())/n, c.name+"-µs/event")
	}
	b.ReportMetric(float64(configs[0].took)/float64(configs[1].took), "b/a")
	b.ReportMetric(float64(configs[0].took)/float64(configs[2].took), "c/a")
	b.ReportMetric(float64(configs[0].took)/float64(configs[3].took), "k/a")
}

// authBenchEvents is how many events a round sends to each configuration.
const authBenchEvents = 2000
