package apidoc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// swagger2 is a Swagger 2.0 document as swag writes one: an operation producing JSON and problems,
// a YAML body typed string, a field of any type.
const swagger2 = `{
  "swagger": "2.0", "info": {"title": "t", "version": "1"}, "basePath": "/",
  "paths": {"/things/{name}": {"put": {
    "consumes": ["application/yaml", "text/plain"],
    "produces": ["application/json", "application/problem+json"],
    "parameters": [
      {"in": "path", "name": "name", "required": true, "type": "string"},
      {"in": "body", "name": "thing", "required": true, "schema": {"type": "string"}}
    ],
    "responses": {
      "200": {"description": "ok", "schema": {"$ref": "#/definitions/Thing"}},
      "422": {"description": "no", "schema": {"$ref": "#/definitions/Problem"}}
    }
  }}},
  "definitions": {
    "Thing": {"type": "object", "properties": {"values": {"type": "object", "additionalProperties": {}}}},
    "Problem": {"type": "object", "properties": {"code": {"type": "string"}}}
  }
}`

func TestFromSwagger(t *testing.T) {
	t.Parallel()
	out, err := FromSwagger([]byte(swagger2))
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Type                 string
		Format               string
		Nullable             bool
		Properties           map[string]*schema
		AdditionalProperties *schema
	}
	type media map[string]struct{ Schema schema }
	var doc struct {
		OpenAPI string
		Paths   map[string]map[string]struct {
			RequestBody struct{ Content media }
			Responses   map[string]struct{ Content media }
		}
		Components struct{ Schemas map[string]schema }
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	put := doc.Paths["/things/{name}"]["put"]
	types := func(m media) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	// Each answer its own content type.
	if got := types(put.Responses["200"].Content); !slices.Equal(got, []string{"application/json"}) {
		t.Errorf("200: %v, want application/json only", got)
	}
	if got := types(put.Responses["422"].Content); !slices.Equal(got, []string{"application/problem+json"}) {
		t.Errorf("422: %v, want application/problem+json only", got)
	}
	// The YAML body is the file as it is; text/plain stays a string.
	if s := put.RequestBody.Content["application/yaml"].Schema; s.Type != "string" || s.Format != "binary" {
		t.Errorf("application/yaml body: %+v, want a binary string", s)
	}
	if s := put.RequestBody.Content["text/plain"].Schema; s.Type != "string" || s.Format != "" {
		t.Errorf("text/plain body: %+v, want a string", s)
	}
	// A value of any type may be null.
	values := doc.Components.Schemas["Thing"].Properties["values"]
	if values == nil || values.AdditionalProperties == nil || !values.AdditionalProperties.Nullable {
		t.Errorf("Thing.values: %+v, want values of any type, null included", values)
	}
}

// TestFromSwaggerRefuses: an error answer that is not said to be a problem is the annotations'
// mistake, and fails the generation rather than the document.
func TestFromSwaggerRefuses(t *testing.T) {
	t.Parallel()
	doc := strings.Replace(swagger2, `"produces": ["application/json", "application/problem+json"]`, `"produces": ["application/json"]`, 1)
	if _, err := FromSwagger([]byte(doc)); err == nil || !strings.Contains(err.Error(), "application/problem+json") {
		t.Errorf("err %v, want one about application/problem+json", err)
	}
}

// TestNDJSONLines: an NDJSON answer is typed as the array of its page's items, the JSON answer
// keeps its page.
func TestNDJSONLines(t *testing.T) {
	t.Parallel()
	const doc2 = `{
  "swagger": "2.0", "info": {"title": "t", "version": "1"}, "basePath": "/",
  "paths": {"/things": {"get": {
    "produces": ["application/json", "application/x-ndjson", "application/problem+json"],
    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Page"}},
      "400": {"description": "no", "schema": {"$ref": "#/definitions/Problem"}}}
  }}},
  "definitions": {
    "Page": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/Thing"}}, "next": {"type": "string"}}},
    "Thing": {"type": "object", "properties": {"n": {"type": "integer"}}},
    "Problem": {"type": "object", "properties": {"code": {"type": "string"}}}
  }
}`
	out, err := FromSwagger([]byte(doc2))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref   string `json:"$ref"`
						Type  string
						Items struct {
							Ref string `json:"$ref"`
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	content := doc.Paths["/things"]["get"].Responses["200"].Content
	if s := content["application/json"].Schema; s.Ref != "#/components/schemas/Page" {
		t.Errorf("application/json: %+v, want the page", s)
	}
	if s := content["application/x-ndjson"].Schema; s.Type != "array" || s.Items.Ref != "#/components/schemas/Thing" {
		t.Errorf("application/x-ndjson: %+v, want an array of Thing", s)
	}

	// A stream that is not a page's items is refused.
	bad := strings.Replace(doc2, `"$ref": "#/definitions/Page"}}`, `"$ref": "#/definitions/Thing"}}`, 1)
	if _, err := FromSwagger([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a page") {
		t.Errorf("a stream of a non-page: %v", err)
	}
}
