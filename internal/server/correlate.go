package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// sendEventByKey godoc
//
//	@Summary		Send an event by key
//	@Description	Fires the event at the running instance of the definition that has the key value (docs/operators.md, Correlate): `key` names one of the definition's `keys` and its value, typed as its context field. Then everything is as for POST /v1/instances/{id}/events: the same answer, Idempotency-Key (per instance: a replay finds the instance even when it has finished since), If-Match, Idempotent-Replayed. 404 not_found when no running instance has the value.
//	@Tags			instances
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			name			path		string				true	"definition name"	minlength(1)	maxlength(200)
//	@Param			request			body		service.KeyedEvent	true	"the key and its value, the event and its payload"
//	@Param			Idempotency-Key	header		string				false	"at most 200 printable ASCII characters"	minlength(1)	maxlength(200)
//	@Param			If-Match		header		string				false	"the revision the client saw, as ETag gives it (quoted), weak (W/ and quoted) or bare"
//	@Param			X-Request-ID	header		string				false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.EventResult
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown or repeated field or key, a missing event, a key the definition does not declare, a key value of the wrong type or empty, a bad name or header, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the role of the key or token may not do this; transition_forbidden: no branch allows the caller (allowed: the groups per branch; instance)"
//	@Failure		404				{object}	Problem				"not_found: no such definition, or no running instance has the key value"
//	@Failure		409				{object}	Problem				"invalid_transition, guard_rejected (with blockers), instance_final (each with instance); key_exists: the event's set gives the instance a key value another running instance has"
//	@Failure		412				{object}	Problem				"version_conflict: If-Match names another revision (instance: as it is now)"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		415				{object}	Problem				"unsupported_media_type: the body is not application/json"
//	@Failure		422				{object}	Problem				"unknown_event, invalid_payload, idempotency_mismatch, expression_failed (an error, the time budget, a context over its size limit)"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			200				{string}	Idempotent-Replayed	"true on a replayed answer"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name}/events [post]
func (s *server) sendEventByKey(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	key, rev, err := eventHeaders(c)
	if err != nil {
		return err
	}
	var body service.KeyedEvent
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	if body.Key == nil {
		return invalid("field key is required: the key and its value, as {\"key\": {\"order_number\": \"A-17\"}}")
	}
	if err := checkID("field event", body.Event); err != nil {
		return err
	}
	id, err := s.svc.InstanceByKey(c.Request().Context(), name, body.Key, key)
	if err != nil {
		return err
	}
	req := service.SendEvent{InstanceID: id, Event: body.Event, Payload: body.Payload, IdempotencyKey: key, IfMatch: rev}
	return s.fire(c, req)
}

// fire sends req (its instance, event, payload, Idempotency-Key and If-Match read from the
// request) as the caller, and answers as POST /v1/instances/{id}/events does, whichever way the
// instance was named.
func (s *server) fire(c echo.Context, req service.SendEvent) error {
	req.RequestID, req.Actor, req.Groups = RequestID(c.Request().Context()), actor(c), actorGroups(c)
	start := time.Now()
	res, replayed, err := s.svc.SendEvent(c.Request().Context(), req)
	s.metrics.observe(req.Event, res, replayed, err, time.Since(start))
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	noteInstance(c, res.Instance)
	return c.JSON(http.StatusOK, res)
}
