package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/service"
	"github.com/fsmd-io/fsmd/internal/source"
)

// ProblemTypeBase begins every problem's `type`: the type is ProblemTypeBase followed by the code
// (https://fsmd.dev/problems/guard_rejected). A URL per code rather than "about:blank" because the
// code is what clients branch on and RFC 9457 §3.1.1 wants the type to identify the problem kind;
// the URL is an identifier first, and the place to document the code.
const ProblemTypeBase = "https://fsmd.dev/problems/"

// Codes of fsmd's own for errors the HTTP layer finds before the service is asked (or when it cannot
// answer). The codes of definitions.md §4 are machine's.
const (
	CodeInvalidRequest       = "invalid_request"        // malformed JSON, unknown fields, bad ids, query values or headers
	CodeBodyTooLarge         = "body_too_large"         // over the body limit
	CodeUnsupportedMediaType = "unsupported_media_type" // a body of another content type
	CodeMethodNotAllowed     = "method_not_allowed"     // the path exists, the method does not
	CodeUnavailable          = "unavailable"            // the database does not answer, or the service is not ready
	CodeInternal             = "internal_error"         // a bug: the real error is only in the log
)

// problemKind is what a code means over HTTP.
type problemKind struct {
	status int
	title  string // the same for every occurrence, as RFC 9457 asks; the detail varies
}

// problemKinds is the one table from error code to HTTP status (api.md's, plus fsmd's own codes).
var problemKinds = map[string]problemKind{
	machine.CodeNotFound:            {http.StatusNotFound, "Not found"},
	machine.CodeInvalidTransition:   {http.StatusConflict, "Invalid transition"},
	machine.CodeGuardRejected:       {http.StatusConflict, "Guard rejected"},
	machine.CodeInstanceFinal:       {http.StatusConflict, "Instance is final"},
	service.CodeInstanceExists:      {http.StatusConflict, "Instance exists"},
	machine.CodeVersionConflict:     {http.StatusPreconditionFailed, "Version conflict"},
	migration.CodeRunning:           {http.StatusConflict, "Migration running"},
	machine.CodeUnknownEvent:        {http.StatusUnprocessableEntity, "Unknown event"},
	machine.CodeInvalidPayload:      {http.StatusUnprocessableEntity, "Invalid payload"},
	machine.CodeInvalidContext:      {http.StatusUnprocessableEntity, "Invalid context"},
	machine.CodeInvalidDefinition:   {http.StatusUnprocessableEntity, "Invalid definition"},
	machine.CodeIdempotencyMismatch: {http.StatusUnprocessableEntity, "Idempotency mismatch"},
	machine.CodeExpressionFailed:    {http.StatusUnprocessableEntity, "Expression failed"},
	CodeInvalidRequest:              {http.StatusBadRequest, "Invalid request"},
	CodeBodyTooLarge:                {http.StatusRequestEntityTooLarge, "Request body too large"},
	CodeUnsupportedMediaType:        {http.StatusUnsupportedMediaType, "Unsupported media type"},
	CodeMethodNotAllowed:            {http.StatusMethodNotAllowed, "Method not allowed"},
	CodeUnavailable:                 {http.StatusServiceUnavailable, "Service unavailable"},
	CodeUnauthorized:                {http.StatusUnauthorized, "Unauthorized"},
	CodeForbidden:                   {http.StatusForbidden, "Forbidden"},
	CodeTooManyRequests:             {http.StatusTooManyRequests, "Too many requests"},
	CodeInternal:                    {http.StatusInternalServerError, "Internal server error"},
}

// echoCodes names the errors echo itself returns (routing, the body limit) by our codes.
var echoCodes = map[int]string{
	http.StatusBadRequest:            CodeInvalidRequest,
	http.StatusNotFound:              machine.CodeNotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusRequestEntityTooLarge: CodeBodyTooLarge,
	http.StatusUnsupportedMediaType:  CodeUnsupportedMediaType,
	http.StatusServiceUnavailable:    CodeUnavailable,
}

// Problem is an error as the API shows it: application/problem+json (RFC 9457). `instance` is not
// RFC 9457's URI but the instance's current snapshot, as api.md defines it.
type Problem struct {
	Type      string              `json:"type" validate:"required" example:"https://fsmd.dev/problems/guard_rejected"`
	Title     string              `json:"title" validate:"required" example:"Guard rejected"`
	Status    int                 `json:"status" validate:"required" example:"409"`
	Detail    string              `json:"detail" validate:"required" example:"event pay in state created: no guard holds: payment must cover the order amount"`
	Code      string              `json:"code" validate:"required" example:"guard_rejected" enums:"not_found,invalid_transition,guard_rejected,instance_final,instance_exists,version_conflict,unknown_event,invalid_payload,invalid_context,invalid_definition,idempotency_mismatch,expression_failed,migration_running,invalid_request,body_too_large,unsupported_media_type,method_not_allowed,unauthorized,forbidden,too_many_requests,unavailable,internal_error"`
	Instance  *service.Instance   `json:"instance,omitempty"`   // the instance as it is now: version_conflict, instance_exists and refused events
	Blockers  []machine.Blocker   `json:"blockers,omitempty"`   // guard_rejected: one entry per branch, in order
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
	return &requestError{CodeInvalidRequest, fmt.Sprintf(format, args...)}
}

// problemFor turns any error into its problem, and says whether the error is the server's fault
// (to be logged with its real text, which the client does not see).
func (s *server) problemFor(err error, c echo.Context) (p Problem, fault bool) {
	code, detail := s.classify(err, c)
	kind, ok := problemKinds[code]
	if !ok {
		// A code the table does not know is a bug of ours, not the client's: 500, like any error.
		code, detail = CodeInternal, "internal error"
		kind = problemKinds[code]
	}
	p = Problem{
		Type:      ProblemTypeBase + code,
		Title:     kind.title,
		Status:    kind.status,
		Detail:    detail,
		Code:      code,
		RequestID: RequestID(c.Request().Context()),
	}
	p.Instance = instanceOf(err)
	var gr *machine.GuardRejectedError
	if errors.As(err, &gr) {
		p.Blockers = gr.Blockers
		if p.Blockers == nil {
			p.Blockers = []machine.Blocker{}
		}
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

// classify finds the code and the detail of an error.
func (s *server) classify(err error, c echo.Context) (code, detail string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return s.classifyEcho(he, c)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return CodeBodyTooLarge, fmt.Sprintf("the request body is over the limit of %d bytes", tooLarge.Limit)
	}
	switch code := machine.CodeOf(err); code {
	case "":
	case CodeUnavailable:
		// The service's text names the database failure; the client needs only to know to retry.
		return code, "the database is unavailable; retry later"
	default:
		return code, err.Error()
	}
	var timeout interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &timeout) && timeout.Timeout()) {
		return CodeUnavailable, "the request timed out; retry later"
	}
	return CodeInternal, "internal error"
}

// classifyEcho names echo's own errors: the router's 404 and 405 above all.
func (s *server) classifyEcho(he *echo.HTTPError, c echo.Context) (code, detail string) {
	code, ok := echoCodes[he.Code]
	if !ok {
		return CodeInternal, "internal error"
	}
	req := c.Request()
	switch code {
	case machine.CodeNotFound:
		return code, fmt.Sprintf("no route %s %s", req.Method, req.URL.Path)
	case CodeMethodNotAllowed:
		return code, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", req.Method, req.URL.Path, c.Response().Header().Get(echo.HeaderAllow))
	case CodeBodyTooLarge:
		return code, fmt.Sprintf("the request body is over the limit of %d bytes", s.bodyLimit)
	}
	if m, ok := he.Message.(string); ok && m != http.StatusText(he.Code) {
		return code, m
	}
	return code, http.StatusText(he.Code)
}

// instanceOf finds the instance snapshot an error carries, or nil.
func instanceOf(err error) *service.Instance {
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
	if req.Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	b, merr := json.Marshal(p)
	if merr != nil {
		s.log.Error("encoding a problem", slog.String("request_id", p.RequestID), slog.String("error", merr.Error()))
		b = []byte(`{"type":"` + ProblemTypeBase + CodeInternal + `","title":"Internal server error","status":500,"detail":"internal error","code":"` + CodeInternal + `"}`)
		p.Status = http.StatusInternalServerError
	}
	_ = c.Blob(p.Status, "application/problem+json", b)
}
