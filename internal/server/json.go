package server

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/labstack/echo/v4"
)

// jsonSerializer writes answers as echo's default does, but without HTML escaping: an answer is
// application/json (with nosniff), never HTML, so `<` needs no \u003c. It also keeps a page's
// bytes what service.Page measured against its bound (a payload of `<`s would otherwise grow six
// times on the way out).
type jsonSerializer struct{ echo.DefaultJSONSerializer }

func (jsonSerializer) Serialize(c echo.Context, v any, indent string) error {
	if w, ok := v.(interface{ WriteJSON(io.Writer) error }); ok && indent == "" { // a page: as it was measured
		return w.WriteJSON(c.Response())
	}
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(v)
}

// marshalJSON is json.Marshal as the answers are written: without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
