package analysis

import (
	"math"
	"slices"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// A variable is one field path the guards compare with constants. Its domain is cut into cells: the
// constants it is compared with, the open intervals between them, the values no constant names, and
// nil when it is optional. Every atom has one truth value on a whole cell, so the cells' stand-ins
// (rep) decide every atom for every value, and a formula is a question about finitely many cells.
type variable struct {
	path     string
	kind     vkind
	optional bool
	enum     []any // int64 or string values; nil: no enumeration
	consts   []any // the constants it is compared with (normalized to its kind)
	cells    []cell
}

type vkind uint8

const (
	vInt    vkind = iota
	vFloat        // a finite float64: decoding refuses NaN and the infinities
	vString       // compared for equality only
	vBool
	vNilOnly // an optional time, duration, list or object: only `== nil` and `!= nil` are read
)

type cell struct {
	rep   any  // a value of the cell: int64, float64, string, bool, nil, or notNil
	point bool // the cell is one constant the guards name (a witness prefers those)
}

// notNil stands for the values of a vNilOnly variable that are not nil.
type notNil struct{}

// variable returns the variable of a path of type t, or false when the type is not one the
// analysis reasons about (times, durations, lists, objects, any: unknown).
func (a *analyzer) variable(path string, t *schema.Type) (int, bool) {
	if i, ok := a.byPath[path]; ok {
		return i, i >= 0
	}
	v := &variable{path: path, optional: t.Optional}
	ok := true
	switch t.Kind {
	case schema.Int:
		v.kind = vInt
	case schema.Float:
		v.kind = vFloat
	case schema.String:
		v.kind = vString
	case schema.Bool:
		v.kind = vBool
	default:
		v.kind, ok = vNilOnly, t.Optional
	}
	if len(t.Enum) > 0 && ok {
		v.enum, ok = enumValues(t.Enum, v.kind)
	}
	if !ok {
		a.byPath[path] = -1
		return 0, false
	}
	a.byPath[path] = len(a.vars)
	a.vars = append(a.vars, v)
	return len(a.vars) - 1, true
}

// enumValues converts an enumeration to the variable's kind; one value of another kind makes the
// type one the analysis does not trust.
func enumValues(enum []any, k vkind) ([]any, bool) {
	out := make([]any, 0, len(enum))
	for _, e := range enum {
		switch x := e.(type) {
		case string:
			if k != vString {
				return nil, false
			}
			out = append(out, x)
		case int:
			if k != vInt {
				return nil, false
			}
			out = append(out, int64(x))
		case int64:
			if k != vInt {
				return nil, false
			}
			out = append(out, x)
		default:
			return nil, false
		}
	}
	return out, true
}

// cells cuts the domain of every variable once all the handler's guards are read.
func (a *analyzer) cells() {
	for _, v := range a.vars {
		switch v.kind {
		case vInt:
			v.cells = intCells(sortedInts(v.consts), sortedInts(v.enum), v.enum != nil)
		case vFloat:
			v.cells = floatCells(v.consts)
		case vString:
			v.cells = stringCells(v.consts, v.enum)
		case vBool:
			v.cells = []cell{{false, true}, {true, true}}
		case vNilOnly:
			v.cells = []cell{{notNil{}, false}}
		}
		if v.optional {
			v.cells = append(v.cells, cell{nil, true})
		}
		if len(v.cells) > maxCells {
			a.over = true
		}
	}
}

func sortedInts(xs []any) []int64 {
	out := make([]int64, 0, len(xs))
	for _, x := range xs {
		out = append(out, x.(int64))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// intCells: each constant, and each gap between them that holds an int (of the enumeration, when
// there is one).
func intCells(cs, enum []int64, isEnum bool) []cell {
	var out []cell
	// gap adds a value strictly between lo and hi (bounded by the flags), if there is one.
	gap := func(lo int64, hasLo bool, hi int64, hasHi bool) {
		if isEnum {
			i := 0
			if hasLo {
				i, _ = slices.BinarySearch(enum, lo)
				for i < len(enum) && enum[i] <= lo {
					i++
				}
			}
			if i < len(enum) && (!hasHi || enum[i] < hi) {
				out = append(out, cell{enum[i], false})
			}
			return
		}
		switch {
		case !hasLo && !hasHi:
			out = append(out, cell{int64(0), false})
		case !hasLo:
			if hi > math.MinInt64 {
				out = append(out, cell{hi - 1, false})
			}
		case lo < math.MaxInt64 && (!hasHi || lo+1 < hi):
			out = append(out, cell{lo + 1, false})
		}
	}
	for i, c := range cs {
		gap(prevInt(cs, i), i > 0, c, true)
		if _, found := slices.BinarySearch(enum, c); found || !isEnum {
			out = append(out, cell{c, true})
		}
	}
	gap(prevInt(cs, len(cs)), len(cs) > 0, 0, false)
	return out
}

func prevInt(cs []int64, i int) int64 {
	if i == 0 {
		return 0
	}
	return cs[i-1]
}

// floatCells: each constant, and a finite float64 in each gap between them that holds one.
func floatCells(consts []any) []cell {
	cs := make([]float64, 0, len(consts))
	for _, c := range consts {
		cs = append(cs, c.(float64))
	}
	slices.Sort(cs)
	cs = slices.CompactFunc(cs, func(x, y float64) bool { return x == y }) // -0 == 0
	if len(cs) == 0 {
		return []cell{{0.0, false}}
	}
	var out []cell
	if lo := math.Nextafter(cs[0], math.Inf(-1)); !math.IsInf(lo, 0) {
		out = append(out, cell{roundDown(cs[0]), false})
	}
	for i, c := range cs {
		out = append(out, cell{c, true})
		if i+1 < len(cs) {
			if m, ok := between(c, cs[i+1]); ok {
				out = append(out, cell{m, false})
			}
		}
	}
	if hi := math.Nextafter(cs[len(cs)-1], math.Inf(1)); !math.IsInf(hi, 0) {
		out = append(out, cell{roundUp(cs[len(cs)-1]), false})
	}
	return out
}

// roundDown is a readable finite float below c: c-1 where that differs from c.
func roundDown(c float64) float64 {
	if d := math.Floor(c) - 1; d < c && !math.IsInf(d, 0) {
		return d
	}
	return math.Nextafter(c, math.Inf(-1))
}

func roundUp(c float64) float64 {
	if d := math.Floor(c) + 1; d > c && !math.IsInf(d, 0) {
		return d
	}
	return math.Nextafter(c, math.Inf(1))
}

// between returns a float64 strictly between lo and hi, a whole or half number where there is one.
func between(lo, hi float64) (float64, bool) {
	if d := math.Floor(lo) + 1; d < hi {
		return d, true
	}
	if m := lo/2 + hi/2; lo < m && m < hi {
		return m, true
	}
	if m := math.Nextafter(lo, hi); m < hi {
		return m, true
	}
	return 0, false
}

// stringCells: each constant, and the strings no constant names (of the enumeration, when there is
// one): an enumeration of 10,000 values costs one pass, not 10,000 cells.
func stringCells(consts, enum []any) []cell {
	named := make(map[string]bool, len(consts))
	var out []cell
	inEnum := map[string]bool(nil)
	if enum != nil {
		inEnum = make(map[string]bool, len(enum))
		for _, e := range enum {
			inEnum[e.(string)] = true
		}
	}
	for _, c := range consts {
		s := c.(string)
		if named[s] {
			continue
		}
		named[s] = true
		if inEnum == nil || inEnum[s] {
			out = append(out, cell{s, true})
		}
	}
	if enum != nil {
		for _, e := range enum {
			if !named[e.(string)] {
				return append(out, cell{e.(string), false})
			}
		}
		return out
	}
	return append(out, cell{freshString(named), false})
}

// freshString is a string no constant names: "" when it is free, as the zero value reads best.
func freshString(named map[string]bool) string {
	s := ""
	for named[s] {
		s += "x"
	}
	return s
}
