package schema_test

import (
	"encoding/json"
	"testing"

	"github.com/fsmd-io/fsmd/internal/schema"
)

func TestJSONSchema(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		typ  *schema.Type
		want string
	}{
		{"scalars", schema.ObjectOf(
			&schema.Field{Name: "s", Type: schema.Scalar(schema.String), Required: true},
			&schema.Field{Name: "i", Type: schema.Scalar(schema.Int), Default: 3, HasDefault: true, Required: true},
			&schema.Field{Name: "f", Type: schema.Scalar(schema.Float), Description: "the amount"},
			&schema.Field{Name: "b", Type: schema.Scalar(schema.Bool)},
			&schema.Field{Name: "t", Type: schema.Scalar(schema.Time)},
			&schema.Field{Name: "d", Type: schema.Scalar(schema.Duration)},
			&schema.Field{Name: "a", Type: schema.Scalar(schema.Any)},
		), `{"additionalProperties":false,"properties":{"a":{},"b":{"type":"boolean"},"d":{"type":"string","x-fsmd-type":"duration"},` +
			`"f":{"description":"the amount","type":"number"},"i":{"default":3,"type":"integer"},"s":{"type":"string"},` +
			`"t":{"format":"date-time","type":"string"}},"required":["s"],"type":"object"}`},
		{"nested", schema.ObjectOf(&schema.Field{Name: "lines", Type: schema.ListOf(schema.ObjectOf(
			&schema.Field{Name: "sku", Type: schema.Scalar(schema.String)}))}),
			`{"additionalProperties":false,"properties":{"lines":{"items":{"additionalProperties":false,"properties":{"sku":{"type":"string"}},` +
				`"type":"object"},"type":"array"}},"type":"object"}`},
		{"no fields", schema.ObjectOf(), `{"additionalProperties":false,"properties":{},"type":"object"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.typ.JSONSchema())
			if err != nil || string(b) != tt.want {
				t.Fatalf("got  %s %v\nwant %s", b, err, tt.want)
			}
		})
	}
}
