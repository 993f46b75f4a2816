package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/service"
)

// migrationRequest reads what the migration endpoints take: the definition's name from the path
// and a JSON MigrationRequest body, or nothing (the latest version, every running instance).
func migrationRequest(c echo.Context) (string, migration.Request, error) {
	name, err := pathID(c, "name")
	if err != nil {
		return "", migration.Request{}, err
	}
	if _, err := parseQuery(c); err != nil {
		return "", migration.Request{}, err
	}
	var body service.MigrationRequest
	if c.Request().ContentLength != 0 {
		// Read first: an empty body (chunked, or white space) means the defaults, as no body does.
		raw, err := io.ReadAll(c.Request().Body)
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			return "", migration.Request{}, tooLarge
		} else if err != nil {
			return "", migration.Request{}, invalid("reading the request body: %v", err)
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			c.Request().Body = io.NopCloser(bytes.NewReader(raw))
			if err := decodeJSON(c, &body); err != nil {
				return "", migration.Request{}, err
			}
		}
	}
	req := migration.Request{ToVersion: body.ToVersion}
	if body.Filter != nil {
		req.FromVersion, req.FromState = body.Filter.Version, body.Filter.State
	}
	if req.ToVersion < 0 || req.FromVersion < 0 {
		return "", migration.Request{}, invalid("to_version and filter.version are 1 or more")
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
//	@Param			name			path		string						true	"definition name"
//	@Param			request			body		service.MigrationRequest	false	"target version and filter"
//	@Param			X-Request-ID	header		string						false	"request id"
//	@Success		200				{object}	migration.Plan
//	@Failure		400				{object}	Problem	"invalid_request"
//	@Failure		404				{object}	Problem	"not_found: no such definition or version"
//	@Failure		500				{object}	Problem	"internal_error"
//	@Failure		503				{object}	Problem	"unavailable"
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
//	@Param			name			path		string						true	"definition name"
//	@Param			request			body		service.MigrationRequest	false	"target version and filter"
//	@Param			X-Request-ID	header		string						false	"request id"
//	@Success		202				{object}	migration.Status
//	@Header			202				{string}	Location	"/v1/migrations/{id}"
//	@Failure		400				{object}	Problem		"invalid_request"
//	@Failure		404				{object}	Problem		"not_found: no such definition or version"
//	@Failure		409				{object}	Problem		"migration_running: a migration of the definition is running"
//	@Failure		500				{object}	Problem		"internal_error"
//	@Failure		503				{object}	Problem		"unavailable"
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
//	@Summary		A migration's progress and result
//	@Tags			migrations
//	@Produce		json,application/problem+json
//	@Param			id				path		string	true	"migration id"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	migration.Status
//	@Failure		400				{object}	Problem	"invalid_request"
//	@Failure		404				{object}	Problem	"not_found"
//	@Failure		500				{object}	Problem	"internal_error"
//	@Failure		503				{object}	Problem	"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/migrations/{id} [get]
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
//	@Description	The definition's newest migrations, newest first, in `items`: each as GET /v1/migrations/{id} shows it, with the instances it stranded once done. `limit` defaults to 20.
//	@Tags			migrations
//	@Produce		json,application/problem+json
//	@Param			name			path		string	true	"definition name"
//	@Param			limit			query		int		false	"at most this many (1 to 1000)"
//	@Param			X-Request-ID	header		string	false	"request id"
//	@Success		200				{object}	service.Page[migration.Status]
//	@Failure		400				{object}	Problem	"invalid_request"
//	@Failure		404				{object}	Problem	"not_found: no such definition"
//	@Failure		500				{object}	Problem	"internal_error"
//	@Failure		503				{object}	Problem	"unavailable"
//	@Security		BearerAuth
//	@Router			/v1/definitions/{name}/migrations [get]
func (s *server) listMigrations(c echo.Context) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "limit")
	if err != nil {
		return err
	}
	limit, err := q.int("limit", 1, maxLimit, 20)
	if err != nil {
		return err
	}
	list, err := s.svc.ListMigrations(c.Request().Context(), name, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nonNilPage(service.Page[migration.Status]{Items: list}))
}
