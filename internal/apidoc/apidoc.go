// Package apidoc makes fsmd's OpenAPI 3 document from the Swagger 2.0 document that swag generates
// from the annotations of internal/server: kin-openapi's openapi2conv converts it, and exact (the
// one place that edits the result) says what Swagger 2.0 cannot. `make openapi` runs it (gen/) and
// writes api/openapi/openapi.json, which the server serves at /openapi.json.
//
// The annotations stay the source of everything else: statuses, headers, parameters and their
// bounds, schemas, required and nullable fields, security.
package apidoc

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

// ProblemType is the content type of every error answer (RFC 9457).
const ProblemType = "application/problem+json"

// FromSwagger converts a Swagger 2.0 document (JSON) into the OpenAPI 3 document, checked, as
// indented JSON.
func FromSwagger(swagger2 []byte) ([]byte, error) {
	var doc2 openapi2.T
	if err := json.Unmarshal(swagger2, &doc2); err != nil {
		return nil, fmt.Errorf("reading the Swagger 2.0 document: %w", err)
	}
	doc3, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("converting to OpenAPI 3: %w", err)
	}
	if err := exact(doc3); err != nil {
		return nil, err
	}
	if err := doc3.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI 3 document is not valid: %w", err)
	}
	out, err := json.MarshalIndent(doc3, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// yamlTypes are the YAML media types of a request body (PUT /v1/definitions/{name}).
var yamlTypes = []string{"application/yaml", "application/x-yaml", "text/yaml"}

// exact says in the OpenAPI 3 document what Swagger 2.0, and so swag, cannot; nothing else edits
// the converted document.
//
//   - Content types per response. Swagger 2.0 lists the content types an operation produces once
//     for all its answers (@Produce json,application/problem+json), and the conversion gives each
//     answer all of them. The server sends every error (status 400 and up) as
//     application/problem+json and every success as the other types listed: each answer gets its
//     own.
//   - A body of raw text. swag types a body it cannot describe as a JSON value `string`, and the
//     conversion gives that schema to every content type the operation accepts. Under a YAML type
//     the body is the file as it is, which a validator must not decode (it would find an object
//     where the schema says string): `format: binary` says so. text/plain stays a string, which
//     Swagger UI shows as a text box to paste the YAML into.
//   - A stream of JSON lines. swag gives an NDJSON answer (application/x-ndjson) the schema of the
//     operation's JSON answer, a page ({items, next}); the stream is the page's items, one a line,
//     with no page around them. Its schema becomes an array of the items: OpenAPI 3.0 has no
//     schema for a sequence of documents, and an array of them is what a client collects (and
//     what the tests' conformance harness checks a stream as).
//   - A value of any type may be null. swag gives a field of type any (a context's, a payload's
//     values) the empty schema; OpenAPI 3.0.3 lets it be null, but validators that follow 3.0.0
//     (kin-openapi among them) want `nullable: true` to accept null, and say so.
func exact(doc *openapi3.T) error {
	seen := map[*openapi3.Schema]bool{}
	for _, s := range doc.Components.Schemas {
		anyNullable(s, seen)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Responses == nil {
				continue
			}
			for code, ref := range op.Responses.Map() {
				status, err := strconv.Atoi(code)
				if err != nil || ref.Value == nil || len(ref.Value.Content) == 0 {
					continue
				}
				content := ref.Value.Content
				if status >= 400 {
					problem := content.Get(ProblemType)
					if problem == nil {
						return fmt.Errorf("%s %s: answer %d: no %s in @Produce", method, path, status, ProblemType)
					}
					ref.Value.Content = openapi3.Content{ProblemType: problem}
					continue
				}
				delete(content, ProblemType)
				if len(content) == 0 {
					return fmt.Errorf("%s %s: answer %d: @Produce lists no type but %s", method, path, status, ProblemType)
				}
				if mt := content.Get(NDJSONType); mt != nil {
					if err := ndjsonLines(mt); err != nil {
						return fmt.Errorf("%s %s: answer %d: %w", method, path, status, err)
					}
				}
			}
			rawTextBody(op)
		}
	}
	return nil
}

// NDJSONType is the content type of a stream of JSON lines.
const NDJSONType = "application/x-ndjson"

// ndjsonLines gives an NDJSON answer the schema of its lines: an array of the items of the page
// schema swag gave it.
func ndjsonLines(mt *openapi3.MediaType) error {
	if mt.Schema == nil || mt.Schema.Value == nil {
		return fmt.Errorf("%s has no schema", NDJSONType)
	}
	items := mt.Schema.Value.Properties["items"]
	if items == nil || items.Value == nil || !items.Value.Type.Is("array") || items.Value.Items == nil {
		return fmt.Errorf("%s: the JSON answer is not a page (an object with an array `items`)", NDJSONType)
	}
	lines := openapi3.NewArraySchema()
	lines.Items = items.Value.Items
	lines.Description = "one item a line (application/x-ndjson), shown as an array"
	mt.Schema = openapi3.NewSchemaRef("", lines)
	return nil
}

// rawTextBody marks a body that swag typed `string` as the file it is under the YAML types.
func rawTextBody(op *openapi3.Operation) {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return
	}
	for _, t := range yamlTypes {
		mt := op.RequestBody.Value.Content.Get(t)
		if mt == nil || mt.Schema == nil || mt.Schema.Value == nil || !mt.Schema.Value.Type.Is("string") {
			continue
		}
		binary := *mt.Schema.Value
		binary.Format = "binary"
		op.RequestBody.Value.Content[t] = openapi3.NewMediaType().WithSchema(&binary)
	}
}

// anyNullable marks the schemas of any type in s (s itself and the schemas inside it) nullable.
func anyNullable(s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if s == nil || s.Value == nil || s.Ref != "" || seen[s.Value] {
		return
	}
	v := s.Value
	seen[v] = true
	if v.IsEmpty() {
		v.Nullable = true
		return
	}
	for _, p := range v.Properties {
		anyNullable(p, seen)
	}
	anyNullable(v.Items, seen)
	anyNullable(v.AdditionalProperties.Schema, seen)
	for _, list := range []openapi3.SchemaRefs{v.AllOf, v.AnyOf, v.OneOf} {
		for _, p := range list {
			anyNullable(p, seen)
		}
	}
}
