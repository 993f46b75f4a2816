package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// Me is the answer of GET /v1/me: who the server takes the caller for, so that a client (the
// console) offers only what the caller may do.
type Me struct {
	// Name is the key's name or the token's name claim; "" on a server without keys or tokens.
	Name string `json:"name" validate:"required" example:"key-bffefe51"`
	// Kind is the actor kind of the caller's events (always user: the API's callers are users).
	Kind string `json:"kind" validate:"required" enums:"user" example:"user"`
	// Role is what the caller may do; admin on a server without keys or tokens, which lets every
	// request in.
	Role string `json:"role" validate:"required" enums:"read,write,admin" example:"write"`
	// Groups are the key's groups= or the token's groups claim, for the branches' allow; [] when none.
	Groups []string `json:"groups" validate:"required"`
}

// me godoc
//
//	@Summary		Who the caller is
//	@Description	The key or token that authenticated the request: its name, kind (user), role and groups, as the server uses them for roles and the branches' `allow`. Any role may ask. On a server without keys or tokens every request is let in, as an anonymous user: `{"name": "", "kind": "user", "role": "admin", "groups": []}`.
//	@Tags			operations
//	@Produce		json,application/problem+json
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	Me
//	@Failure		400				{object}	Problem				"invalid_request: a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: listed as for every route that takes a key; never answered here, since every role may ask"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Security		BearerAuth
//	@Router			/v1/me [get]
func (s *server) me(c echo.Context) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.caller(c))
}

// caller is who the request is from: the principal authenticate kept, or, on a server that checks
// no credential, the anonymous user it lets in with every right (and no group, so that a branch
// with allow is never taken through the API there: docs/definitions.md, "Actors").
func (s *server) caller(c echo.Context) Me {
	p, _ := c.Get(actorKey).(auth.Principal)
	if !s.authenticates() {
		p = auth.Principal{Role: auth.Admin}
	}
	groups := p.Groups
	if groups == nil {
		groups = []string{}
	}
	return Me{Name: p.Name, Kind: machine.ActorUser, Role: p.Role.String(), Groups: groups}
}
