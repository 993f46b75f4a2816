package server

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// listDefinitions godoc
//
//	@Summary		List definitions
//	@Description	Every definition: its name, latest version, description and the number of its instances not in a final state (every version). In `items`, as every list of the API.
//	@Tags			definitions
//	@Produce		json,application/problem+json
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.Page[service.DefinitionSummary]
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request: an unknown query parameter"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/definitions [get]
func (s *server) listDefinitions(c echo.Context) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	defs, err := s.svc.ListDefinitions(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(service.Page[service.DefinitionSummary]{Items: defs}))
}

// getDefinition godoc
//
//	@Summary		Get a definition
//	@Description	The latest version: name, version, source (the YAML), states, events; and `running_by_version`, the running instances (not in a final state) per version they run on, `[{"version": 1, "count": 3}, {"version": 2, "count": 10}]`, in version order, versions without any left out. Instances on a version older than `version` are the ones not migrated: stranded by a migration, or waiting for one (policy manual). Only this answer counts them: the answers about one stored version leave the field out.
//	@Tags			definitions
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.DefinitionVersion
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request: a bad name"
//	@Failure		404				{object}	Problem			"not_found: no such definition"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name} [get]
func (s *server) getDefinition(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	def, err := s.svc.GetDefinition(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, def)
}

// definitionVersions godoc
//
//	@Summary		List a definition's versions
//	@Description	Every stored version of the definition, oldest first, in `items`.
//	@Tags			definitions
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.Page[service.DefinitionVersion]
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request: a bad name"
//	@Failure		404				{object}	Problem			"not_found: no such definition"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name}/versions [get]
func (s *server) definitionVersions(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	vs, err := s.svc.DefinitionVersions(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(service.Page[service.DefinitionVersion]{Items: vs}))
}

// definitionVersion godoc
//
//	@Summary	Get a version of a definition
//	@Tags		definitions
//	@Produce	json,application/problem+json
//	@Param		name			path		string	true	"definition name"
//	@Param		version			path		int		true	"version"	minimum(1)
//	@Param		X-Request-ID	header		string	false	"request id"
//	@Success	200				{object}	service.DefinitionVersion
//	@Header		all				{string}	X-Request-ID	"the request id"
//	@Failure	400				{object}	Problem			"invalid_request: a bad name or version"
//	@Failure	404				{object}	Problem			"not_found: no such definition or version"
//	@Failure	500				{object}	Problem			"internal_error"
//	@Failure	503				{object}	Problem			"unavailable"
//	@Security		BearerAuth
//	@Router		/v1/definitions/{name}/versions/{version} [get]
func (s *server) definitionVersion(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	version, err := pathVersion(c, "version")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	def, err := s.svc.DefinitionVersion(c.Request().Context(), name, version)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, def)
}

// diagram godoc
//
//	@Summary		A definition's diagram
//	@Description	A Mermaid stateDiagram-v2 of the version (the latest when no version is given).
//	@Tags			definitions
//	@Produce		plain,application/problem+json
//	@Param			name			path		string	true	"definition name"
//	@Param			version			query		int		false	"version; the latest when absent"	minimum(1)
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{string}	string	"Mermaid source"
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request: a bad name or version"
//	@Failure		404				{object}	Problem			"not_found: no such definition or version"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name}/diagram [get]
func (s *server) diagram(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "version")
	if err != nil {
		return err
	}
	version, err := q.version()
	if err != nil {
		return err
	}
	d, err := s.svc.Diagram(c.Request().Context(), name, version)
	if err != nil {
		return err
	}
	return c.String(http.StatusOK, d)
}

// putDefinition godoc
//
//	@Summary		Register a definition
//	@Description	Registers the YAML as the definition's next version if its content is new (201), or returns the version that has this content (200). An invalid definition is 422 invalid_definition with every problem in `errors`.
//	@Tags			definitions
//	@Accept			application/yaml,application/x-yaml,text/yaml
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"
//	@Param			definition		body		string	true	"the definition, in YAML"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		201				{object}	service.PutResult	"a new version"
//	@Success		200				{object}	service.PutResult	"this content is registered already"
//	@Header			201				{string}	Location			"/v1/definitions/{name}/versions/{version}"
//	@Header			all				{string}	X-Request-ID		"the request id"
//	@Failure		400				{object}	Problem				"invalid_request: a bad name, an empty body"
//	@Failure		413				{object}	Problem				"body_too_large"
//	@Failure		415				{object}	Problem				"unsupported_media_type: not YAML"
//	@Failure		422				{object}	Problem				"invalid_definition (with errors)"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name} [put]
func (s *server) putDefinition(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	if err := checkContentType(c, yamlTypes); err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	res, err := s.svc.PutDefinition(c.Request().Context(), name, body)
	if err != nil {
		return err
	}
	if !res.Created {
		return c.JSON(http.StatusOK, res)
	}
	c.Response().Header().Set(echo.HeaderLocation,
		"/v1/definitions/"+url.PathEscape(name)+"/versions/"+strconv.Itoa(res.Definition.Version))
	return c.JSON(http.StatusCreated, res)
}
