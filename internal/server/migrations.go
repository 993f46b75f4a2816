package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// migrationRequest reads what the migration endpoints take: the definition's name from the path
// and a JSON MigrationRequest body, or nothing (the latest version, every running instance).
func migrationRequest(c echo.Context) (string, service.MigrationRequest, error) {
	var req service.MigrationRequest
	name, err := pathID(c, "name")
	if err != nil {
		return "", req, err
	}
	if _, err := parseQuery(c); err != nil {
		return "", req, err
	}
	if c.Request().ContentLength != 0 {
		// Read first: an empty body (chunked, or white space) means the defaults, as no body does.
		raw, err := io.ReadAll(c.Request().Body)
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			return "", req, tooLarge
		} else if err != nil {
			return "", req, invalid("reading the request body: %v", err)
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			c.Request().Body = io.NopCloser(bytes.NewReader(raw))
			if err := decodeBody(c, &req); err != nil {
				return "", service.MigrationRequest{}, err
			}
		}
	}
	if req.ToVersion < 0 || (req.Filter != nil && req.Filter.Version < 0) {
		return "", service.MigrationRequest{}, invalid("to_version and filter.version are 1 or more")
	}
	return name, req, nil
}

// planMigration godoc
//
//	@Summary		Plan a migration (dry run)
//	@Description	Evaluates the migration of the definition's running instances on older versions to `to_version` (default: the latest) against the live population and changes nothing: per (from version, from state) the target state and count, and the instances that would stay (stranded) per reason, with a sample of ids.
//	@Tags			migrations
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			name			path		string						true	"definition name"	minlength(1)	maxlength(200)
//	@Param			request			body		service.MigrationRequest	false	"target version and filter; without a body (or with white space only) the latest version and every running instance"
//	@Param			X-Request-ID	header		string						false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.MigrationPlan
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown or repeated field, a negative version, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such definition or version"
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
//	@Router			/v1/definitions/{name}/migrations/plan [post]
func (s *server) planMigration(c echo.Context) error {
	name, req, err := migrationRequest(c)
	if err != nil {
		return err
	}
	p, err := s.svc.PlanMigration(c.Request().Context(), name, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// startMigration godoc
//
//	@Summary		Run a migration
//	@Description	Starts migrating the definition's running instances on older versions to `to_version` (default: the latest), in batches, in the background: 202 with the migration, whose progress is at `Location`. Each instance moves with an audit row (source migration); stranded instances stay on their version.
//	@Tags			migrations
//	@Accept			json
//	@Produce		json,application/problem+json
//	@Param			name			path		string						true	"definition name"	minlength(1)	maxlength(200)
//	@Param			request			body		service.MigrationRequest	false	"target version and filter; without a body (or with white space only) the latest version and every running instance"
//	@Param			X-Request-ID	header		string						false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		202				{object}	service.MigrationStatus
//	@Failure		400				{object}	Problem				"invalid_request: malformed JSON, an unknown or repeated field, a negative version, a query parameter"
//	@Failure		401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure		403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure		404				{object}	Problem				"not_found: no such definition or version"
//	@Failure		409				{object}	Problem				"migration_running: a migration of the definition is running"
//	@Failure		413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure		415				{object}	Problem				"unsupported_media_type: a body that is not application/json"
//	@Failure		429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure		500				{object}	Problem				"internal_error"
//	@Failure		503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header			202				{string}	Location			"/v1/migrations/{id}"
//	@Header			401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header			429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header			all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header			503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name}/migrations [post]
func (s *server) startMigration(c echo.Context) error {
	name, req, err := migrationRequest(c)
	if err != nil {
		return err
	}
	st, err := s.svc.StartMigration(c.Request().Context(), name, req)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/migrations/"+url.PathEscape(st.ID))
	return c.JSON(http.StatusAccepted, st)
}

// getMigration godoc
//
//	@Summary	A migration's progress and result
//	@Tags		migrations
//	@Produce	json,application/problem+json
//	@Param		id				path		string	true	"migration id"	minlength(1)	maxlength(200)
//	@Param		X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success	200				{object}	service.MigrationStatus
//	@Failure	400				{object}	Problem				"invalid_request: a bad id, a query parameter"
//	@Failure	401				{object}	Problem				"unauthorized: no key, or not a key of this server"
//	@Failure	403				{object}	Problem				"forbidden: the key's role may not do this"
//	@Failure	404				{object}	Problem				"not_found: no such migration"
//	@Failure	413				{object}	Problem				"body_too_large: a body over the server's limit"
//	@Failure	429				{object}	Problem				"too_many_requests: too many failed authentications from this client; Retry-After says when to try again"
//	@Failure	500				{object}	Problem				"internal_error"
//	@Failure	503				{object}	Problem				"unavailable: the database does not answer, or the request timed out; retry later"
//	@Header		401				{string}	WWW-Authenticate	"Bearer realm="fsmd", with error="invalid_token" when the key sent is not valid"
//	@Header		429				{integer}	Retry-After			"seconds to wait before trying again"
//	@Header		all				{string}	X-Request-ID		"the request id: the one sent, when sane, else a generated one"
//	@Header		503				{integer}	Retry-After			"seconds to wait before trying again"
//	@Security	BearerAuth
//	@Router		/v1/migrations/{id} [get]
func (s *server) getMigration(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := parseQuery(c); err != nil {
		return err
	}
	st, err := s.svc.GetMigration(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// listMigrations godoc
//
//	@Summary		List a definition's migrations
//	@Description	A page of the definition's migrations, newest first, in `items`: each as GET /v1/migrations/{id} shows it, with the instances it stranded once done. Pass the page's `next` as `after` for the next page.
//	@Tags			migrations
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"									minlength(1)	maxlength(200)
//	@Param			limit			query		int		false	"at most this many"									minimum(1)		maximum(1000)	default(20)
//	@Param			after			query		string	false	"the id of the last migration of the previous page"	minlength(1)	maxlength(200)
//	@Param			X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success		200				{object}	service.Page[service.MigrationStatus]
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
//	@Router			/v1/definitions/{name}/migrations [get]
func (s *server) listMigrations(c echo.Context) error {
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
	page, err := s.svc.ListMigrations(c.Request().Context(), name, after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage[service.MigrationStatus](page))
}
