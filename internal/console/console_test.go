package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestServe(t *testing.T) {
	t.Parallel()
	e := echo.New()
	Register(e)
	index, err := embedded.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	for _, c := range []struct {
		path, ctype string
		status      int
		page        bool // the answer is index.html
	}{
		{"/ui/", "text/html; charset=utf-8", 200, true},
		{"/ui/definitions/order", "text/html; charset=utf-8", 200, true},
		{"/ui/worklist", "text/html; charset=utf-8", 200, true},
		{"/ui/instances/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "text/html; charset=utf-8", 200, true},
		{"/ui/assets/app.js", "text/javascript; charset=utf-8", 200, false},
		{"/ui/assets/app.css", "text/css; charset=utf-8", 200, false},
		{"/ui/assets/mermaid.min.js", "text/javascript; charset=utf-8", 200, false},
		{"/ui/assets/nope.js", "", 404, false},
		{"/ui/assets/../assets/app.js", "", 404, false}, // names are looked up, never joined to a path
	} {
		rec := get(c.path)
		if rec.Code != c.status {
			t.Errorf("%s: %d, want %d", c.path, rec.Code, c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: Content-Security-Policy %q", c.path, csp)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("ETag") == "" {
			t.Errorf("%s: headers %v", c.path, rec.Header())
		}
		if c.page != bytes.Equal(rec.Body.Bytes(), index) {
			t.Errorf("%s: index.html %v, want %v", c.path, !c.page, c.page)
		}
	}

	t.Run("/ui redirects to /ui/", func(t *testing.T) {
		t.Parallel()
		if rec := get("/ui"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
			t.Errorf("%d %v", rec.Code, rec.Header())
		}
	})
	t.Run("a file not changed is not sent again", func(t *testing.T) {
		t.Parallel()
		tag := get("/ui/assets/app.js").Header().Get("ETag")
		if rec := get("/ui/assets/app.js", "If-None-Match", tag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("with If-None-Match %s: %d, %d bytes", tag, rec.Code, rec.Body.Len())
		}
		if rec := get("/ui/assets/app.js", "If-None-Match", `"other"`); rec.Code != http.StatusOK {
			t.Errorf("with another tag: %d", rec.Code)
		}
	})
	t.Run("gzip when the client takes it", func(t *testing.T) {
		t.Parallel()
		plain := get("/ui/assets/mermaid.min.js")
		rec := get("/ui/assets/mermaid.min.js", "Accept-Encoding", "br, gzip;q=0.8")
		if rec.Header().Get("Content-Encoding") != "gzip" || rec.Body.Len() >= plain.Body.Len()/2 {
			t.Fatalf("Content-Encoding %q, %d bytes of %d", rec.Header().Get("Content-Encoding"), rec.Body.Len(), plain.Body.Len())
		}
		r, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		if body, err := io.ReadAll(r); err != nil || !bytes.Equal(body, plain.Body.Bytes()) {
			t.Errorf("the gzip body does not decode to the file: %v", err)
		}
		if rec := get("/ui/assets/mermaid.min.js", "Accept-Encoding", "gzip;q=0"); rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("gzip;q=0: Content-Encoding %q", rec.Header().Get("Content-Encoding"))
		}
	})
}
