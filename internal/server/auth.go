package server

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/console"
)

// actorKey is where the authenticated key's name is kept in the echo context.
const actorKey = "fsmd.actor"

// actor is the name of the key or token that authenticated the request ("" when the server has
// neither).
func actor(c echo.Context) string {
	p, _ := c.Get(actorKey).(auth.Principal)
	return p.Name
}

// actorGroups are the groups of the key or token that authenticated the request (none without).
func actorGroups(c echo.Context) []string {
	p, _ := c.Get(actorKey).(auth.Principal)
	return p.Groups
}

// authenticates reports whether the server checks credentials: it has API keys, bearer tokens, or
// both.
func (s *server) authenticates() bool {
	return (s.keys != nil && s.keys.Len() > 0) || s.tokens != nil
}

// requiredRole is the role a route needs: every GET is read's; creating instances, sending events
// and explaining are write's; the rest (definitions, migrations, reload, the outbox) admin's.
func requiredRole(method, route string) auth.Role {
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return auth.Read
	case method == http.MethodPost && (route == "/v1/instances" || route == "/v1/instances/:id/events" || route == "/v1/instances/:id/explain" ||
		route == "/v1/instances/:id/assign"):
		return auth.Write
	}
	return auth.Admin
}

// open reports whether a route takes no key: the probes, the API document, Swagger UI and the
// console (their files hold no data; their requests to the API carry the key the user enters), and
// /metrics unless Options.MetricsNeedKey.
func (s *server) open(route string) bool {
	switch {
	case route == "/healthz" || route == "/readyz" || route == "/openapi.json" ||
		route == "/swagger" || strings.HasPrefix(route, "/swagger/"),
		route == console.Prefix || strings.HasPrefix(route, console.Prefix+"/"):
		return true
	case route == "/metrics":
		return !s.metricsNeedKey
	}
	return false
}

// authenticate checks the request's credential (Authorization: Bearer KEY-OR-TOKEN) against the
// keys or the token issuer's keys, and the route's role. With neither every request passes: serve
// then listens on loopback only.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.authenticates() || s.open(c.Path()) {
			return next(c)
		}
		scheme, token, found := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="fsmd"`)
			return &requestError{code: code.Unauthorized, detail: "send the API key as Authorization: Bearer <key>"}
		}
		// The lockout refuses failed attempts only: a valid key always passes, so that the users
		// behind one address (a NAT, a proxy) are not locked out by one of them guessing.
		who, what, refused := s.credential(token)
		if refused != "" {
			client, now := failureClient(c.RealIP()), time.Now()
			if wait, blocked := s.failures.blocked(client, now); blocked {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
				return &requestError{code: code.TooManyRequests, detail: "too many failed authentications from this client: try again later"}
			}
			s.failures.fail(client, now)
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="fsmd", error="invalid_token"`)
			return &requestError{code: code.Unauthorized, detail: refused}
		}
		if need := requiredRole(c.Request().Method, c.Path()); who.Role < need {
			return &requestError{code: code.Forbidden, detail: what + " " + who.Name + " has the role " + who.Role.String() +
				"; " + c.Request().Method + " " + c.Path() + " needs " + need.String()}
		}
		c.Set(actorKey, who)
		return next(c)
	}
}

// credential checks a bearer credential: a token (three dot-separated parts) when the server takes
// tokens, else an API key. It returns who it names and what it is ("the key", "the token"), or why
// it is refused.
func (s *server) credential(bearer string) (who auth.Principal, what, refused string) {
	if s.tokens != nil && auth.LooksLikeToken(bearer) {
		p, err := s.tokens.Verify(bearer)
		if err != nil {
			return auth.Principal{}, "", err.Error()
		}
		return p, "the token of", ""
	}
	if s.keys != nil {
		if key, ok := s.keys.Check(bearer); ok {
			return key.Principal(), "the key", ""
		}
	}
	if s.keys == nil || s.keys.Len() == 0 {
		return auth.Principal{}, "", "the bearer token is not valid: this server takes signed tokens (JWT), not API keys"
	}
	return auth.Principal{}, "", "the API key is not valid"
}

// clientIP is how the server finds a request's client address (echo's IPExtractor): the peer's,
// or with trusted proxies the nearest address of X-Forwarded-For that is not one of theirs (a client
// may write what it likes at the start of the header; each trusted proxy appends its peer).
// X-Forwarded-For from a peer that is not a trusted proxy is never believed.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	// echo trusts loopback, link-local and private peers unless told not to: only the list counts.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		_, n, err := net.ParseCIDR(p.Masked().String())
		if err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// failureClient is who the lockout counts a failure against: the client's address, or for IPv6
// its /64, which one host commonly has whole (and could otherwise walk through).
func failureClient(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// failures counts failed authentications per client, to slow down guessing: a client with more
// than failureLimit in failureWindow has its further failed attempts refused (429) until the
// window ends. A valid key is never refused.
type failures struct {
	mu      sync.Mutex
	clients map[string]*failureCount
}

type failureCount struct {
	n     int
	since time.Time
}

const (
	failureLimit  = 20
	failureWindow = time.Minute
	maxClients    = 100_000 // bounds the memory an attack from many addresses takes
)

func (f *failures) fail(client string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.clients == nil || len(f.clients) >= maxClients {
		f.sweep(now)
	}
	fc := f.clients[client]
	if fc == nil || now.Sub(fc.since) > failureWindow {
		fc = &failureCount{since: now}
		f.clients[client] = fc
	}
	fc.n++
}

func (f *failures) blocked(client string, now time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := f.clients[client]
	if fc == nil || fc.n < failureLimit {
		return 0, false
	}
	left := failureWindow - now.Sub(fc.since)
	return left, left > 0
}

// sweep forgets the windows that have ended (and all of them if that is not enough).
func (f *failures) sweep(now time.Time) {
	if f.clients == nil {
		f.clients = map[string]*failureCount{}
		return
	}
	for c, fc := range f.clients {
		if now.Sub(fc.since) > failureWindow {
			delete(f.clients, c)
		}
	}
	if len(f.clients) >= maxClients {
		f.clients = map[string]*failureCount{}
	}
}
