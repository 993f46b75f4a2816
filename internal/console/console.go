// Package console is fsmd's web console: a page application served at /ui from files embedded in
// the binary, so that `go run ./cmd/fsmd serve` needs no npm and no build step. The page reads the
// same /v1 API as every other client, with the same keys; this package only serves files.
//
// Mermaid (assets/mermaid.min.js) is a built third-party file, committed as it is and refreshed
// with `make assets`.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

//go:embed assets
var embedded embed.FS

// Prefix is where the console is served.
const Prefix = "/ui"

// policy keeps the page to its own files: no inline script, no other origin, no framing. Styles may
// be inline because Mermaid writes a <style> into each diagram it draws.
const policy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, ready to send: its ETag is its content's hash, and its gzip form is
// made once, on first request (mermaid.min.js is 5 MB, 1.6 MB compressed).
type asset struct {
	body  []byte
	etag  string
	ctype string
	gz    func() []byte
}

var assets = sync.OnceValue(func() map[string]*asset {
	out := map[string]*asset{}
	err := fs.WalkDir(embedded, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "text/plain; charset=utf-8"
		}
		out[strings.TrimPrefix(p, "assets/")] = &asset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype,
			gz: sync.OnceValue(func() []byte {
				var b bytes.Buffer
				w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
				_, _ = w.Write(body)
				_ = w.Close()
				return b.Bytes()
			})}
		return nil
	})
	if err != nil {
		panic("console: reading the embedded files: " + err.Error()) // a broken build, not an input
	}
	return out
})

// Register adds the console's routes: /ui redirects to /ui/, /ui/assets/NAME are the embedded
// files, and every other path under /ui/ is the page (index.html), which routes itself by its URL
// (/ui/definitions/NAME, /ui/instances/ID, ...).
func Register(e *echo.Echo) {
	e.GET(Prefix, func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, Prefix+"/") })
	e.GET(Prefix+"/*", serve)
}

func serve(c echo.Context) error {
	name := "index.html"
	if rest, ok := strings.CutPrefix(c.Param("*"), "assets/"); ok {
		name = rest
	}
	a := assets()[name]
	if a == nil {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", policy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // revalidated by ETag: a new binary's files are seen at once
	h.Set("ETag", a.etag)
	h.Set("Vary", "Accept-Encoding")
	if match := c.Request().Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	body := a.body
	if len(body) > 1024 && acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
		body = a.gz()
		h.Set("Content-Encoding", "gzip")
	}
	return c.Blob(http.StatusOK, a.ctype, body)
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip (and does not refuse it, q=0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q, weighted := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
			v, err := strconv.ParseFloat(q, 64)
			return !weighted || err != nil || v > 0
		}
	}
	return false
}
