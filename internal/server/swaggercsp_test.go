package server

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// TestSwaggerPolicy: Swagger UI's page has a Content-Security-Policy that allows its own inline
// script and styles by their hashes and nothing else inline (no 'unsafe-inline', no 'unsafe-eval'),
// requests to this origin only, and no framing; every file under /swagger/ is sent with nosniff and
// no Referer.
func TestSwaggerPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	rec := b.do(t, req{method: "GET", path: "/swagger/index.html"})
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("index.html: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	policy := rec.Header().Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	for name, want := range map[string]string{"default-src": "'none'", "connect-src": "'self'", "frame-ancestors": "'none'",
		"base-uri": "'none'", "img-src": "'self' data:"} {
		if directives[name] != want {
			t.Errorf("%s %q, want %q (policy %q)", name, directives[name], want, policy)
		}
	}
	if strings.Contains(policy, "'unsafe-inline'") || strings.Contains(policy, "'unsafe-eval'") || strings.Contains(policy, "*") {
		t.Errorf("the policy allows too much: %q", policy)
	}
	page := rec.Body.Bytes()
	scripts := inlineScriptRE.FindAllSubmatch(page, -1)
	if len(scripts) == 0 {
		t.Fatal("no inline script found in the page: the test would prove nothing")
	}
	for _, m := range scripts {
		sum := sha256.Sum256(m[1])
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(directives["script-src"], h) {
			t.Errorf("script-src %q lacks the inline script's %s", directives["script-src"], h)
		}
	}
	if !strings.HasPrefix(directives["script-src"], "'self' 'sha256-") || !strings.HasPrefix(directives["style-src"], "'self' 'sha256-") {
		t.Errorf("script-src %q, style-src %q", directives["script-src"], directives["style-src"])
	}
	for _, path := range []string{"/swagger/index.html", "/swagger/swagger-ui-bundle.js", "/swagger/swagger-ui.css", "/swagger/doc.json"} {
		rec := b.do(t, req{method: "GET", path: path})
		h := rec.Header()
		if rec.Code != 200 || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: %d %v", path, rec.Code, h)
		}
	}
}
