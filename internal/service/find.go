package service

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Find (docs/operators.md, "Find"): GET /v1/instances?definition=NAME&ctx.<path>=<value> filters on
// scalar fields of the instances' contexts, typed by the definition's latest version.

// CtxCondition is one ctx.<path>[op]=value filter as the query gave it; ListInstances types it by
// the definition.
type CtxCondition struct {
	Param string // the query parameter, to name in errors: "ctx.customer.tier", "ctx.amount[gt]"
	Path  string // "customer.tier"
	Op    string // "" (equal), "gt", "gte", "lt" or "lte"
	Value string
}

// MaxCtxConditions bounds the ctx. filters of one request: each is a condition of the query.
const MaxCtxConditions = 16

// maxCtxValue bounds a filter's value, in bytes: a key or a name is short, and a longer value would
// only make the query longer.
const maxCtxValue = 1000

// ctxOps maps a filter's op to its comparison.
var ctxOps = map[string]string{"": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

// ctxFilters types the filters of f by def's context: each path a declared scalar field, each value
// of its type, ranges on int, float and time fields only. The errors name the query parameter.
func ctxFilters(def *machine.Definition, conds []CtxCondition) ([]persistence.CtxFilter, error) {
	if len(conds) > MaxCtxConditions {
		return nil, &BadRequestError{fmt.Sprintf("%d ctx. filters: the most is %d", len(conds), MaxCtxConditions)}
	}
	out := make([]persistence.CtxFilter, 0, len(conds))
	for _, c := range conds {
		bad := func(format string, args ...any) error {
			return &BadRequestError{"query parameter " + c.Param + ": " + fmt.Sprintf(format, args...)}
		}
		op, ok := ctxOps[c.Op]
		if !ok {
			return nil, bad("unknown comparison [%s] (the comparisons are [gt], [gte], [lt] and [lte]; none for equal)", c.Op)
		}
		kind, err := def.ScalarField(c.Path)
		if err != nil {
			return nil, bad("%v", err)
		}
		if op != "=" && kind != schema.Int && kind != schema.Float && kind != schema.Time {
			return nil, bad("[%s] compares int, float and time fields; %s is a %s", c.Op, c.Path, kind)
		}
		v, err := ctxValue(kind, c.Value)
		if err != nil {
			return nil, bad("%v", err)
		}
		out = append(out, persistence.CtxFilter{Field: persistence.CtxField{Path: strings.Split(c.Path, "."), Kind: kind}, Op: op, Value: v})
	}
	return out, nil
}

// ctxValue reads a filter's value as its field's kind.
func ctxValue(kind schema.Kind, s string) (any, error) {
	if len(s) > maxCtxValue || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return nil, fmt.Errorf("a value is at most %d bytes of UTF-8 text without a NUL character", maxCtxValue)
	}
	switch kind {
	case schema.Int:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int (a whole number from -9223372036854775808 to 9223372036854775807)", s)
		}
		return v, nil
	case schema.Float:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%q is not a finite float", s)
		}
		return v, nil
	case schema.Bool:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a bool (true or false)", s)
	case schema.Time:
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a time (RFC 3339, e.g. 2026-01-02T15:04:05Z; a + in a query is written %%2B)", s)
		}
		return v, nil
	case schema.Duration:
		v, err := schema.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (e.g. 90m, 72h, 3d)", s)
		}
		return v, nil
	}
	return s, nil
}

// ctxField is a definition's key or index field as persistence names it.
func ctxField(f *machine.FieldRef) persistence.CtxField {
	return persistence.CtxField{Path: f.Path, Kind: f.Kind}
}

// ctxIndexes are the indexes def's `index` and `keys` declare.
func ctxIndexes(def *machine.Definition) persistence.CtxIndexes {
	ix := persistence.CtxIndexes{Definition: def.Name}
	for _, f := range def.Index {
		ix.Find = append(ix.Find, ctxField(f))
	}
	for _, f := range def.Keys {
		ix.Keys = append(ix.Keys, ctxField(f))
	}
	return ix
}

// findFilters types f's ctx. filters by the latest version of f.Definition, which they need.
func (s *Service) findFilters(f InstanceFilter) ([]persistence.CtxFilter, error) {
	if len(f.Ctx) == 0 {
		return nil, nil
	}
	if f.Definition == "" {
		return nil, &BadRequestError{"query parameter definition is required with a ctx. filter: the definition's context types it"}
	}
	def, _, err := s.reg.get(f.Definition, 0)
	if err != nil {
		return nil, &BadRequestError{fmt.Sprintf("query parameter definition: no definition %q to type the ctx. filters by", f.Definition)}
	}
	return ctxFilters(def, f.Ctx)
}

// fieldNames are the dotted paths of a definition's `keys` or `index`, nil for none.
func fieldNames(refs []*machine.FieldRef) []string {
	var out []string
	for _, f := range refs {
		out = append(out, f.Name)
	}
	return out
}

// ctxFirstBatch is the most rows a list with ctx. filters asks for in its first read (a page of
// the default size, and the row after it).
const ctxFirstBatch = DefaultPageLimit + 1

// ctxBatch is how many rows a read of a list with ctx. filters asks for: the page (up to
// ctxFirstBatch), not readPage's small first batch. Asked for 16 rows, PostgreSQL reckons that it
// meets them soon walking the primary key in id order and filtering, and a range that few
// instances match, clustered in id order (times, with time-ordered ids), then reads most of the
// table: 130 ms over 200,000 instances, where the field's index and a sort of the 600 matches take
// about 1 ms (bench/find). Asked for the page, it weighs the walk at six times as much, and takes
// the index.
// The bytes read stay bounded (persistence stops at maxBytes).
func ctxBatch(filters []persistence.CtxFilter, limit, n int) int {
	if len(filters) == 0 {
		return n
	}
	return max(n, min(clampLimit(limit)+1, ctxFirstBatch))
}
