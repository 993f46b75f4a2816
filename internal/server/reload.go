package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// reload godoc
//
//	@Summary		Reload the definitions folder
//	@Description	Re-reads the definitions folder, as SIGHUP does (and `fsmd serve --watch` when a file changes). When any file is invalid nothing is registered: 422 invalid_definition with every problem of the folder in `errors`, and the registered versions go on serving. Otherwise each definition whose content is new becomes its next version (`created`), content registered already is a no-op, and a new version with migrate policy auto (the default) starts migrating the running instances of older versions (policy manual only plans). The answer lists every definition of the folder, and `warnings`: the validation's and migrate rules for states that no older version has. A definition whose file left the folder stays registered: versions are never deleted. No body, or an empty JSON object.
//	@Tags			definitions
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.ReloadResult
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request: a body that is not an empty JSON object"
//	@Failure		404				{object}	Problem			"not_found: the server has no definitions folder"
//	@Failure		422				{object}	Problem			"invalid_definition (with errors): nothing was registered"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/reload [post]
func (s *server) reload(c echo.Context) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	if c.Request().ContentLength != 0 {
		var none struct{}
		if err := decodeJSON(c, &none); err != nil {
			return err
		}
	}
	if s.defsDir == "" {
		return &requestError{machine.CodeNotFound, "this server has no definitions folder to reload"}
	}
	res, err := s.svc.Reload(c.Request().Context(), s.defsDir)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
