package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/service"
	"github.com/fsmd-io/fsmd/internal/source"
)

// ProblemTypeBase begins every problem's `type`: the type is ProblemTypeBase followed by the code
// (https://fsmd.dev/problems/guard_rejected). A URL per code rather than "about:blank" because the
// code is what clients branch on and RFC 9457 §3.1.1 wants the type to identify the problem kind;
// the URL is an identifier first, and the place to document the code.
const ProblemTypeBase = "https://fsmd.dev/problems/"

// problemKind is what a code means over HTTP.
type problemKind struct {
	status int
	title  string // the same for every occurrence, as RFC 9457 asks; the detail varies
}

// problemKinds is the one table from error code to HTTP status (api.md's, plus fsmd's own codes).
var problemKinds = map[string]problemKind{
	code.NotFound:             {http.StatusNotFound, "Not found"},
	code.InvalidTransition:    {http.StatusConflict, "Invalid transition"},
	code.GuardRejected:        {http.StatusConflict, "Guard rejected"},
	code.TransitionForbidden:  {http.StatusForbidden, "Transition forbidden"},
	code.InstanceFinal:        {http.StatusConflict, "Instance is final"},
	code.InstanceSuspended:    {http.StatusConflict, "Instance is suspended"},
	code.InstanceExists:       {http.StatusConflict, "Instance exists"},
	code.KeyExists:            {http.StatusConflict, "Key exists"},
	code.VersionConflict:      {http.StatusPreconditionFailed, "Version conflict"},
	code.MigrationRunning:     {http.StatusConflict, "Migration running"},
	code.BulkRunning:          {http.StatusConflict, "Bulk running"},
	code.UnknownState:         {http.StatusUnprocessableEntity, "Unknown state"},
	code.UnknownEvent:         {http.StatusUnprocessableEntity, "Unknown event"},
	code.InvalidPayload:       {http.StatusUnprocessableEntity, "Invalid payload"},
	code.InvalidContext:       {http.StatusUnprocessableEntity, "Invalid context"},
	code.InvalidDefinition:    {http.StatusUnprocessableEntity, "Invalid definition"},
	code.IdempotencyMismatch:  {http.StatusUnprocessableEntity, "Idempotency mismatch"},
	code.ExpressionFailed:     {http.StatusUnprocessableEntity, "Expression failed"},
	code.InvalidRequest:       {http.StatusBadRequest, "Invalid request"},
	code.BodyTooLarge:         {http.StatusRequestEntityTooLarge, "Request body too large"},
	code.UnsupportedMediaType: {http.StatusUnsupportedMediaType, "Unsupported media type"},
	code.MethodNotAllowed:     {http.StatusMethodNotAllowed, "Method not allowed"},
	code.Unavailable:          {http.StatusServiceUnavailable, "Service unavailable"},
	code.OutcomeUnknown:       {http.StatusServiceUnavailable, "Outcome unknown"},
	code.Unauthorized:         {http.StatusUnauthorized, "Unauthorized"},
	code.Forbidden:            {http.StatusForbidden, "Forbidden"},
	code.TooManyRequests:      {http.StatusTooManyRequests, "Too many requests"},
	code.Internal:             {http.StatusInternalServerError, "Internal server error"},
}

// echoCodes names the errors echo itself returns (routing, the body limit) by our codes.
var echoCodes = map[int]string{
	http.StatusBadRequest:            code.InvalidRequest,
	http.StatusNotFound:              code.NotFound,
	http.StatusMethodNotAllowed:      code.MethodNotAllowed,
	http.StatusRequestEntityTooLarge: code.BodyTooLarge,
	http.StatusUnsupportedMediaType:  code.UnsupportedMediaType,
	http.StatusServiceUnavailable:    code.Unavailable,
}

// Problem is an error as the API shows it: application/problem+json (RFC 9457). `instance` is not
// RFC 9457's URI but the instance's current snapshot, as api.md defines it.
type Problem struct {
	Type      string              `json:"type" validate:"required" example:"https://fsmd.dev/problems/guard_rejected"`
	Title     string              `json:"title" validate:"required" example:"Guard rejected"`
	Status    int                 `json:"status" validate:"required" example:"409"`
	Detail    string              `json:"detail" validate:"required" example:"event pay in state created: no guard holds: payment must cover the order amount"`
	Code      string              `json:"code" validate:"required" example:"guard_rejected" enums:"not_found,invalid_transition,guard_rejected,instance_final,instance_exists,version_conflict,unknown_event,invalid_payload,invalid_context,invalid_definition,idempotency_mismatch,expression_failed,migration_running,bulk_running,unknown_state,instance_suspended,key_exists,transition_forbidden,invalid_request,body_too_large,unsupported_media_type,method_not_allowed,unauthorized,forbidden,too_many_requests,unavailable,outcome_unknown,internal_error"`
	Instance  *service.Instance   `json:"instance,omitempty"`   // the instance as it is now: version_conflict, instance_exists and refused events
	Blockers  []machine.Blocker   `json:"blockers,omitempty"`   // guard_rejected: one entry per branch, in order
	Allowed   []machine.Allowed   `json:"allowed,omitempty"`    // transition_forbidden: per branch, the groups that may take it
	Errors    []source.Diagnostic `json:"errors,omitempty"`     // invalid_definition: every problem found
	RequestID string              `json:"request_id,omitempty"` // the X-Request-ID, to find the log lines
}

// requestError is an error in the request itself, found before the service is asked.
type requestError struct {
	code, detail string
}

func (e *requestError) Error() string { return e.detail }

// Code is the error code.
func (e *requestError) Code() string { return e.code }

// invalid is an invalid_request error.
func invalid(format string, args ...any) error {
	return &requestError{code.InvalidRequest, fmt.Sprintf(format, args...)}
}

// problemFor turns any error into its problem, and says whether the error is the server's fault
// (to be logged with its real text, which the client does not see).
func (s *server) problemFor(err error, c echo.Context) (p Problem, fault bool) {
	cd, detail := s.classify(err, c)
	kind, ok := problemKinds[cd]
	if !ok {
		// A cd the table does not know is a bug of ours, not the client's: 500, like any error.
		cd, detail = code.Internal, "internal error"
		kind = problemKinds[cd]
	}
	p = Problem{
		Type:      ProblemTypeBase + cd,
		Title:     kind.title,
		Status:    kind.status,
		Detail:    detail,
		Code:      cd,
		RequestID: RequestID(c.Request().Context()),
	}
	p.Instance = problemInstance(err)
	var gr *machine.GuardRejectedError
	if errors.As(err, &gr) {
		p.Blockers = gr.Blockers
		if p.Blockers == nil {
			p.Blockers = []machine.Blocker{}
		}
	}
	var tf *machine.TransitionForbiddenError
	if errors.As(err, &tf) {
		p.Allowed = tf.Branches
	}
	var inv *machine.InvalidDefinitionError
	if errors.As(err, &inv) {
		p.Errors = inv.Diagnostics
		if p.Errors == nil {
			p.Errors = []source.Diagnostic{}
		}
	}
	return p, kind.status >= 500
}

// classify finds the cd and the detail of an error.
func (s *server) classify(err error, c echo.Context) (cd, detail string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return s.classifyEcho(he, c)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return code.BodyTooLarge, fmt.Sprintf("the request body is over the limit of %d bytes", tooLarge.Limit)
	}
	switch cd := code.Of(err); cd {
	case "":
	case code.Unavailable:
		// The service's text names the database failure; the client needs only to know to retry.
		return cd, "the database is unavailable; retry later"
	case code.OutcomeUnknown:
		// As for unavailable, the cause stays in the log.
		return cd, "the database connection broke while the request was written, and whether it applied could not be " +
			"read back: it may or may not have; send it again with the same Idempotency-Key, or for a creation the same id (safe either way)"
	default:
		return cd, err.Error()
	}
	var timeout interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &timeout) && timeout.Timeout()) {
		return code.Unavailable, "the request timed out; retry later"
	}
	return code.Internal, "internal error"
}

// classifyEcho names echo's own errors: the router's 404 and 405 above all.
func (s *server) classifyEcho(he *echo.HTTPError, c echo.Context) (cd, detail string) {
	cd, ok := echoCodes[he.Code]
	if !ok {
		return code.Internal, "internal error"
	}
	req := c.Request()
	switch cd {
	case code.NotFound:
		return cd, fmt.Sprintf("no route %s %s", req.Method, req.URL.Path)
	case code.MethodNotAllowed:
		return cd, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", req.Method, req.URL.Path, c.Response().Header().Get(echo.HeaderAllow))
	case code.BodyTooLarge:
		return cd, fmt.Sprintf("the request body is over the limit of %d bytes", s.bodyLimit)
	}
	if m, ok := he.Message.(string); ok && m != http.StatusText(he.Code) {
		return cd, m
	}
	return cd, http.StatusText(he.Code)
}

// problemInstance finds the instance snapshot an error carries, or nil.
func problemInstance(err error) *service.Instance {
	var inst *service.Instance
	var ee *service.EventError
	var vc *service.VersionConflictError
	var ie *service.InstanceExistsError
	switch {
	case errors.As(err, &vc):
		inst = &vc.Instance
	case errors.As(err, &ie):
		inst = &ie.Instance
	case errors.As(err, &ee):
		inst = &ee.Instance
	}
	if inst == nil || inst.ID == "" { // an error made before the instance was read carries none
		return nil
	}
	return inst
}

// handleError is echo's HTTPErrorHandler: every error of every route, and of routes that do not
// exist, becomes problem+json here.
func (s *server) handleError(err error, c echo.Context) {
	p, fault := s.problemFor(err, c)
	req := c.Request()
	if fault {
		level := slog.LevelError // a bug of ours
		if p.Status == http.StatusServiceUnavailable {
			level = slog.LevelWarn // the database is away or slow: an operator's matter, not a bug
		}
		s.log.LogAttrs(req.Context(), level, "request failed",
			slog.String("request_id", p.RequestID), slog.String("method", req.Method),
			slog.String("path", req.URL.Path), slog.Int("status", p.Status), slog.String("error", err.Error()))
	}
	if c.Response().Committed {
		return // the answer is on its way already; the log line above is all that can be done
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/problem+json")
	if p.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		// Nothing was written: the client may send it again (with an Idempotency-Key, safely).
		h.Set("Retry-After", "1")
	}
	if req.Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	b, merr := marshalJSON(p)
	if merr != nil {
		s.log.Error("encoding a problem", slog.String("request_id", p.RequestID), slog.String("error", merr.Error()))
		b = []byte(`{"type":"` + ProblemTypeBase + code.Internal + `","title":"Internal server error","status":500,"detail":"internal error","code":"` + code.Internal + `"}`)
		p.Status = http.StatusInternalServerError
	}
	_ = c.Blob(p.Status, "application/problem+json", b)
}
