// Package server is fsmd's HTTP adapter: the REST API of docs/api.md on echo v4, in front
// of the service (internal/service), which it reaches through the Service interface declared here.
//
// The server decodes and checks requests (strict JSON, content types, ids, query parameters and
// headers), gives every request an id, logs one line per request, and turns every error into
// application/problem+json through one table (problem.go). It decides nothing about instances or
// definitions: that is the service's work.
//
// The swag annotations on the handlers and the API types generate api/openapi (`make openapi`):
// the Swagger 2.0 document at /swagger/doc.json, and the OpenAPI 3 document made from it
// (internal/apidoc) at /openapi.json, which Swagger UI reads at /swagger/index.html. Each
// annotation lists every status the route can answer (the middleware's too: 401, 403 and 429 where
// a key is needed, 413 everywhere, 415 on every POST and PUT), and every header it sends.
package server

//go:generate make -C ../.. --no-print-directory openapi

// The general API information of the OpenAPI document. No @host and no @schemes: Swagger UI then
// sends "Try it out" requests to the server that served the page, wherever it runs.

// @title        fsmd API
// @version      1
// @description  fsmd runs rule-driven state machines: definitions in YAML, instances that move by events through guarded branches, an audit log of every transition.
// @description
// @description  Every error is application/problem+json (RFC 9457) with `type`, `title`, `status`, `detail` and `code`; `type` is https://fsmd.dev/problems/ followed by the code (for example https://fsmd.dev/problems/guard_rejected). Where they apply, a problem also carries `instance` (the instance as it is now), `blockers` (guard_rejected: one entry per branch) and `errors` (invalid_definition: every problem with file, line and column). `request_id` repeats the X-Request-ID of the response.
// @description
// @description  Every response carries X-Request-ID: the request's own when it sent a sane one (at most 200 printable ASCII characters), else a generated one.
// @description
// @description  A server without API keys answers only requests to a loopback name (localhost, 127.0.0.1, [::1]): another Host is 400 invalid_request. Every POST and PUT carries a JSON Content-Type (YAML for a definition), even without a body, or a key: else 415 unsupported_media_type.
// @BasePath     /

// @securityDefinitions.apikey  BearerAuth
// @in                          header
// @name                        Authorization
// @description                 An API key, sent as "Bearer <key>" (fsmd keys new makes one; the server's --api-keys file grants it a role: read for every GET, write for instances and events too, admin for everything). A server without keys takes every request and listens on loopback only.
