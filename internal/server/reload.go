package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/code"
)

// reload godoc
//
//	@Summary		Reload the definitions folder
//	@Description	Re-reads the definitions folder, as SIGHUP does (and `fsmd serve --watch` when a file changes). When any file is invalid nothing is registered: 422 invalid_definition with every problem of the folder in `errors`, and the registered versions go on serving. Otherwise each definition whose content is new becomes its next version (`created`), content registered already is a no-op, and a new version with migrate policy auto (the default) starts migrating the running instances of older versions (policy manual only plans). The answer lists every definition of the folder, and `warnings`: the validation's and migrate rules for states that no older version has. A definition whose file left the folder stays registered: versions are never deleted. No body, or an empty JSON object.
//	@Tags			definitions
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			request			body		object	false	"nothing, or an empty JSON object: a POST carries Content-Type application/json (or a key), even without a body"
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.ReloadResult
//	@Failure		400				{object}	Problem				"invalid_request: a body that is not an empty JSON object, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: the server has no definitions folder"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		415				{object}	Problem				"unsupported_media_type: a body that is not application/json"
//	@Failure		422				{object}	Problem				"invalid_definition (with errors): nothing was registered"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/reload [post]
func (s *server) reload(c echo.Context) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	if c.Request().ContentLength != 0 {
		var none struct{}
		if err := decodeBody(c, &none); err != nil {
			return err
		}
	}
	if s.defsDir == "" {
		return &requestError{code.NotFound, "this server has no definitions folder to reload"}
	}
	res, err := s.svc.Reload(c.Request().Context(), s.defsDir)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
