package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// Bulks (docs/operators.md, "Bulk"): an event or an action for every running instance of a
// definition that matches a filter, planned (a dry run), run in batches, followed and cancelled.

// planBulk godoc
//
//	@Summary		Plan a bulk (a dry run)
//	@Description	Decides the event (or action) on every running instance of the definition that matches the filter, as the run would, and counts the outcomes per from state and to state (or refusal code), with the first ids of each. Writes nothing.
//	@Tags			operators
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			name			path		string				true	"definition name"	minlength(1)	maxlength(200)
//	@Param			request			body		service.BulkRequest	true	"the filter, and the event (with its payload) or the action"
//	@Param			X-Request-ID	header		string				false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.BulkPlan
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown field, neither event nor action or both, a bad filter (naming it), a reason missing"
//	@Failure		404				{object}	Problem				"not_found: no such definition"
//	@Failure		415				{object}	Problem				"unsupported_media_type: the body is not application/json"
//	@Failure		422				{object}	Problem				"unknown_event: the definition has no such event"
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
//	@Router			/v1/definitions/{name}/bulk/plan [post]
func (s *server) planBulk(c echo.Context) error {
	req, err := s.bulkRequest(c)
	if err != nil {
		return err
	}
	plan, err := s.svc.PlanBulk(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, plan)
}

// startBulk godoc
//
//	@Summary		Run a bulk
//	@Description	Starts sending the event (or applying the action) to every running instance of the definition that matches the filter, in batches in id order, each instance at most once, audited with source bulk and the bulk's id as request id. 202 with the bulk; GET /v1/bulk/{id} follows it. One bulk runs at a time per definition (409 bulk_running).
//	@Tags			operators
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			name			path		string				true	"definition name"	minlength(1)	maxlength(200)
//	@Param			request			body		service.BulkRequest	true	"the filter, and the event (with its payload) or the action"
//	@Param			X-Request-ID	header		string				false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		202				{object}	service.Bulk
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown field, neither event nor action or both, a bad filter (naming it), a reason missing"
//	@Failure		404				{object}	Problem				"not_found: no such definition"
//	@Failure		409				{object}	Problem				"bulk_running: the definition has a running bulk"
//	@Failure		415				{object}	Problem				"unsupported_media_type: the body is not application/json"
//	@Failure		422				{object}	Problem				"unknown_event: the definition has no such event"
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
//	@Header			202				{string}	Location			"/v1/bulk/{id}"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name}/bulk [post]
func (s *server) startBulk(c echo.Context) error {
	req, err := s.bulkRequest(c)
	if err != nil {
		return err
	}
	b, err := s.svc.StartBulk(c.Request().Context(), req)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/bulk/"+b.ID)
	return c.JSON(http.StatusAccepted, b)
}

// bulkRequest decodes a bulk's body for the definition of the path.
func (s *server) bulkRequest(c echo.Context) (service.BulkRequest, error) {
	name, err := pathID(c, "name")
	if err != nil {
		return service.BulkRequest{}, err
	}
	if _, err := parseQuery(c); err != nil {
		return service.BulkRequest{}, err
	}
	var req service.BulkRequest
	if err := decodeBody(c, &req); err != nil {
		return service.BulkRequest{}, err
	}
	req.Definition, req.Caller = name, s.callerOf(c)
	return req, nil
}

// getBulk godoc
//
//	@Summary		A bulk's progress
//	@Description	The bulk's status (running, done, cancelled, failed), the instances it matched when it started, those applied and refused so far, and the outcomes per from state and to state (or refusal code).
//	@Tags			operators
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"bulk id"	minlength(1)	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Bulk
//	@Failure		400				{object}	Problem				"invalid_request: a bad id or a query parameter"
//	@Failure		404				{object}	Problem				"not_found: no such bulk"
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
//	@Router			/v1/bulk/{id} [get]
func (s *server) getBulk(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	b, err := s.svc.GetBulk(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

// listBulks godoc
//
//	@Summary		List a definition's bulks
//	@Description	A page of the definition's bulks, newest first, in `items`: the running one, if any, and those that ended, each as GET /v1/bulk/{id} shows it. Pass the page's `next` as `after` for the next page.
//	@Tags			operators
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"								minlength(1)	maxlength(200)
//	@Param			limit			query		int		false	"at most this many"								minimum(1)		maximum(1000)	default(20)
//	@Param			after			query		string	false	"the id of the last bulk of the previous page"	minlength(1)	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.Bulk]
//	@Failure		400				{object}	Problem				"invalid_request: a bad name or query parameter"
//	@Failure		404				{object}	Problem				"not_found: no such definition"
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
//	@Router			/v1/definitions/{name}/bulk [get]
func (s *server) listBulks(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "limit", "after")
	if err != nil {
		return err
	}
	after, limit, err := q.page(historyPageLimit)
	if err != nil {
		return err
	}
	page, err := s.svc.ListBulks(c.Request().Context(), name, after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage[service.Bulk](page))
}

// cancelBulk godoc
//
//	@Summary		Cancel a bulk
//	@Description	Stops a running bulk after the batch it is doing; the instances it did stay done. A bulk that is not running is answered as it is.
//	@Tags			operators
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"bulk id"	minlength(1)	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Bulk
//	@Failure		400				{object}	Problem				"invalid_request: a bad id or a query parameter"
//	@Failure		404				{object}	Problem				"not_found: no such bulk"
//	@Failure		415				{object}	Problem				"unsupported_media_type: a body that is not application/json"
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
//	@Router			/v1/bulk/{id}/cancel [post]
func (s *server) cancelBulk(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	b, err := s.svc.CancelBulk(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}
