package server

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	echoSwagger "github.com/swaggo/echo-swagger"
	swaggerFiles "github.com/swaggo/files/v2"
	"github.com/swaggo/swag"

	"github.com/fsmd-io/fsmd/api/openapi"
	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/console"
	"github.com/fsmd-io/fsmd/internal/service"
)

// Service is what the handlers need of the service; *service.Service satisfies it. It is declared
// here, where it is used, so that the handlers can be tested without a database.
type Service interface {
	// CreateInstance creates an instance; created is false when an identical request created it
	// before (a client-chosen id), and the answer is then that instance.
	CreateInstance(ctx context.Context, req service.CreateInstance) (inst service.Instance, created bool, err error)
	GetInstance(ctx context.Context, id string) (service.Instance, error)
	ListInstances(ctx context.Context, f service.InstanceFilter) (service.Page[service.Instance], error)
	ListChildren(ctx context.Context, id string, f service.InstanceFilter) (service.Page[service.Instance], error)
	Worklist(ctx context.Context, req service.WorklistRequest) (service.Page[service.WorkItem], error)
	Assign(ctx context.Context, req service.AssignRequest) (service.Instance, error)
	Suspend(ctx context.Context, req service.AdminRequest) (service.Instance, error)
	Resume(ctx context.Context, req service.AdminRequest) (service.Instance, error)
	Terminate(ctx context.Context, req service.AdminRequest) (service.Instance, error)
	Repair(ctx context.Context, req service.RepairRequest) (service.EventResult, error)
	PlanBulk(ctx context.Context, req service.BulkRequest) (service.BulkPlan, error)
	StartBulk(ctx context.Context, req service.BulkRequest) (service.Bulk, error)
	GetBulk(ctx context.Context, id string) (service.Bulk, error)
	ListBulks(ctx context.Context, name, after string, limit int) (service.Page[service.Bulk], error)
	CancelBulk(ctx context.Context, id string) (service.Bulk, error)
	// SendEvent fires an event; replayed is true when the Idempotency-Key was seen with the same
	// request and res is the first answer.
	SendEvent(ctx context.Context, req service.SendEvent) (res service.EventResult, replayed bool, err error)
	// InstanceByKey finds the running instance of a definition that has a key value (service/keys.go).
	InstanceByKey(ctx context.Context, definition string, key map[string]any, idempotencyKey string) (string, error)
	Explain(ctx context.Context, id string, req service.SendEvent) (service.Explanation, error) // req: the event, its payload and its actor
	History(ctx context.Context, id string, afterSeq int64, limit int) (service.Page[service.HistoryEntry], error)
	// StreamHistory calls each with every history row after afterSeq, a page read at a time.
	StreamHistory(ctx context.Context, id string, afterSeq int64, each func(service.HistoryEntry) error) error
	ListDefinitions(ctx context.Context, after string, limit int) (service.Page[service.DefinitionSummary], error)
	GetDefinition(ctx context.Context, name string) (service.DefinitionVersion, error) // the latest version
	DefinitionVersions(ctx context.Context, name string, after, limit int) (service.Page[service.DefinitionVersion], error)
	DefinitionVersion(ctx context.Context, name string, version int) (service.DefinitionVersion, error)
	Diagram(ctx context.Context, name string, version int) (string, error) // version 0: the latest; Mermaid stateDiagram-v2
	PutDefinition(ctx context.Context, name string, yaml []byte) (service.PutResult, error)
	Ready(ctx context.Context) error // nil when the database answers and definitions are loaded
	PlanMigration(ctx context.Context, name string, req service.MigrationRequest) (service.MigrationPlan, error)
	StartMigration(ctx context.Context, name string, req service.MigrationRequest) (service.MigrationStatus, error)
	GetMigration(ctx context.Context, id string) (service.MigrationStatus, error)
	ListMigrations(ctx context.Context, name, after string, limit int) (service.Page[service.MigrationStatus], error) // newest first
	// Reload re-reads the definitions folder dir: all or nothing when a file is invalid.
	Reload(ctx context.Context, dir string) (service.ReloadResult, error)
	// The dead letters of the outbox (outbox.go).
	ListDeadLetters(ctx context.Context, f service.DeadLetterFilter) (service.Page[service.DeadLetter], error)
	RedriveDeadLetter(ctx context.Context, id string) (service.RedriveResult, error)
	RedriveDeadLetters(ctx context.Context, f service.DeadLetterFilter) (service.RedriveResult, error)
	ListDeadMessages(ctx context.Context, f service.DeadMessageFilter) (service.Page[service.DeadMessage], error)
	RedriveDeadMessage(ctx context.Context, id string) (service.RedriveResult, error)
}

// DefaultBodyLimit is the largest request body accepted when Options.BodyLimit is 0.
const DefaultBodyLimit = 1 << 20

// Options configure the server. The zero value is usable.
type Options struct {
	Logger    *slog.Logger // access log and errors; slog.Default() when nil
	BodyLimit int64        // bytes; DefaultBodyLimit when 0
	Version   string       // the build's version, shown by /healthz
	// Definitions is the folder POST /v1/reload re-reads; "" for none (reload answers not_found).
	Definitions string
	// Metrics is the registry /metrics serves, the server's metrics added to it; a new one when nil.
	Metrics *prometheus.Registry
	// Keys are the API keys the server accepts (Authorization: Bearer); none (nil or empty) lets
	// every request in, which serve allows on loopback only.
	Keys *auth.Keys
	// Tokens, when set, verifies bearer tokens (JWT) beside the keys: a token names its caller, their
	// groups and their role.
	Tokens *auth.Tokens
	// MetricsNeedKey puts /metrics behind a key (the read role).
	MetricsNeedKey bool
	// TrustedProxies are the networks of the reverse proxies in front of the server: from them, and
	// only from them, X-Forwarded-For names the client (for the failed-authentication lockout).
	TrustedProxies []netip.Prefix
}

// server holds what the handlers share.
type server struct {
	svc       Service
	log       *slog.Logger
	bodyLimit int64
	version   string
	metrics   *metrics
	defsDir   string // Options.Definitions

	keys           *auth.Keys   // Options.Keys
	tokens         *auth.Tokens // Options.Tokens
	metricsNeedKey bool
	failures       failures // failed authentications per client
}

// New returns the HTTP handler of the API. The caller runs it (http.Server{Handler: e}) and shuts
// it down.
func New(svc Service, o Options) *echo.Echo {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	s := &server{svc: svc, log: o.Logger, bodyLimit: o.BodyLimit, version: o.Version, metrics: newMetrics(o.Metrics),
		defsDir: o.Definitions, keys: o.Keys, tokens: o.Tokens, metricsNeedKey: o.MetricsNeedKey}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.JSONSerializer = jsonSerializer{}
	// echo's default trusts X-Forwarded-For from anyone: the lockout (auth.go) would then count a
	// spoofed address's failures.
	e.IPExtractor = clientIP(o.TrustedProxies)
	// Outermost first: the request id is there for every log line; the access log sees the status
	// of every answer, panics included; a rebound Host is refused before anything else is done; the
	// body limit is checked before a handler reads. Authentication comes after routing (it needs the
	// route) and after the access log (which sees its refusals); a cross-site content type is refused
	// after it (a request without a key is 401 whatever it sends). crosssite.go has the two checks.
	e.Use(requestID, accessLog(s.log), recoverPanics(s.log), s.checkHost, bodyLimit(o.BodyLimit), s.authenticate, requireNonSimple())

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/openapi.json", openapiJSON) // openapi.go
	e.GET("/metrics", s.serveMetrics)
	e.GET("/swagger", swaggerIndex)
	e.GET("/swagger/*", swaggerUI())
	console.Register(e) // /ui: the web console, a page over this API

	v1 := e.Group("/v1")
	v1.GET("/me", s.me) // me.go
	v1.POST("/instances", s.createInstance)
	v1.GET("/instances", s.listInstances)
	v1.GET("/instances/:id", s.getInstance)
	v1.POST("/instances/:id/events", s.sendEvent)
	v1.POST("/instances/:id/explain", s.explain)
	v1.GET("/instances/:id/history", s.history)
	v1.GET("/instances/:id/children", s.listChildren)
	v1.POST("/instances/:id/assign", s.assign) // tasks.go
	v1.GET("/worklist", s.worklist)
	v1.POST("/instances/:id/suspend", s.suspendInstance) // admin.go
	v1.POST("/instances/:id/resume", s.resumeInstance)
	v1.POST("/instances/:id/terminate", s.terminateInstance)
	v1.POST("/instances/:id/repair", s.repairInstance)
	v1.POST("/definitions/:name/bulk/plan", s.planBulk) // bulk.go
	v1.POST("/definitions/:name/bulk", s.startBulk)
	v1.GET("/bulk/:id", s.getBulk)
	v1.GET("/definitions/:name/bulk", s.listBulks)
	v1.POST("/bulk/:id/cancel", s.cancelBulk)

	v1.GET("/definitions", s.listDefinitions)
	v1.GET("/definitions/:name", s.getDefinition)
	v1.PUT("/definitions/:name", s.putDefinition)
	v1.GET("/definitions/:name/versions", s.definitionVersions)
	v1.GET("/definitions/:name/versions/:version", s.definitionVersion)
	v1.GET("/definitions/:name/diagram", s.diagram)
	v1.GET("/definitions/:name/stats", s.definitionStats)  // stats.go
	v1.POST("/definitions/:name/events", s.sendEventByKey) // correlate.go
	v1.POST("/definitions/:name/migrations/plan", s.planMigration)
	v1.POST("/definitions/:name/migrations", s.startMigration)
	v1.GET("/definitions/:name/migrations", s.listMigrations)
	v1.GET("/migrations/:id", s.getMigration)
	v1.POST("/reload", s.reload)

	v1.GET("/outbox/dead", s.listDeadLetters)
	v1.POST("/outbox/dead/redrive", s.redriveDeadLetters)
	v1.POST("/outbox/dead/:id/redrive", s.redriveDeadLetter)

	v1.GET("/messages/dead", s.listDeadMessages) // messages.go
	v1.POST("/messages/dead/:id/redrive", s.redriveDeadMessage)
	return e
}

// Status is the answer of /healthz and /readyz.
type Status struct {
	Status  string `json:"status" example:"ok" validate:"required" enums:"ok"`
	Version string `json:"version,omitempty"` // the build's version
}

// healthz godoc
//
//	@Summary	Liveness: the process is up
//	@Tags		operations
//	@Produce	json,application/problem+json
//	@Param		X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success	200				{object}	Status
//	@Failure	400				{object}	Problem			"invalid_request: a Host that is not a loopback name (a server without keys)"
//	@Failure	413				{object}	Problem			"body_too_large: a body over the server's limit"
//	@Failure	500				{object}	Problem			"internal_error"
//	@Header		all				{string}	X-Request-ID	"the request id: the one sent, when sane, else a generated one"
//	@Router		/healthz [get]
func (s *server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, Status{Status: "ok", Version: s.version})
}

// serveMetrics godoc
//
//	@Summary		Prometheus metrics
//	@Description	Events by definition, event and outcome (accepted, replayed, or the error code); event latency; the Go runtime and the process. Text exposition format.
//	@Tags			operations
//	@Produce		plain,application/problem+json
//	@Success		200	{string}	string	"Prometheus text format"
//	@Failure		500	{object}	Problem	"internal_error"
//	@Router			/metrics [get]
func (s *server) serveMetrics(c echo.Context) error {
	return s.metrics.handler()(c)
}

// readyz godoc
//
//	@Summary	Readiness: the database answers and the definitions are loaded
//	@Tags		operations
//	@Produce	json,application/problem+json
//	@Param		X-Request-ID	header		string	false	"request id, kept when it is 1 to 200 printable ASCII characters; any other value is replaced by a generated one"
//	@Success	200				{object}	Status
//	@Failure	400				{object}	Problem			"invalid_request: a Host that is not a loopback name (a server without keys)"
//	@Failure	413				{object}	Problem			"body_too_large: a body over the server's limit"
//	@Failure	500				{object}	Problem			"internal_error"
//	@Failure	503				{object}	Problem			"unavailable: not ready"
//	@Header		all				{string}	X-Request-ID	"the request id: the one sent, when sane, else a generated one"
//	@Header		503				{integer}	Retry-After		"seconds to wait before trying again"
//	@Router		/readyz [get]
func (s *server) readyz(c echo.Context) error {
	if err := s.svc.Ready(c.Request().Context()); err != nil {
		return notReady{err}
	}
	return c.JSON(http.StatusOK, Status{Status: "ok"})
}

// notReady is a failed readiness check: 503 whatever the cause, since a probe only asks yes or no.
type notReady struct{ err error }

func (e notReady) Error() string { return "not ready: " + e.err.Error() }
func (e notReady) Unwrap() error { return e.err }

// Code is the error code.
func (e notReady) Code() string { return code.Unavailable }

// swaggerIndex sends /swagger to the UI.
func swaggerIndex(c echo.Context) error {
	return c.Redirect(http.StatusMovedPermanently, "/swagger/index.html")
}

// swaggerUI serves Swagger UI through echo-swagger, and the generated document itself. Four
// things differ from echo-swagger alone: the document is rendered once (swag's ReadDoc writes to the
// registered spec on every call, a data race between concurrent requests); a missing file is a
// problem, not a plain-text 404; the file name is taken from the path, not the raw request URI with
// its query string; the page has a Content-Security-Policy, and every file nosniff and no Referer
// (swaggercsp.go). The UI reads the OpenAPI 3 document, /openapi.json (openapi.go); doc.json, the
// Swagger 2.0 one, stays for the clients that want it.
func swaggerUI() echo.HandlerFunc {
	ui := echoSwagger.EchoWrapHandler(func(c *echoSwagger.Config) { c.URLs = []string{"/openapi.json"} })
	page := sync.OnceValues(func() (swaggerPage, error) { return renderSwaggerPage(ui) }) // swaggercsp.go
	return func(c echo.Context) error {
		swaggerHeaders(c.Response().Header())
		name := c.Param("*")
		switch name {
		case "":
			return swaggerIndex(c) // echo-swagger would redirect to /swagger//index.html
		case "doc.json":
			doc, err := openapiDoc()
			if err != nil {
				return err
			}
			return c.Blob(http.StatusOK, "application/json; charset=utf-8", doc)
		case "index.html":
			p, err := page()
			if err != nil {
				return err
			}
			return p.serve(c)
		default:
			if fi, err := fs.Stat(swaggerFiles.FS, name); err != nil || fi.IsDir() {
				return echo.ErrNotFound
			}
		}
		req := c.Request().Clone(c.Request().Context())
		req.RequestURI = "/swagger/" + name
		c.SetRequest(req)
		return ui(c)
	}
}

// openapiDoc is the generated document, rendered once.
var openapiDoc = sync.OnceValues(func() ([]byte, error) {
	doc, err := swag.ReadDoc(openapi.SwaggerInfo.InstanceName())
	return []byte(doc), err
})
