package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// listDeadMessages godoc
//
//	@Summary		Dead messages
//	@Description	The messages between instances that could not be delivered (their target does not exist), oldest first, each with its sender, target, event, payload and the reason. A page holds at most `limit` of them and at most 4 MiB of JSON; pass the page's `next` as `after` for the next page.
//	@Tags			messages
//	@Produce		json,application/problem+json
//	@Param			limit			query		int		false	"page size"							minimum(1)	maximum(1000)	default(100)
//	@Param			after			query		string	false	"the last id of the previous page"	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.DeadMessage]
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
//	@Router			/v1/messages/dead [get]
func (s *server) listDeadMessages(c echo.Context) error {
	q, err := parseQuery(c, "limit", "after")
	if err != nil {
		return err
	}
	var f service.DeadMessageFilter
	if f.After, f.Limit, err = q.page(defaultLimit); err != nil {
		return err
	}
	page, err := s.svc.ListDeadMessages(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(page))
}

// redriveDeadMessage godoc
//
//	@Summary		Re-drive a dead message
//	@Description	Makes the dead message pending again: it is delivered after the pending messages of its sender to its target sent before it, through the target's event path, when the target exists by then (else it is dead again). It keeps its id.
//	@Tags			messages
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"the dead message's id"	minlength(1)	maxlength(200)
//	@Param			request			body		object	false	"nothing, or an empty JSON object: a POST carries Content-Type application/json (or a key), even without a body"
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.RedriveResult
//	@Failure		400				{object}	Problem				"invalid_request: a bad id, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no dead message has that id"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		415				{object}	Problem				"unsupported_media_type: a body that is not application/json"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/messages/dead/{id}/redrive [post]
func (s *server) redriveDeadMessage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	res, err := s.svc.RedriveDeadMessage(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
