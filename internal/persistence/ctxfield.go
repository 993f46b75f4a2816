package persistence

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// Context fields in SQL (docs/operators.md, "Find" and "Correlate"): GET /v1/instances filters on
// scalar fields of instances' contexts, a definition's `index` makes such filters use an index,
// and its `keys` are unique among its running instances. All three compare one SQL expression per
// field and kind, written here once for each dialect, so that a query and the index built for it
// name the same expression (a database uses an expression index only for its exact expression).

// CtxField is a scalar field of a context: its path and its declared kind (String, Int, Float,
// Bool, Time or Duration).
type CtxField struct {
	Path []string
	Kind schema.Kind
}

// CtxFilter compares a context field with a value: Op is one of = > >= < <=; Value is typed by
// the field's kind: string (String), int64 (Int), float64 (Float), bool, time.Time, time.Duration.
type CtxFilter struct {
	Field CtxField
	Op    string
	Value any
}

// ctxOps are the comparisons a filter may make.
var ctxOps = map[string]bool{"=": true, ">": true, ">=": true, "<": true, "<=": true}

// timeKeyOffset makes the seconds of any time RFC 3339 can write (from year 0000, with an offset)
// positive, so that SQLite's key of a time (ctxExpr) sorts as the times do.
const timeKeyOffset = 100_000_000_000

// ctxExpr is the SQL expression of a field's value in the instances' context column, of the type
// its kind compares as: text for strings and durations (fsmd writes a duration in Go's one form),
// numbers, booleans, and for times an instant to the microsecond (a finer part is cut), compared
// as instants and not as the RFC 3339 text they are stored as (whose fractions and offsets vary in
// width). A value of another JSON type (left by an older version of the definition) is NULL, which
// no filter matches, rather than an error that a cast would raise in an index. A JSON null (an
// optional field without a value) is NULL as well: no filter matches it, and a key that is null is
// left out of its unique index (keyPredicate), so that instances without one never clash.
func ctxExpr(d Dialect, f CtxField) string {
	if d == Postgres {
		path := "'{" + strings.Join(f.Path, ",") + "}'" // names are letters, digits and _ (machine's rule)
		switch f.Kind {
		case schema.Int, schema.Float:
			return "(CASE WHEN jsonb_typeof(context #> " + path + ") = 'number' THEN (context #>> " + path + ")::numeric END)"
		case schema.Bool:
			return "(CASE WHEN jsonb_typeof(context #> " + path + ") = 'boolean' THEN (context #>> " + path + ") = 'true' END)"
		case schema.Time:
			// fsmd_ctx_time (migrations/postgres/013_find.sql) is an IMMUTABLE wrapper of the cast to
			// timestamptz, which PostgreSQL marks STABLE and so refuses in an index.
			return "fsmd_ctx_time(context #>> " + path + ")"
		}
		return "(context #>> " + path + ")"
	}
	path := "'$." + strings.Join(f.Path, ".") + "'"
	val, typ := "json_extract(context, "+path+")", "json_type(context, "+path+")"
	switch f.Kind {
	case schema.Int, schema.Float:
		return "(CASE WHEN " + typ + " IN ('integer', 'real') THEN " + val + " END)"
	case schema.Bool:
		return "(CASE " + typ + " WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
	case schema.Time:
		// SQLite keeps times to the millisecond: the key is the seconds since the epoch (offset to be
		// positive, at a fixed width) and the fraction's first six digits, as text that sorts as
		// the instants do. The fraction is what follows the seconds up to the offset (Z or ±hh:mm).
		local := "substr(" + val + ", 1, length(" + val + ") - CASE WHEN substr(" + val + ", -1) = 'Z' THEN 1 ELSE 6 END)"
		secs := "strftime('%s', " + val + ")"
		return "(CASE WHEN " + typ + " = 'text' AND " + secs + " IS NOT NULL THEN printf('%012d', " + secs + " + " +
			fmt.Sprint(timeKeyOffset) + ") || substr(substr(" + local + ", 21) || '000000', 1, 6) END)"
	}
	return val
}

// ctxArg is a filter's value as an argument compared with ctxExpr.
func ctxArg(d Dialect, kind schema.Kind, v any) any {
	switch x := v.(type) {
	case time.Time:
		x = x.UTC().Truncate(time.Microsecond)
		if d == SQLite {
			return fmt.Sprintf("%012d%06d", x.Unix()+timeKeyOffset, x.Nanosecond()/1000)
		}
		return x
	case time.Duration:
		return x.String()
	case bool:
		if d == SQLite {
			if x {
				return 1
			}
			return 0
		}
		return x
	}
	return v
}

// ctxZero is the SQL of the zero value of a kind, as ctxExpr compares it: a key with this value is
// no key (an instance created without one), and is not unique.
func ctxZero(d Dialect, kind schema.Kind) string {
	switch kind {
	case schema.Int, schema.Float:
		return "0"
	case schema.Bool:
		if d == SQLite {
			return "0"
		}
		return "false"
	case schema.Time:
		if d == SQLite {
			return "'" + ctxArg(d, kind, time.Time{}).(string) + "'"
		}
		return "fsmd_ctx_time('0001-01-01T00:00:00Z')"
	case schema.Duration:
		return "'0s'"
	}
	return "''"
}

// ctxCondition is the SQL condition of a filter, with its argument.
func ctxCondition(d Dialect, f CtxFilter) (string, any, error) {
	if !ctxOps[f.Op] {
		return "", nil, fmt.Errorf("persistence: no comparison %q", f.Op)
	}
	return ctxExpr(d, f.Field) + " " + f.Op + " ?", ctxArg(d, f.Field.Kind, f.Value), nil
}

// quoteLiteral is s as an SQL string literal. A definition's name is written into the partial
// indexes' predicates and into the queries that must match them as a literal: a database proves
// that a query's condition implies an index's predicate from literals, not from parameters.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// definitionIs is the condition that selects one definition's instances, as the indexes name it.
func definitionIs(definition string) string { return "definition = " + quoteLiteral(definition) }

// keyPredicate is the predicate of a key's unique index, which a lookup by key repeats word for
// word: the running instances of the definition whose key is set.
func keyPredicate(d Dialect, definition string, f CtxField) string {
	return definitionIs(definition) + " AND NOT final AND " + ctxExpr(d, f) + " <> " + ctxZero(d, f.Kind)
}

// Index names are derived from what they index, so that registering a definition again finds its
// indexes made (CREATE INDEX IF NOT EXISTS), every process names them alike, and a field whose
// kind changes gets a new index (its expression changed). The readable part is cut to fit
// PostgreSQL's 63 characters; the hash tells apart what the cut makes alike.

// FindIndexName is the name of the index of a definition's `index` field.
func FindIndexName(definition string, f CtxField) string {
	return indexName("fsmd_find_", definition, f)
}

// KeyIndexName is the name of the unique index of a definition's key.
func KeyIndexName(definition string, f CtxField) string { return indexName("fsmd_key_", definition, f) }

func indexName(prefix, definition string, f CtxField) string {
	sum := sha256.Sum256([]byte(prefix + "\x00" + definition + "\x00" + strings.Join(f.Path, ".") + "\x00" + f.Kind.String()))
	readable := definition + "_" + strings.Join(f.Path, "_")
	const maxReadable = 63 - len("fsmd_find_") - 1 - 12
	if len(readable) > maxReadable {
		readable = readable[:maxReadable]
	}
	return strings.ToLower(prefix + readable + "_" + hex.EncodeToString(sum[:])[:12])
}
