package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// Swagger UI's page (echo-swagger's index.html) holds an inline script (the configuration), an
// inline style sheet and a style attribute. Rather than allow every inline script, its
// Content-Security-Policy allows exactly these by their SHA-256: a script injected into the page
// would not run. The page is the same for every request (its configuration is fixed), so it is
// rendered once and its hashes taken from what is sent.

// swaggerAssetPolicy is the Content-Security-Policy of Swagger UI's other files (scripts, style
// sheets, images, the documents): nothing of theirs runs as a page.
const swaggerAssetPolicy = "default-src 'none'; frame-ancestors 'none'"

// swaggerHeaders sets the headers of every answer under /swagger/, as the console's: the policy of
// its files, no content sniffing, no Referer to the sites its links lead to.
func swaggerHeaders(h http.Header) {
	h.Set("Content-Security-Policy", swaggerAssetPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// swaggerPage is Swagger UI's page and its policy.
type swaggerPage struct {
	body   []byte
	policy string
}

var (
	inlineScriptRE = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	inlineStyleRE  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	styleAttrRE    = regexp.MustCompile(`\sstyle="([^"]*)"`)
)

// renderSwaggerPage renders the page through echo-swagger's handler ui and makes its policy: scripts
// from /swagger/ and the inline ones of the page, styles likewise (its style attributes by
// 'unsafe-hashes', which allows those attribute values only), images from /swagger/ and data: URLs
// (Swagger UI's icons), and requests to this origin only (the documents, Try it out).
func renderSwaggerPage(ui echo.HandlerFunc) (swaggerPage, error) {
	req, err := http.NewRequest(http.MethodGet, "/swagger/index.html", nil)
	if err != nil {
		return swaggerPage{}, err
	}
	req.RequestURI = "/swagger/index.html"
	w := &bufferWriter{header: http.Header{}}
	if err := ui(echo.New().NewContext(req, w)); err != nil {
		return swaggerPage{}, err
	}
	if w.status != http.StatusOK {
		return swaggerPage{}, fmt.Errorf("swagger UI's page: status %d", w.status)
	}
	page := w.body.Bytes()
	hashes := func(re *regexp.Regexp) string {
		var b strings.Builder
		for _, m := range re.FindAllSubmatch(page, -1) {
			sum := sha256.Sum256(m[1])
			b.WriteString(" 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'")
		}
		return b.String()
	}
	scripts, styles, attrs := hashes(inlineScriptRE), hashes(inlineStyleRE), hashes(styleAttrRE)
	if attrs != "" {
		attrs = " 'unsafe-hashes'" + attrs
	}
	policy := "default-src 'none'; script-src 'self'" + scripts + "; style-src 'self'" + styles + attrs +
		"; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return swaggerPage{body: page, policy: policy}, nil
}

// serve sends the page with its policy.
func (p swaggerPage) serve(c echo.Context) error {
	swaggerHeaders(c.Response().Header())
	c.Response().Header().Set("Content-Security-Policy", p.policy)
	return c.HTMLBlob(http.StatusOK, p.body)
}

// bufferWriter is an http.ResponseWriter that keeps the answer in memory.
type bufferWriter struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (w *bufferWriter) Header() http.Header { return w.header }
func (w *bufferWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *bufferWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
