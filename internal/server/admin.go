package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// The operators' actions on one instance (docs/operators.md): suspend, resume, terminate, repair.
// Each needs the admin role (requiredRole: a POST not listed there) and is audited with the caller
// as actor and the reason given.

// suspendInstance godoc
//
//	@Summary		Suspend an instance
//	@Description	Suspends a running instance: its events are refused with 409 instance_suspended, its timers are held and messages to it wait, until it is resumed. The history gains a row of source admin (event suspend) with the reason (required). Suspending a suspended instance changes nothing.
//	@Tags			operators
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string					true	"instance id"	minlength(1)	maxlength(200)
//	@Param			request			body		service.AdminRequest	true	"why"
//	@Param			X-Request-ID	header		string					false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Instance
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown field, a reason missing, too long or with a control character"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: only the admin role may do this"
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
//	@Router			/v1/instances/{id}/suspend [post]
func (s *server) suspendInstance(c echo.Context) error {
	return s.adminAction(c, s.svc.Suspend)
}

// resumeInstance godoc
//
//	@Summary		Resume an instance
//	@Description	Resumes a suspended instance: its timers whose time passed fire, each once, and the messages that waited are delivered. The history gains a row of source admin (event resume). Resuming an instance that is not suspended changes nothing.
//	@Tags			operators
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string					true	"instance id"	minlength(1)	maxlength(200)
//	@Param			request			body		service.AdminRequest	true	"why"
//	@Param			X-Request-ID	header		string					false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Instance
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown field, a reason missing, too long or with a control character"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: only the admin role may do this"
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
//	@Router			/v1/instances/{id}/resume [post]
func (s *server) resumeInstance(c echo.Context) error {
	return s.adminAction(c, s.svc.Resume)
}

// terminateInstance godoc
//
//	@Summary		Terminate an instance
//	@Description	Ends a running instance where it is: it becomes final with terminated true, its timers are cancelled, its task cleared, and its running children are terminated with it. The history gains a row of source admin (event terminate) with the reason (required). Its parent gets no on_final.
//	@Tags			operators
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string					true	"instance id"	minlength(1)	maxlength(200)
//	@Param			request			body		service.AdminRequest	true	"why"
//	@Param			X-Request-ID	header		string					false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Instance
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown field, a reason missing, too long or with a control character"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: only the admin role may do this"
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
//	@Router			/v1/instances/{id}/terminate [post]
func (s *server) terminateInstance(c echo.Context) error {
	return s.adminAction(c, s.svc.Terminate)
}

// adminAction decodes an operator's request and runs it.
func (s *server) adminAction(c echo.Context, do func(context.Context, service.AdminRequest) (service.Instance, error)) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	var req service.AdminRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	req.InstanceID, req.Caller, req.RequestID = id, s.callerOf(c), RequestID(c.Request().Context())
	inst, err := do(c.Request().Context(), req)
	if err != nil {
		return err
	}
	noteInstance(c, inst)
	return c.JSON(http.StatusOK, inst)
}

// repairInstance godoc
//
//	@Summary		Repair an instance
//	@Description	Puts a running instance in a state of its definition, entering it as a transition would (the state left is left, the state's timers armed, its children started, its task computed), with `context` merged over its own, field by field. The history gains a row of source repair (event repair, the payload {state, context, reason}). Answers like an event.
//	@Tags			operators
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string					true	"instance id"	minlength(1)	maxlength(200)
//	@Param			request			body		service.RepairRequest	true	"the state, the context fields to change, why"
//	@Param			X-Request-ID	header		string					false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.EventResult
//	@Failure		422				{object}	Problem				"unknown_state: a state the definition does not declare; invalid_context: a context its schema refuses; expression_failed (each with instance)"
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown field, a reason missing, too long or with a control character"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: only the admin role may do this"
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
//	@Router			/v1/instances/{id}/repair [post]
func (s *server) repairInstance(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	var req service.RepairRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := checkID("field state", req.State); err != nil {
		return err
	}
	req.InstanceID, req.Caller, req.RequestID = id, s.callerOf(c), RequestID(c.Request().Context())
	res, err := s.svc.Repair(c.Request().Context(), req)
	if err != nil {
		return err
	}
	noteInstance(c, res.Instance)
	return c.JSON(http.StatusOK, res)
}
