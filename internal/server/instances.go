package server

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// createInstance godoc
//
//	@Summary		Create an instance
//	@Description	Creates an instance on the definition's latest version, in its initial state (arming that state's timers). A client-chosen id that exists already: 409 instance_exists with the existing instance, unless the body is identical to the one that created it (then 200 with that instance: creation is idempotent).
//	@Tags			instances
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			request			body		service.CreateInstance	true	"the definition, an optional id, an optional initial context"
//	@Param			X-Request-ID	header		string					false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		201				{object}	service.Instance		"created"
//	@Success		200				{object}	service.Instance		"an identical request created it before"
//	@Failure		400				{object}	Problem					"invalid_request: malformed JSON, an unknown or repeated field or key, a missing definition, a bad id, a query parameter"
//	@Failure		401				{object}	Problem					"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem					"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem					"not_found: no such definition"
//	@Failure		409				{object}	Problem					"instance_exists: the id is taken by an instance created with another body (instance: that instance); key_exists: another running instance of the definition has a value of one of its keys that this context (or a child the initial state starts) has"
//	@Failure		413				{object}	Problem					"body_too_large: a body over the server's limit"
//	@Failure		415				{object}	Problem					"unsupported_media_type: the body is not application/json"
//	@Failure		422				{object}	Problem					"invalid_context: the context does not match the definition's schema, or is over its size limit"
//	@Failure		429				{object}	Problem					"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem					"internal_error"
//	@Failure		503				{object}	Problem					"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			201				{string}	Location				"/v1/instances/{id}"
//	@Header			401				{string}	WWW-Authenticate		"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After				"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID			"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After				"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/instances [post]
func (s *server) createInstance(c echo.Context) error {
	var req service.CreateInstance
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := checkID("field definition", req.Definition); err != nil {
		return err
	}
	if req.ID != "" {
		if err := checkID("field id", req.ID); err != nil {
			return err
		}
	}
	inst, created, err := s.svc.CreateInstance(c.Request().Context(), req)
	if err != nil {
		return err
	}
	noteInstance(c, inst)
	if !created {
		return c.JSON(http.StatusOK, inst)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/instances/"+url.PathEscape(inst.ID))
	return c.JSON(http.StatusCreated, inst)
}

// getInstance godoc
//
//	@Summary		Get an instance
//	@Description	The instance, with the events its current state handles and its pending timers. ETag is its revision.
//	@Tags			instances
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"instance id"	minlength(1)	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Instance
//	@Failure		400				{object}	Problem				"invalid_request: a bad id, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such instance"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			200				{string}	ETag				"the revision, quoted as an entity tag"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/instances/{id} [get]
func (s *server) getInstance(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	inst, err := s.svc.GetInstance(c.Request().Context(), id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(inst.Revision))
	noteInstance(c, inst)
	return c.JSON(http.StatusOK, inst)
}

// listInstances godoc
//
//	@Summary		List instances
//	@Description	A page of instances in id order: at most `limit` of them and at most 4 MiB of JSON. Pass the page's `next` as `after` for the next page; the last page has no `next`. Context filters (docs/operators.md, Find), which need `definition`: `ctx.<path>=<value>` (a dotted path to a scalar field of the definition's context, the value read as the field's type), and for int, float and time fields `ctx.<path>[gt]=`, `[gte]`, `[lt]`, `[lte]`; all of them must hold.
//	@Tags			instances
//	@Produce		json,application/problem+json
//	@Param			definition		query		string	false	"only instances of this definition"						maxlength(200)
//	@Param			state			query		string	false	"only instances in this state"							maxlength(200)
//	@Param			version			query		int		false	"only instances on this version of their definition"	minimum(1)
//	@Param			parent			query		string	false	"only the children this instance started"				maxlength(200)
//	@Param			assignee		query		string	false	"only instances assigned to this user name or group:NAME"	maxlength(200)
//	@Param			overdue			query		bool	false	"true: only running instances past their due date"
//	@Param			suspended		query		bool	false	"true: only suspended instances"
//	@Param			limit			query		int		false	"page size"												minimum(1)	maximum(1000)	default(100)
//	@Param			after			query		string	false	"the last id of the previous page"						maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.Instance]
//	@Failure		400				{object}	Problem				"invalid_request: a bad or unknown query parameter; a ctx. filter without definition, on a path the definition does not declare or that is not a scalar, with a value not of the field's type, or a range on a field that is not int, float or time (the detail names the parameter)"
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
//	@Router			/v1/instances [get]
func (s *server) listInstances(c echo.Context) error {
	q, conds, err := parseFindQuery(c, "definition", "state", "version", "parent", "assignee", "overdue", "suspended", "limit", "after") // find.go
	if err != nil {
		return err
	}
	f := service.InstanceFilter{Ctx: conds}
	if f.Definition, err = q.id("definition"); err != nil {
		return err
	}
	if f.Parent, err = q.id("parent"); err != nil {
		return err
	}
	if f.State, err = q.id("state"); err != nil {
		return err
	}
	if f.Assignee, err = q.id("assignee"); err != nil {
		return err
	}
	if f.Overdue, err = q.flag("overdue"); err != nil {
		return err
	}
	if f.Suspended, err = q.flag("suspended"); err != nil {
		return err
	}
	if f.Version, err = q.version(); err != nil {
		return err
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	if f.After, err = q.id("after"); err != nil {
		return err
	}
	page, err := s.svc.ListInstances(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(page))
}

// listChildren godoc
//
//	@Summary		List an instance's children
//	@Description	A page of the instances this one started as children (docs/definitions.md, Children), of every group or of `group`, in id order: at most `limit` and at most 4 MiB of JSON. Pass the page's `next` as `after` for the next page.
//	@Tags			instances
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"instance id"	minlength(1)	maxlength(200)
//	@Param			group			query		string	false	"only the children of this group"	maxlength(200)
//	@Param			limit			query		int		false	"page size"							minimum(1)	maximum(1000)	default(100)
//	@Param			after			query		string	false	"the last id of the previous page"	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.Instance]
//	@Failure		400				{object}	Problem				"invalid_request: a bad id, a bad or unknown query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such instance"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/instances/{id}/children [get]
func (s *server) listChildren(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "group", "limit", "after")
	if err != nil {
		return err
	}
	var f service.InstanceFilter
	if f.Group, err = q.id("group"); err != nil {
		return err
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	if f.After, err = q.id("after"); err != nil {
		return err
	}
	page, err := s.svc.ListChildren(c.Request().Context(), id, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(page))
}

// sendEvent godoc
//
//	@Summary		Send an event
//	@Description	Fires the event at the instance. The instance changes and its history gains a row in one transaction, or nothing changes. A replay of an Idempotency-Key with the same body returns the first answer again with `Idempotent-Replayed: true`; with another body it is idempotency_mismatch.
//	@Tags			instances
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string				true	"instance id"	minlength(1)	maxlength(200)
//	@Param			request			body		service.SendEvent	true	"the event and its payload"
//	@Param			Idempotency-Key	header		string				false	"at most 200 printable ASCII characters"	minlength(1)	maxlength(200)
//	@Param			If-Match		header		string				false	"the revision the client saw, as ETag gives it (quoted), weak (W/ and quoted) or bare"
//	@Param			X-Request-ID	header		string				false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.EventResult
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown or repeated field or key, a missing event, a bad id or header, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the role of the key or token may not do this; transition_forbidden: no branch allows the caller (allowed: the groups per branch; instance)"
//	@Failure		404				{object}	Problem				"not_found: no such instance"
//	@Failure		409				{object}	Problem				"invalid_transition, guard_rejected (with blockers), instance_final (each with instance); key_exists: the transition's set (or a child it starts) takes a key value another running instance has"
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
//	@Router			/v1/instances/{id}/events [post]
func (s *server) sendEvent(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	key, rev, err := eventHeaders(c)
	if err != nil {
		return err
	}
	var req service.SendEvent
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := checkID("field event", req.Event); err != nil {
		return err
	}
	req.InstanceID, req.IdempotencyKey, req.IfMatch = id, key, rev
	return s.fire(c, req) // correlate.go
}

// eventHeaders reads what an event's request says besides its body: no query parameter, its
// Idempotency-Key and its If-Match (by id or by key alike).
func eventHeaders(c echo.Context) (key string, rev *int64, err error) {
	if _, err := parseQuery(c); err != nil {
		return "", nil, err
	}
	if key, err = idempotencyKey(c); err != nil {
		return "", nil, err
	}
	rev, err = ifMatch(c)
	return key, rev, err
}

// explain godoc
//
//	@Summary		Explain an event
//	@Description	What the event would do now: each branch, its guard's value, the chosen target, the resulting context. No side effect; 200 even when the event would be refused (`error` says why).
//	@Tags			instances
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			id				path		string				true	"instance id"	minlength(1)	maxlength(200)
//	@Param			request			body		service.SendEvent	true	"the event and its payload"
//	@Param			X-Request-ID	header		string				false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Explanation
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown or repeated field or key, a missing event, a bad id, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such instance"
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
//	@Router			/v1/instances/{id}/explain [post]
func (s *server) explain(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	var req service.SendEvent
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := checkID("field event", req.Event); err != nil {
		return err
	}
	ex, err := s.svc.Explain(c.Request().Context(), id, service.SendEvent{Event: req.Event, Payload: req.Payload, Actor: actor(c), Groups: actorGroups(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ex)
}

// history godoc
//
//	@Summary		An instance's history
//	@Description	The audit log of the instance, oldest first: one row per accepted event (from the API, a timer or a migration). `seq` is gap-free per instance. A page holds at most `limit` rows and at most 4 MiB of JSON; pass the page's `next` as `after` for the next page. With `format=ndjson` the answer is the whole history (after `after`) as application/x-ndjson, one HistoryEntry a line, streamed with bounded memory whatever its length; `limit` does not go with it.
//	@Tags			instances
//	@Produce		json,application/x-ndjson,application/problem+json
//	@Param			id				path		string	true	"instance id"															minlength(1)	maxlength(200)
//	@Param			limit			query		int		false	"page size"																minimum(1)		maximum(1000)	default(100)
//	@Param			after			query		int		false	"the last seq of the previous page (ndjson: of the rows already read)"	minimum(0)
//	@Param			format			query		string	false	"json: a page; ndjson: the whole history, one HistoryEntry a line"		Enums(json, ndjson)	default(json)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.HistoryEntry]
//	@Failure		400				{object}	Problem				"invalid_request: a bad id or query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such instance"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/instances/{id}/history [get]
func (s *server) history(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "limit", "after", "format")
	if err != nil {
		return err
	}
	limit, err := q.limit()
	if err != nil {
		return err
	}
	after, err := q.int("after", 0, maxInt64, 0)
	if err != nil {
		return err
	}
	switch q.get("format") {
	case "", "json":
	case "ndjson":
		if q.get("limit") != "" {
			return invalid("limit does not go with format=ndjson, which streams the whole history (after resumes it)")
		}
		return s.historyNDJSON(c, id, after)
	default:
		return invalid("format must be json or ndjson, not %q", q.get("format"))
	}
	page, err := s.svc.History(c.Request().Context(), id, after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(page))
}

// nonNilPage makes an empty page's items [] rather than null, so that clients need not tell the two
// apart.
func nonNilPage[T any](p service.Page[T]) service.Page[T] {
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}
