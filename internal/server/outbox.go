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
//	@Description	The webhook deliveries given up on (after the configured number of attempts, or at once for a refused destination), oldest first, each with the body every attempt sent and the last error. Pass the page's `next` as `after` for the next page.
//	@Tags			outbox
//	@Produce		json,application/problem+json
//	@Param			definition		query		string	false	"only those of this definition"
//	@Param			webhook			query		string	false	"only those of this webhook (its name in notify)"
//	@Param			limit			query		int		false	"page size"							minimum(1)	maximum(1000)	default(100)
//	@Param			after			query		string	false	"the last id of the previous page"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.Page[service.DeadLetter]
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request: a bad query parameter"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
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
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"the dead letter's id (its Fsmd-Delivery-Id)"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.RedriveResult
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request"
//	@Failure		404				{object}	Problem			"not_found: no dead letter has that id"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
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
//	@Produce		json,application/problem+json
//	@Param			definition		query		string	false	"only those of this definition"
//	@Param			webhook			query		string	false	"only those of this webhook (its name in notify)"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.RedriveResult
//	@Header			all				{string}	X-Request-ID	"the request id"
//	@Failure		400				{object}	Problem			"invalid_request: a bad query parameter"
//	@Failure		500				{object}	Problem			"internal_error"
//	@Failure		503				{object}	Problem			"unavailable"
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
