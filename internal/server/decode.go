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
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// jsonTypes are the content types of a JSON body.
var jsonTypes = []string{"application/json"}

// yamlTypes are the content types PUT /v1/definitions/{name} accepts: YAML has no registered type
// and each of these is in use; text/plain is what curl --data-binary and Swagger UI can send.
var yamlTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "text/plain"}

// checkContentType refuses a body whose Content-Type is not one of want (415). A charset other than
// UTF-8 is refused too: the body is read as UTF-8.
func checkContentType(c echo.Context, want []string) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "" {
		return &requestError{CodeUnsupportedMediaType, fmt.Sprintf("Content-Type is missing: send %s", strings.Join(want, " or "))}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return &requestError{CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %q cannot be parsed: %v", ct, err)}
	}
	if !slices.Contains(want, mt) {
		return &requestError{CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %s is not accepted here: send %s", mt, strings.Join(want, " or "))}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &requestError{CodeUnsupportedMediaType, fmt.Sprintf("charset %s is not accepted: send UTF-8", cs)}
	}
	return nil
}

// readBody reads the whole body (the body limit middleware bounds it) and refuses an empty one or
// one that is not UTF-8: strings are stored verbatim, and encoding/json would silently replace
// invalid bytes.
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
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

// decodeJSON reads the body into v (a pointer to a struct) strictly: application/json, one JSON
// object, no field that v does not have (matched exactly, where encoding/json would ignore case), no
// key twice in any object at any depth, nothing after the object (checkBody). Numbers are
// json.Number, so that large integers keep every digit; the schema package takes them as they are.
func decodeJSON(c echo.Context, v any) error {
	if err := checkContentType(c, jsonTypes); err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if err := checkBody(body, jsonFields(v)); err != nil {
		return err
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
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		top := &stack[len(stack)-1]
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

// jsonFields lists the JSON names of the fields of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
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
	return names
}

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
