package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/service"
)

// callerOf is who sent the request, for the answers that depend on it (the work list,
// reassignment): without authentication, anyone.
func (s *server) callerOf(c echo.Context) service.Caller {
	if !s.authenticates() {
		return service.Caller{Write: true, Admin: true, Anyone: true}
	}
	p, _ := c.Get(actorKey).(auth.Principal)
	return service.Caller{Name: p.Name, Groups: p.Groups, Write: p.Role >= auth.Write, Admin: p.Role >= auth.Admin}
}

// worklist godoc
//
//	@Summary		The caller's work list
//	@Description	The running instances whose assignees (docs/definitions.md, Tasks) name the caller or one of its groups, oldest `due_at` first (those without a date last), each with the events the caller may send now. At most `limit` items and 4 MiB of JSON; pass `next` as `after` for the next page. A server without keys or tokens lists every assigned instance.
//	@Tags			instances
//	@Produce		json,application/problem+json
//	@Param			limit			query		int		false	"page size"							minimum(1)	maximum(1000)	default(100)
//	@Param			after			query		string	false	"the next of the previous page"	maxlength(500)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.WorkItem]
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
//	@Router			/v1/worklist [get]
func (s *server) worklist(c echo.Context) error {
	q, err := parseQuery(c, "limit", "after")
	if err != nil {
		return err
	}
	req := service.WorklistRequest{Caller: s.callerOf(c), After: q.get("after")}
	if len(req.After) > 500 {
		return invalid("query parameter after is longer than 500 characters")
	}
	if req.Limit, err = q.limit(); err != nil {
		return err
	}
	page, err := s.svc.Worklist(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(page))
}

// assign godoc
//
//	@Summary		Reassign an instance
//	@Description	Replaces the instance's assignees (docs/definitions.md, Tasks) until it leaves its state; its due date stays. Admins may reassign any running instance, a write key or token only one it is an assignee of (by name or group). The history gains a row of source `assign` (event `assign`, payload `{to, reason}`, the caller as actor).
//	@Tags			instances
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string					true	"instance id"	minlength(1)	maxlength(200)
//	@Param			request			body		service.AssignRequest	true	"the new assignees and why"
//	@Param			X-Request-ID	header		string					false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Instance
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown field, to naming nobody or a bad assignee, a reason too long"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the role may not do this, or the caller is neither an admin nor an assignee"
//	@Failure		404				{object}	Problem				"not_found: no such instance"
//	@Failure		409				{object}	Problem				"instance_final: the instance has ended (with instance)"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		415				{object}	Problem				"unsupported_media_type: the body is not application/json"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/instances/{id}/assign [post]
func (s *server) assign(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	var req service.AssignRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	req.InstanceID, req.Caller, req.RequestID = id, s.callerOf(c), RequestID(c.Request().Context())
	inst, err := s.svc.Assign(c.Request().Context(), req)
	if err != nil {
		return err
	}
	noteInstance(c, inst)
	return c.JSON(http.StatusOK, inst)
}
