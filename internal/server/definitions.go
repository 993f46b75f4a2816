package server

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	// The annotations name service's types, which swag finds through this file's imports: the
	// handlers name them too (nonNilPage's type arguments), so that the import stays.
	"github.com/fsmd-io/fsmd/internal/service"
)

// listDefinitions godoc
//
//	@Summary		List definitions
//	@Description	A page of the definitions in name order: each with its name, latest version, description and the number of its instances not in a final state (every version). In `items`, as every list of the API; pass the page's `next` as `after` for the next page.
//	@Tags			definitions
//	@Produce		json,application/problem+json
//	@Param			limit			query		int		false	"page size"								minimum(1)	maximum(1000)	default(100)
//	@Param			after			query		string	false	"the last name of the previous page"	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.DefinitionSummary]
//	@Failure		400				{object}	Problem				"invalid_request: a bad or unknown query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/definitions [get]
func (s *server) listDefinitions(c echo.Context) error {
	q, err := parseQuery(c, "limit", "after")
	if err != nil {
		return err
	}
	after, limit, err := q.page(defaultLimit)
	if err != nil {
		return err
	}
	page, err := s.svc.ListDefinitions(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage[service.DefinitionSummary](page))
}

// getDefinition godoc
//
//	@Summary		Get a definition
//	@Description	The latest version: name, version, source (the YAML), states, events; and `running_by_version`, the running instances (not in a final state) per version they run on, `[{"version": 1, "count": 3}, {"version": 2, "count": 10}]`, in version order, versions without any left out. Instances on a version older than `version` are the ones not migrated: stranded by a migration, or waiting for one (policy manual). Only this answer counts them: the answers about one stored version leave the field out.
//	@Tags			definitions
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"	minlength(1)	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.DefinitionVersion
//	@Failure		400				{object}	Problem				"invalid_request: a bad name, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such definition"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
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
//	@Description	A page of the stored versions of the definition, oldest first, in `items`; pass the page's `next` as `after` for the next page.
//	@Tags			definitions
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"						minlength(1)	maxlength(200)
//	@Param			limit			query		int		false	"page size"								minimum(1)		maximum(1000)	default(100)
//	@Param			after			query		int		false	"the last version of the previous page"	minimum(0)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.DefinitionVersion]
//	@Failure		400				{object}	Problem				"invalid_request: a bad name or query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such definition"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name}/versions [get]
func (s *server) definitionVersions(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "limit", "after")
	if err != nil {
		return err
	}
	limit, err := q.limit()
	if err != nil {
		return err
	}
	after, err := q.int("after", 0, 1<<31-1, 0)
	if err != nil {
		return err
	}
	page, err := s.svc.DefinitionVersions(c.Request().Context(), name, int(after), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage[service.DefinitionVersion](page))
}

// definitionVersion godoc
//
//	@Summary	Get a version of a definition
//	@Tags		definitions
//	@Produce	json,application/problem+json
//	@Param		name			path		string	true	"definition name"	minlength(1)	maxlength(200)
//	@Param		version			path		int		true	"version"			minimum(1)
//	@Param		X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success	200				{object}	service.DefinitionVersion
//	@Failure	400				{object}	Problem				"invalid_request: a bad name or version, a query parameter"
//	@Failure	401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure	403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure	404				{object}	Problem				"not_found: no such definition or version"
//	@Failure	413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure	429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure	500				{object}	Problem				"internal_error"
//	@Failure	503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header		401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header		429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header		all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header		503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security	BearerAuth
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
//	@Param			name			path		string				true	"definition name"					minlength(1)	maxlength(200)
//	@Param			version			query		int					false	"version; the latest when absent"	minimum(1)
//	@Param			X-Request-ID	header		string				false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{string}	string				"Mermaid source"
//	@Failure		400				{object}	Problem				"invalid_request: a bad name or version, an unknown query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such definition or version"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
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
//	@Description	Registers the YAML as the definition's next version if its content is new (201), or returns the version that has this content (200). An invalid definition is 422 invalid_definition with every problem in `errors`. The body is the YAML file as it is, under one of the content types listed (with curl: --data-binary @file.yaml -H 'Content-Type: application/yaml'). text/plain, forms and multipart bodies are 415: a web page may send those to any site.
//	@Tags			definitions
//	@Accept			application/yaml,application/x-yaml,text/yaml
//	@Produce		json,application/problem+json
//	@Param			name			path		string				true	"definition name"	minlength(1)	maxlength(200)
//	@Param			definition		body		string				true	"the definition, in YAML"
//	@Param			X-Request-ID	header		string				false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		201				{object}	service.PutResult	"a new version"
//	@Success		200				{object}	service.PutResult	"this content is registered already"
//	@Failure		400				{object}	Problem				"invalid_request: a bad name, an empty body or one not in UTF-8, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		415				{object}	Problem				"unsupported_media_type: not YAML, or a charset other than UTF-8"
//	@Failure		422				{object}	Problem				"invalid_definition (with errors)"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			201				{string}	Location			"/v1/definitions/{name}/versions/{version}"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
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
