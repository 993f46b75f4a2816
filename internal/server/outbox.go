package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// deadLetterFilter reads the definition and webhook query parameters of the dead-letter routes.
func deadLetterFilter(q query) (service.DeadLetterFilter, error) {
	var f service.DeadLetterFilter
	var err error
	if f.Definition, err = q.id("definition"); err != nil {
		return f, err
	}
	f.Webhook, err = q.id("webhook")
	return f, err
}

// listDeadLetters godoc
//
//	@Summary		Dead letters of the outbox
//	@Description	The webhook deliveries given up on (after the configured number of attempts, or at once for a refused destination), oldest first, each with the body every attempt sent and the last error. A page holds at most `limit` of them and at most 4 MiB of JSON; pass the page's `next` as `after` for the next page.
//	@Tags			outbox
//	@Produce		json,application/problem+json
//	@Param			definition		query		string	false	"only those of this definition"						maxlength(200)
//	@Param			webhook			query		string	false	"only those of this webhook (its name in notify)"	maxlength(200)
//	@Param			limit			query		int		false	"page size"											minimum(1)	maximum(1000)	default(100)
//	@Param			after			query		string	false	"the last id of the previous page"					maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.DeadLetter]
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
//	@Router			/v1/outbox/dead [get]
func (s *server) listDeadLetters(c echo.Context) error {
	q, err := parseQuery(c, "definition", "webhook", "limit", "after")
	if err != nil {
		return err
	}
	f, err := deadLetterFilter(q)
	if err != nil {
		return err
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	if f.After, err = q.id("after"); err != nil {
		return err
	}
	page, err := s.svc.ListDeadLetters(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(page))
}

// redriveDeadLetter godoc
//
//	@Summary		Re-drive a dead letter
//	@Description	Gives the dead letter another round of attempts (its attempts count from 0 again), due now: it goes once the deliveries of its instance and webhook before it are done. It keeps its id, so the receiver can still tell a repeat.
//	@Tags			outbox
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"the dead letter's id (its Fsmd-Delivery-Id)"	minlength(1)	maxlength(200)
//	@Param			request			body		object	false	"nothing, or an empty JSON object: a POST carries Content-Type application/json (or a key), even without a body"
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.RedriveResult
//	@Failure		400				{object}	Problem				"invalid_request: a bad id, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no dead letter has that id"
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
//	@Router			/v1/outbox/dead/{id}/redrive [post]
func (s *server) redriveDeadLetter(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	res, err := s.svc.RedriveDeadLetter(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// redriveDeadLetters godoc
//
//	@Summary		Re-drive dead letters
//	@Description	Re-drives every dead letter, or those of one definition and/or webhook, as POST /v1/outbox/dead/{id}/redrive does each: of one instance and webhook, they go in seq order.
//	@Tags			outbox
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			definition		query		string	false	"only those of this definition"						maxlength(200)
//	@Param			webhook			query		string	false	"only those of this webhook (its name in notify)"	maxlength(200)
//	@Param			request			body		object	false	"nothing, or an empty JSON object: a POST carries Content-Type application/json (or a key), even without a body"
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.RedriveResult
//	@Failure		400				{object}	Problem				"invalid_request: a bad or unknown query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
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
//	@Router			/v1/outbox/dead/redrive [post]
func (s *server) redriveDeadLetters(c echo.Context) error {
	q, err := parseQuery(c, "definition", "webhook")
	if err != nil {
		return err
	}
	f, err := deadLetterFilter(q)
	if err != nil {
		return err
	}
	res, err := s.svc.RedriveDeadLetters(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
