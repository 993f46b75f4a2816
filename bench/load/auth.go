package main

// -auth-compare: what authentication and authorization add to the event path (issue 15). The same
// load runs against fsmd in three configurations, in rounds that take each in turn:
//
//	a (none):  no keys or tokens, the account definition of bench/testdata (no allow);
//	b (key):   an API keys file with a write key in the group depositors, and the definition of
//	           testdata/allow: the deposit branch has allow: [depositors] and a guard reading
//	           actor.name;
//	c (token): bearer tokens (JWT) signed by a fresh key whose JWKS fsmd reads (--jwt-jwks,
//	           --jwt-issuer, --jwt-audience), in the group depositors, on the same allow definition.
//
// Each configuration is an fsmd process of its own on a database of its own, started once (as
// without -auth-compare: prepare, load, finish); no pgbench runs.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// authMode is how fsmd authenticates the load's requests.
type authMode int

const (
	authNone  authMode = iota // no keys or tokens: every request is let in (fsmd listens on loopback)
	authKey                   // an API keys file with one write key, in benchGroup
	authToken                 // bearer tokens signed by a fresh key of -token-alg, in benchGroup
)

// variant is one configuration of fsmd the load runs against.
type variant struct {
	name        string // a, b, c with -auth-compare; names its log
	auth        authMode
	definitions string   // the folder fsmd serves
	args        []string // more flags for fsmd serve (-log-compare: --log-level)
	describe    string   // for the report
}

// The caller's name and group, for the key and the token; testdata/allow lets benchGroup deposit.
const (
	benchName     = "bench"
	benchGroup    = "depositors"
	tokenIssuer   = "https://issuer.bench.fsmd.invalid"
	tokenAudience = "fsmd-bench"
)

// tokenAlgs are the algorithms -token-alg takes: each makes a fresh private key.
var tokenAlgs = map[string]struct {
	alg  jwa.SignatureAlgorithm
	keys func() (any, error)
}{
	"EdDSA": {jwa.EdDSA(), func() (any, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }},
	"ES256": {jwa.ES256(), func() (any, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	"RS256": {jwa.RS256(), func() (any, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
}

// credentials makes what fsmd needs to authenticate the load as mode says (files in the scratch
// folder, fresh for each start), and returns its flags and the credential the clients send.
func (b *bench) credentials(mode authMode) (args []string, bearer string, err error) {
	prefix := filepath.Join(b.dir, fmt.Sprintf("auth-%d-", b.starts))
	switch mode {
	case authKey:
		key, line, err := auth.New(auth.Write, benchName, benchGroup)
		if err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(prefix+"keys", []byte(line+"\n"), 0o600); err != nil {
			return nil, "", err
		}
		return []string{"--api-keys", prefix + "keys"}, key, nil
	case authToken:
		jwks, token, err := newToken(b.c.TokenAlg, time.Hour)
		if err != nil {
			return nil, "", fmt.Errorf("make a token: %w", err)
		}
		if err := os.WriteFile(prefix+"jwks.json", jwks, 0o600); err != nil {
			return nil, "", err
		}
		return []string{"--jwt-jwks", prefix + "jwks.json", "--jwt-issuer", tokenIssuer, "--jwt-audience", tokenAudience}, token, nil
	}
	return nil, "", nil
}

// newToken makes a fresh key of alg and returns a JWKS with its public half (kid "bench") and a
// token it signs, valid for ttl: sub benchName, groups [benchGroup], role write, with the issuer and
// audience fsmd is started with.
func newToken(alg string, ttl time.Duration) (jwks []byte, token string, err error) {
	a, ok := tokenAlgs[alg]
	if !ok {
		return nil, "", fmt.Errorf("algorithm %q", alg)
	}
	raw, err := a.keys()
	if err != nil {
		return nil, "", err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return nil, "", err
	}
	if err := key.Set(jwk.KeyIDKey, "bench"); err != nil {
		return nil, "", err
	}
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		return nil, "", err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, "", err
	}
	if jwks, err = json.Marshal(set); err != nil {
		return nil, "", err
	}
	now := time.Now()
	tok, err := jwt.NewBuilder().Issuer(tokenIssuer).Audience([]string{tokenAudience}).Subject(benchName).
		IssuedAt(now).Expiration(now.Add(ttl)).
		Claim("groups", []string{benchGroup}).Claim("fsmd_role", auth.Write.String()).Build()
	if err != nil {
		return nil, "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(a.alg, key))
	if err != nil {
		return nil, "", err
	}
	return jwks, string(signed), nil
}

// compareAuth runs the load against fsmd in the three configurations side by side
// (compareVariants) and reports their ratios to a.
func (b *bench) compareAuth(ctx context.Context, pg *dbtest.Server, bin, version string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	allow := filepath.Join(root, "bench", "load", "testdata", "allow")
	vs := []variant{
		{name: "a", auth: authNone, definitions: b.c.Definitions, describe: "no auth; account without allow (bench/testdata)"},
		{name: "b", auth: authKey, definitions: allow, describe: "API key (write, groups=" + benchGroup + "); account with allow and a guard on actor.name (bench/load/testdata/allow)"},
		{name: "c", auth: authToken, definitions: allow, describe: "bearer token (" + b.c.TokenAlg + " JWT, --jwt-jwks/issuer/audience); the same allow definition"},
	}
	results, err := b.compareVariants(ctx, pg, bin, vs)
	if err != nil {
		return err
	}
	b.reportCompare("auth", version, vs, results, func(tot []totals) (string, bool) {
		ok := true
		for _, t := range tot[1:] {
			ok = ok && t.rate/tot[0].rate >= targetAuth
		}
		return fmt.Sprintf("b and c at least %.2f of a's events/s over all rounds", targetAuth), ok
	})
	return nil
}

// compareVariants starts fsmd as each of vs says, each on a database of its own with its
// instances, then runs the load -rounds times against each in turn, round r starting with the r-th
// (a, b, c; b, c, a; c, a, b; ...), so that none always runs first or last and what else the machine
// does falls on all alike; the processes stay up between rounds (each round has its warm-up and
// starts with a CHECKPOINT). Then it checks each database's audit. The results are [variant][round].
func (b *bench) compareVariants(ctx context.Context, pg *dbtest.Server, bin string, vs []variant) ([][]fsmdResult, error) {
	servers := make([]*server, len(vs))
	for i, v := range vs {
		var err error
		if servers[i], err = b.prepare(ctx, pg, bin, v); err != nil {
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
		defer servers[i].client.CloseIdleConnections()
	}
	results := make([][]fsmdResult, len(vs)) // [variant][round]
	acked := make([]int64, len(vs))
	for i := range results {
		results[i] = make([]fsmdResult, b.c.Rounds)
	}
	for r := range b.c.Rounds {
		for k := range vs {
			i := (k + r) % len(vs)
			b.checkpoint(ctx, pg)
			res, err := b.load(ctx, servers[i].client, servers[i])
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", r+1, vs[i].name, err)
			}
			if res.errors > 0 {
				return nil, fmt.Errorf("round %d, %s: %d requests failed", r+1, vs[i].name, res.errors)
			}
			b.progress("round %d of %d, %s: %.1f events/s", r+1, b.c.Rounds, vs[i].name, res.rate)
			results[i][r], acked[i] = res, acked[i]+res.acked
		}
	}
	for i, v := range vs {
		revisions, rss, err := b.finish(ctx, servers[i], acked[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
		b.progress("%s: audit check: %d events acknowledged, %d counted in the instances' revisions; fsmd's peak RSS %s MiB", v.name, acked[i], revisions, mib(rss))
	}
	return results, nil
}

// targetAuth: authorization and the actor add under 5% to the event path (issue 15): b and c at
// least 0.95 times a's events/s.
const targetAuth = 0.95

// totals is a configuration over all its rounds.
type totals struct {
	rate         float64 // events over measured seconds
	fsmdUS, pgUS float64 // CPU per event, microseconds; -1 when not read
	count        int
	p50, p99     time.Duration // the medians of the rounds'
	ratios       []float64     // events/s over a's, per round
	fsmdCPURatio float64       // fsmd CPU per event over a's
}

func sumUp(rs []fsmdResult) totals {
	var t totals
	var secs, fsmdCPU, pgCPU float64
	var p50s, p99s []time.Duration
	for _, r := range rs {
		t.count += r.count
		if r.rate > 0 {
			secs += float64(r.count) / r.rate
		}
		if r.cpu.server < 0 || r.cpu.postgres < 0 || fsmdCPU < 0 {
			fsmdCPU, pgCPU = -1, -1
		} else {
			fsmdCPU += r.cpu.server * r.cpu.elapsed.Seconds()
			pgCPU += r.cpu.postgres * r.cpu.elapsed.Seconds()
		}
		p50s, p99s = append(p50s, r.lat.p50), append(p99s, r.lat.p99)
	}
	if secs > 0 {
		t.rate = float64(t.count) / secs
	}
	t.fsmdUS, t.pgUS = -1, -1
	if fsmdCPU >= 0 && t.count > 0 {
		t.fsmdUS, t.pgUS = fsmdCPU*1e6/float64(t.count), pgCPU*1e6/float64(t.count)
	}
	slices.Sort(p50s)
	slices.Sort(p99s)
	t.p50, t.p99 = p50s[len(p50s)/2], p99s[len(p99s)/2]
	return t
}

// reportCompare reports a comparison of variants (kind: auth or log), the first the reference the
// others are divided by; target says what the target is and whether the totals meet it.
func (b *bench) reportCompare(kind, version string, vs []variant, results [][]fsmdResult, target func([]totals) (string, bool)) {
	w := b.out
	fmt.Fprintf(w, "\nfsmd %s compare: %d clients, %d rounds of %v measured after %v warm-up per configuration, %d instances, %s\n",
		kind, b.c.Clients, b.c.Rounds, b.c.Duration, b.c.Warmup, b.c.Instances, b.databaseName(version))
	for _, v := range vs {
		fmt.Fprintf(w, "  %s: %s\n", v.name, v.describe)
	}
	us := func(x float64) string {
		if x < 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", x)
	}
	perEvent := func(cores float64, r fsmdResult) float64 {
		if cores < 0 || r.count == 0 {
			return -1
		}
		return cores * r.cpu.elapsed.Seconds() * 1e6 / float64(r.count)
	}
	fmt.Fprintf(w, "%-6s %-4s %8s %10s %7s %7s %7s %10s %10s\n", "round", "", "count", "events/s", "vs a", "p50", "p99", "fsmd µs/ev", "PG µs/ev")
	for r := range b.c.Rounds {
		for i, v := range vs {
			res := results[i][r]
			fmt.Fprintf(w, "%-6d %-4s %8d %10.1f %7.3f %7s %7s %10s %10s\n", r+1, v.name, res.count, res.rate,
				res.rate/results[0][r].rate, ms(res.lat.p50), ms(res.lat.p99),
				us(perEvent(res.cpu.server, res)), us(perEvent(res.cpu.postgres, res)))
		}
	}
	tot := make([]totals, len(vs))
	for i := range vs {
		tot[i] = sumUp(results[i])
		for r := range b.c.Rounds {
			tot[i].ratios = append(tot[i].ratios, results[i][r].rate/results[0][r].rate)
		}
		if tot[i].fsmdUS > 0 && tot[0].fsmdUS > 0 {
			tot[i].fsmdCPURatio = tot[i].fsmdUS / tot[0].fsmdUS
		}
	}
	fmt.Fprintf(w, "all rounds (events over measured seconds; latencies: the rounds' medians):\n")
	for i, v := range vs {
		t := tot[i]
		fmt.Fprintf(w, "%-6s %-4s %8d %10.1f %7.3f %7s %7s %10s %10s\n", "all", v.name, t.count, t.rate, t.rate/tot[0].rate,
			ms(t.p50), ms(t.p99), us(t.fsmdUS), us(t.pgUS))
	}
	var kv []string
	for i, v := range vs {
		kv = append(kv, fmt.Sprintf("%s_events_per_s=%.1f %s_fsmd_cpu_us=%.0f", v.name, tot[i].rate, v.name, tot[i].fsmdUS))
	}
	for i, v := range vs[1:] {
		t := tot[i+1]
		ratio := t.rate / tot[0].rate
		rounds := make([]string, len(t.ratios))
		for j, x := range t.ratios {
			rounds[j] = fmt.Sprintf("%.3f", x)
		}
		med := median(t.ratios)
		fmt.Fprintf(w, "ratio %s/a %.3f (the rounds' median %.3f; rounds: %s), fsmd CPU per event %s/a %.3f\n",
			v.name, ratio, med, strings.Join(rounds, " "), v.name, t.fsmdCPURatio)
		kv = append(kv, fmt.Sprintf("ratio_%s=%.3f median_ratio_%s=%.3f fsmd_cpu_ratio_%s=%.3f", v.name, ratio, v.name, med, v.name, t.fsmdCPURatio))
	}
	what, ok := target(tot)
	fmt.Fprintf(w, "target: %s: %s\n", what, verdict(ok))
	if kind == "auth" {
		kv = append([]string{"token_alg=" + b.c.TokenAlg}, kv...)
	}
	fmt.Fprintf(w, "RESULT %s-compare database=%s clients=%d duration=%s rounds=%d %s target=%s\n",
		kind, b.c.Database, b.c.Clients, b.c.Duration, b.c.Rounds, strings.Join(kv, " "), verdict(ok))
}

// median of xs (the mean of the middle two when their number is even); xs is not changed.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
