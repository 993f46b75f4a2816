package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// StatsService is what the stats handler needs of the service; *service.Service satisfies it. A
// Service without it answers the route 404.
type StatsService interface {
	DefinitionStats(ctx context.Context, req service.StatsRequest) (service.Stats, error)
}

// definitionStats godoc
//
//	@Summary		A definition's process stats
//	@Description	What the audit log says of a definition (every version) over a window of whole hours (UTC): per state the instances in it now (`running`, not final), the transitions into it (`entries`) and out of it (`exits`) and the median and p95 (nearest rank) of the time spent in it by those exits, in milliseconds to 2 significant digits (`median_ms`, `p95_ms`, absent without exits); per (from, to, event) the number of transitions; per event the refusals of the engine (not transitions), in all and by error code. The window is `since` rounded down to its hour to `until` rounded up; `until` defaults to now, `since` to 24 h before `until`; at most 366 days.
//	@Tags			definitions
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"												minlength(1)	maxlength(200)
//	@Param			since			query		string	false	"start of the window, RFC 3339 (default: 24 h before until)"	format(date-time)
//	@Param			until			query		string	false	"end of the window, RFC 3339 (default: now)"					format(date-time)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Stats
//	@Failure		400				{object}	Problem				"invalid_request: a bad name, a time not in RFC 3339 or out of range, since not before until, a window longer than 366 days"
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
//	@Router			/v1/definitions/{name}/stats [get]
func (s *server) definitionStats(c echo.Context) error {
	svc, ok := s.svc.(StatsService)
	if !ok {
		return echo.ErrNotFound
	}
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "since", "until")
	if err != nil {
		return err
	}
	req := service.StatsRequest{Definition: name}
	if req.Since, err = service.ParseStatsTime("query parameter since", q.get("since")); err != nil {
		return err
	}
	if req.Until, err = service.ParseStatsTime("query parameter until", q.get("until")); err != nil {
		return err
	}
	stats, err := svc.DefinitionStats(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, stats)
}
