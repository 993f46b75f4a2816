package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/service"
)

// jsonTypes are the content types of a JSON body.
var jsonTypes = []string{"application/json"}

// yamlTypes are the content types PUT /v1/definitions/{name} accepts: YAML has no registered type
// and each of these is in use. Not text/plain: any web page may send it to any site (crosssite.go).
var yamlTypes = []string{"application/yaml", "application/x-yaml", "text/yaml"}

// checkContentType refuses a body whose Content-Type is not one of want (415). A charset other than
// UTF-8 is refused too: the body is read as UTF-8.
func checkContentType(c echo.Context, want []string) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "" {
		return &requestError{code.UnsupportedMediaType, fmt.Sprintf("Content-Type is missing: send %s", strings.Join(want, " or "))}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return &requestError{code.UnsupportedMediaType, fmt.Sprintf("Content-Type %q cannot be parsed: %v", ct, err)}
	}
	if !slices.Contains(want, mt) {
		return &requestError{code.UnsupportedMediaType, fmt.Sprintf("Content-Type %s is not accepted here: send %s", mt, strings.Join(want, " or "))}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &requestError{code.UnsupportedMediaType, fmt.Sprintf("charset %s is not accepted: send UTF-8", cs)}
	}
	return nil
}

// readBody reads the whole body (the body limit middleware bounds it) and refuses an empty one or
// one that is not UTF-8: strings are stored verbatim, and encoding/json would silently replace
// invalid bytes.
func readBody(c echo.Context) ([]byte, error) {
	body, err := readAll(c.Request())
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, tooLarge
		}
		return nil, invalid("reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("the request body is empty")
	}
	if !utf8.Valid(body) {
		return nil, invalid("the request body is not valid UTF-8")
	}
	return body, nil
}

// readAll reads r's body into a buffer of its Content-Length when it gives one, up to maxPrealloc
// (io.ReadAll would grow its buffer again and again); net/http ends the body at that length, and
// the body limit middleware bounds it.
func readAll(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 || r.ContentLength > maxPrealloc {
		return io.ReadAll(r.Body)
	}
	b := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, b)
	return b[:n], err
}

// maxPrealloc bounds the buffer a request's Content-Length makes readAll allocate before any byte
// has come; a longer body is read as it comes.
const maxPrealloc = 64 << 10

// decodeBody reads the body into v (a pointer to a struct) strictly: application/json, one JSON
// object, no field that v does not have (matched exactly, where encoding/json would ignore case), no
// key twice in any object at any depth, nothing after the object (checkBody). Numbers are
// json.Number, so that large integers keep every digit; the schema package takes them as they are.
func decodeBody(c echo.Context, v any) error {
	if err := checkContentType(c, jsonTypes); err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if fields := jsonFields(v); !quickCheck(body, fields) { // decode_quick.go: most bodies need no more
		if err := checkBody(body, fields); err != nil {
			return err
		}
	}
	if ev, ok := v.(*service.SendEvent); ok && quickEvent(body, ev) { // decode_event.go
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	return nil
}

// maxDepth is how deep a body may nest: the top-level object is level 1.
const maxDepth = schema.MaxDepth

// frame is an object or a list that checkBody is inside.
type frame struct {
	keys   map[string]bool // an object's keys so far; nil for a list
	key    string          // an object's current key
	index  int             // a list's current index
	getKey bool            // an object expects a key (or its end) next
}

// checkBody walks every token of body once, without recursion: an object whose top-level keys are
// all in fields, no object (a payload's, a context's, one nested in an `any` value) with a key twice,
// nothing nested deeper than maxDepth, nothing after the object. encoding/json would keep the last of
// two equal keys silently, and each level of nesting costs the walks after it a stack frame.
func checkBody(body []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return invalid("the request body must be a JSON object")
	}
	stack := []frame{{keys: make(map[string]bool, len(fields)), getKey: true}}
	for len(stack) > 0 {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		top := &stack[len(stack)-1]
		// encoding/json decodes a lone surrogate escape as U+FFFD: only such strings need a look at
		// their text.
		if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) {
			if esc := loneSurrogate(body[start:dec.InputOffset()]); esc != "" {
				what, at := "the string at", bodyPath(stack)
				if top.getKey {
					what, at = "a key of", bodyPath(stack[:len(stack)-1])
				}
				if at == "" {
					what, at = "a field name of", "the body"
				}
				return invalid("%s %s holds %s, half of a UTF-16 surrogate pair, alone: not a character", what, at, esc)
			}
		}
		if top.getKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueDone(stack)
				continue
			}
			key, _ := tok.(string) // where a key is due, the decoder gives only string keys
			if len(stack) == 1 && !slices.Contains(fields, key) {
				return invalid("unknown field %q (the fields are: %s)", key, strings.Join(fields, ", "))
			}
			if top.keys[key] {
				if len(stack) == 1 {
					return invalid("field %q is given twice", key)
				}
				return invalid("key %q is given twice in %s", key, bodyPath(stack[:len(stack)-1]))
			}
			top.keys[key], top.key, top.getKey = true, key, false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxDepth {
				return invalid("the body nests deeper than %d levels, at %s", maxDepth, bodyPath(stack))
			}
			f := frame{}
			if tok == json.Delim('{') {
				f.keys, f.getKey = map[string]bool{}, true
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone(stack)
		default:
			valueDone(stack)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("unexpected data after the JSON object")
	}
	return nil
}

// loneSurrogate returns the first escape in the JSON text of a string (with what precedes it since
// the token before: white space, a comma or a colon, none of them a backslash) that is half of a
// UTF-16 surrogate pair without its other half, "" when there is none. The text is valid JSON: an
// escape \u has four hex digits.
func loneSurrogate(text []byte) string {
	for i := 0; i < len(text); i++ {
		if text[i] != '\\' {
			continue
		}
		i++ // the escaped character: \\ and \" are skipped whole
		if text[i] != 'u' {
			continue
		}
		esc := string(text[i-1 : i+5])
		r, _ := strconv.ParseUint(esc[2:], 16, 16)
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff: // a low half first
			return esc
		case r >= 0xd800 && r <= 0xdbff: // a high half: a low one must follow
			if i+6 < len(text) && text[i+1] == '\\' && text[i+2] == 'u' {
				if lo, _ := strconv.ParseUint(string(text[i+3:i+7]), 16, 16); lo >= 0xdc00 && lo <= 0xdfff {
					i += 6
					continue
				}
			}
			return esc
		}
	}
	return ""
}

// valueDone moves the innermost open object or list past the value that just ended.
func valueDone(stack []frame) {
	if len(stack) == 0 {
		return
	}
	top := &stack[len(stack)-1]
	if top.keys != nil {
		top.getKey = true
	} else {
		top.index++
	}
}

// bodyPath names where in the body the innermost value of stack is, as the schema package names
// paths: payload.meta.tags[2].
func bodyPath(stack []frame) string {
	var b strings.Builder
	for i, f := range stack {
		switch {
		case f.keys != nil:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		default:
			fmt.Fprintf(&b, "[%d]", f.index)
		}
	}
	return b.String()
}

// jsonFields lists the JSON names of the fields of the struct v points to, worked out once per type.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	if names, ok := fieldNames.Load(t); ok {
		return names.([]string)
	}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	fieldNames.Store(t, names)
	return names
}

// fieldNames caches jsonFields by type: the request types are a handful.
var fieldNames sync.Map

// jsonError words a decoding error for the client.
func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return tooLarge
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("malformed JSON: the body ends early")
	case errors.As(err, &syn):
		return invalid("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ) && typ.Field != "":
		return invalid("field %q: expected %s, got %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.As(err, &typ):
		return invalid("expected %s, got %s", jsonKind(typ.Type), typ.Value)
	}
	return invalid("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type as JSON would.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}
