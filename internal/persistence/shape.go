package persistence

import (
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// ContextShape is the top-level shape of a stored context that SQL can check: its fields (no other)
// and the JSON type of each (Kinds: a jsonb_typeof name, "integer" for a number without a fraction,
// or "any"; with " or null" after it, OptionalKind, for an optional field, which also holds null),
// and its size: MaxText bounds the bytes of the context as PostgreSQL writes it out (0
// for none). A rewrite that adds defaults sets it to the context bound less their size, so that SQL
// never moves a context the new one would take past the bound; a context over it is decided by
// the caller, exactly.
type ContextShape struct {
	Fields, Kinds []string
	MaxText       int
}

// orNull ends the kind of an optional field.
const orNull = " or null"

// OptionalKind is the kind of a ContextShape for an optional field of kind: its JSON type, or null.
func OptionalKind(kind string) string { return kind + orNull }

// shapeJoin is joined to the instances a query checks with ContextShape.fails: the shape's field
// names and MaxText, two arguments (joinArgs) however many fields it has, which the condition reads
// as shape.names and shape.max_text.
const shapeJoin = `CROSS JOIN (SELECT ?::text[] AS names, ?::integer AS max_text) AS shape`

// joinArgs are the arguments of shapeJoin.
func (c ContextShape) joinArgs() []any { return []any{pq.Array(c.Fields), c.MaxText} }

// jsonTypes are the kinds of a ContextShape and the jsonb_typeof name a value of each has.
var jsonTypes = map[string]string{"string": "string", "integer": "number", "number": "number", "boolean": "boolean",
	"array": "array", "object": "object"}

// fails is an SQL condition on the column context, with shapeJoin joined: true when the context is
// longer than MaxText as text, has a field the shape lacks, or a value of another JSON type. Each
// field is looked up by name (a key lookup in the jsonb, no set-returning function per row: the
// condition is evaluated on every instance a migration or its plan reads), its JSON type compared
// with constants written here from the closed set of kinds; a kind outside it makes every context
// fail (decided by the caller, exactly). (No question mark in it, a regular expression's included:
// the queries are written with ? for their arguments.)
func (c ContextShape) fails() string {
	if len(c.Kinds) != len(c.Fields) {
		return "true"
	}
	var b strings.Builder
	b.WriteString(`(shape.max_text > 0 AND octet_length(context::text) > shape.max_text OR (context - shape.names) <> '{}'::jsonb`)
	for i, kind := range c.Kinds {
		base, nullable := strings.CutSuffix(kind, orNull)
		if base == "any" {
			continue
		}
		typ, ok := jsonTypes[base]
		if !ok {
			return "true"
		}
		field := "shape.names[" + strconv.Itoa(i+1) + "]"
		allowed := "'" + typ + "'"
		if nullable {
			allowed += ", 'null'"
		}
		// A field that is absent has no type: NULL, which coalesce reads as not failing.
		b.WriteString("\n\t\tOR coalesce(jsonb_typeof(context -> " + field + ") NOT IN (" + allowed + "), false)")
		if base == "integer" { // a number whose text has a fraction or an exponent is no int
			b.WriteString(" OR coalesce((context ->> " + field + ") ~ '[.eE]', false)")
		}
	}
	b.WriteString(")")
	return b.String()
}
