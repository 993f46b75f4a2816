package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/api/openapi"
)

// openapiJSON godoc
//
//	@Summary		The API's OpenAPI 3 document
//	@Description	This document, in OpenAPI 3.0: the Swagger 2.0 document (/swagger/doc.json) converted by `make openapi`. Swagger UI (/swagger/index.html) reads it. Open without a key.
//	@Tags			operations
//	@Produce		json,application/problem+json
//	@Param			X-Request-ID	header		string			false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	object			"the OpenAPI 3 document"
//	@Failure		400				{object}	Problem			"invalid_request: a query parameter (this route takes none), a Host that is not a loopback name (a server without keys)"
//	@Failure		413				{object}	Problem			"body_too_large: a body over the server's limit"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Header			all				{string}	X-Request-ID	"the request id: the one sent, when sane, else a generated one"
//	@Router			/openapi.json [get]
func openapiJSON(c echo.Context) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openapi.OpenAPI3)
}
