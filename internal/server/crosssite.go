package server

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/code"
)

// The defences against web pages. A page the user visits can make the user's browser send requests
// to fsmd: "simple" cross-site requests (CORS) go out without asking fsmd first, and by DNS
// rebinding a page can make its own host name resolve to the loopback address fsmd listens on,
// and then read the answers as its own. API keys stop both (a page has no key, and a browser never
// adds a Bearer key by itself); a server without keys needs the two checks below.

// checkHost refuses, on a server without keys, a request that came through a loopback connection
// but names a host that is not a loopback one: what a page that rebinds its name to 127.0.0.1
// sends. With keys any Host is served (behind a proxy it is the proxy's name), and so is any Host
// on a connection beyond loopback (--insecure: anyone who reaches the port may do anything).
func (s *server) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if s.authenticates() || !loopbackConn(req) || loopbackHost(req.Host) {
			return next(c)
		}
		return invalid("the Host %q is not a loopback name: without API keys fsmd answers only requests to localhost, "+
			"127.0.0.1 or [::1] (a web page may rebind its own name to this address)", req.Host)
	}
}

// loopbackConn reports whether the request came through a connection to a loopback address. A
// request served without a connection (a test's recorder) has none, and is not checked.
func loopbackConn(req *http.Request) bool {
	local, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(local.String())
	return err == nil && ap.Addr().IsLoopback()
}

// loopbackHost reports whether a Host header (with or without a port) names the loopback: a
// loopback address (127.0.0.0/8, [::1]), localhost, or a name under .localhost (RFC 6761: never
// resolved by DNS, so no page can rebind it).
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return a.IsLoopback()
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// simpleTypes are the content types a page may send to any site without asking it first (CORS's
// "simple" requests): a form, or fetch with a text body.
var simpleTypes = []string{"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}

// requireNonSimple refuses (415) a request to a route that changes something (POST, PUT, PATCH,
// DELETE) that a page of another site could make the user's browser send without fsmd's consent:
// one with a content type of simpleTypes (on every such route, whoever sends it), or one without
// a Content-Type (a bodyless POST) that a browser sent from another site (its Sec-Fetch-Site or
// Origin says so: net/http's CrossOriginProtection) and that carries no Bearer key. Any other
// Content-Type, or a Bearer key, makes a browser ask fsmd first, which fsmd never allows (it sends
// no CORS headers); the handlers then check the exact type they read. A request without Content-Type
// and without those browser headers is not a browser's (a script, a generated client). A path or
// method that has no route is left to the router's 404 or 405.
func requireNonSimple() echo.MiddlewareFunc {
	var once sync.Once
	writes := map[string]bool{} // "METHOD route" of every route that changes something
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			once.Do(func() {
				for _, r := range c.Echo().Routes() {
					switch r.Method {
					case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
						writes[r.Method+" "+r.Path] = true
					}
				}
			})
			if !writes[c.Request().Method+" "+c.Path()] {
				return next(c)
			}
			if err := crossSiteType(c.Request()); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// crossOrigin tells a browser's cross-origin request by its Sec-Fetch-Site and Origin headers.
var crossOrigin = http.NewCrossOriginProtection()

// crossSiteType is requireNonSimple's check of one request.
func crossSiteType(req *http.Request) error {
	ct := req.Header.Get(echo.HeaderContentType)
	if ct == "" {
		if scheme, _, ok := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
			return nil
		}
		if crossOrigin.Check(req) != nil {
			return &requestError{code.UnsupportedMediaType, fmt.Sprintf("a %s without Content-Type from a page of another site "+
				"(Origin %q): send Content-Type: application/json, even without a body", req.Method, req.Header.Get("Origin"))}
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return &requestError{code.UnsupportedMediaType, fmt.Sprintf("Content-Type %q cannot be parsed: %v", ct, err)}
	}
	if slices.Contains(simpleTypes, mt) {
		return &requestError{code.UnsupportedMediaType, fmt.Sprintf("Content-Type %s is not accepted with %s, since a web page "+
			"can send it from any site: send application/json (a definition: application/yaml)", mt, req.Method)}
	}
	return nil
}
