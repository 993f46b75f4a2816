package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// HeaderRequestID carries the request id, both ways.
const HeaderRequestID = "X-Request-ID"

// maxHeaderValue bounds the client-chosen header values we keep (request ids, idempotency keys):
// they are stored in the audit log and written to logs.
const maxHeaderValue = 200

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestID takes the client's X-Request-ID when it is sane, so that a request can be followed
// across services, and makes one otherwise; it answers with it and puts it in the request context.
// An insane one is replaced rather than refused: the id is for tracing, and refusing would lose the
// request it was meant to trace.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(HeaderRequestID)
		if !printableHeader(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(HeaderRequestID, id)
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), requestIDKey{}, id)))
		return next(c)
	}
}

// newRequestID is 128 random bits in hex: unique without coordination.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (it panics on a broken system)
	return hex.EncodeToString(b[:])
}

// printableHeader reports whether v is a non-empty header value of at most maxHeaderValue printable
// ASCII characters (spaces allowed inside, not at the ends).
func printableHeader(v string) bool {
	if v == "" || len(v) > maxHeaderValue || v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// bodyLimit refuses a request body over limit bytes with 413: at once when Content-Length says so,
// else when a handler reads past the limit (http.MaxBytesReader's error, mapped in problem.go).
// echo's own BodyLimit middleware would do the same, but its package pulls in golang.org/x/time for
// a rate limiter fsmd does not use; MaxBytesReader also tells net/http to close the connection
// rather than read the rest of an oversized body.
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return &http.MaxBytesError{Limit: limit}
			}
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			}
			return next(c)
		}
	}
}

// accessLog writes one line per request. It hands a handler's error to the error handler itself
// (instead of letting echo do it after the chain returns) so that the line has the status sent.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			req := c.Request()
			if !log.Enabled(req.Context(), slog.LevelInfo) { // --log-level warn: no line, and no cost
				return nil
			}
			attrs := []slog.Attr{
				slog.String("request_id", RequestID(req.Context())),
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.String("route", c.Path()),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("duration", time.Since(start)),
			}
			log.LogAttrs(req.Context(), slog.LevelInfo, "request", append(attrs, subject(c)...)...)
			return nil
		}
	}
}

// The echo context keys of what a request was about, for its log line.
const (
	instanceKey   = "fsmd.instance"
	definitionKey = "fsmd.definition"
)

// noteInstance records the instance a request was about (and its definition) for the access log.
func noteInstance(c echo.Context, inst service.Instance) {
	c.Set(instanceKey, inst.ID)
	c.Set(definitionKey, inst.Definition)
}

// subject is what a request was about, where known: the instance (its id in the path, or the one
// a handler noted) and the definition (its name in the path, or the noted instance's), and the key
// that sent it.
func subject(c echo.Context) []slog.Attr {
	var out []slog.Attr
	instance, _ := c.Get(instanceKey).(string)
	definition, _ := c.Get(definitionKey).(string)
	route := c.Path()
	// pathID decodes the parameter as the handler did (an id holding a slash arrives escaped); one
	// it refuses is left out of the line, whose path shows it anyway.
	if instance == "" && strings.HasPrefix(route, "/v1/instances/:id") {
		instance, _ = pathID(c, "id")
	}
	if definition == "" && strings.HasPrefix(route, "/v1/definitions/:name") {
		definition, _ = pathID(c, "name")
	}
	if instance != "" {
		out = append(out, slog.String("instance", instance))
	}
	if definition != "" {
		out = append(out, slog.String("definition", definition))
	}
	if a := actor(c); a != "" {
		out = append(out, slog.String("actor", a))
	}
	return out
}

// recoverPanics turns a handler's panic into an error (a 500 problem) with the stack in the log, so
// that one bad request does not take the process down. http.ErrAbortHandler keeps its meaning.
func recoverPanics(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				r := recover()
				if r == nil {
					return
				}
				if r == http.ErrAbortHandler {
					panic(r)
				}
				log.LogAttrs(c.Request().Context(), slog.LevelError, "panic",
					slog.String("request_id", RequestID(c.Request().Context())),
					slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				err = fmt.Errorf("panic: %v", r)
			}()
			return next(c)
		}
	}
}
