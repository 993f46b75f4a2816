package explore

import (
	"math"
	"time"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// Bounds of generation, so that a definition with huge or deeply nested schemas still explores in
// bounded time: each is a count of values or rows, not of work per value.
const (
	maxValuesPerField = 24 // candidate values of one field
	maxRows           = 24 // payloads per event, and values of a nested object
	maxContexts       = 32 // initial contexts
	maxNesting        = 6  // objects and lists deeper than this take their zero value
	maxPairwiseDims   = 12 // more fields than this are varied one at a time, not in pairs
)

// gen makes candidate values, loosely typed as a table or a client writes them (times as RFC 3339,
// durations in Go syntax), so that a sequence found can be written as a case as it is.
type gen struct {
	consts consts
	now    time.Time
}

// values are the candidates for a value of t at path ("event.amount"): the boundaries of its type,
// the constants guards compare path with and their neighbours, every enum value, nil when optional.
func (g *gen) values(t *schema.Type, path string, depth int) []any {
	if depth > maxNesting {
		return []any{schema.Encode(t.Zero())}
	}
	var out []any
	if len(t.Enum) > 0 {
		out = append(out, t.Enum...)
	} else {
		out = g.ofKind(t, path, depth)
	}
	if t.Optional {
		out = append(out, nil)
	}
	return dedup(out, maxValuesPerField)
}

func (g *gen) ofKind(t *schema.Type, path string, depth int) []any {
	cs := g.consts[path]
	switch t.Kind {
	case schema.Int:
		out := []any{0, 1, -1}
		for _, c := range cs {
			if f, ok := number(c); ok && math.Abs(f) < 1<<52 {
				lo, hi := int(math.Floor(f)), int(math.Ceil(f))
				out = append(out, lo-1, lo, hi, hi+1)
			}
		}
		return out
	case schema.Float:
		out := []any{0.0, 0.5, -1.0}
		for _, c := range cs {
			if f, ok := number(c); ok && !math.IsInf(f, 0) {
				out = append(out, f-1, f, f+1)
			}
		}
		return out
	case schema.String:
		out := []any{"", "x"}
		for _, c := range cs {
			if s, ok := c.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case schema.Bool:
		return []any{false, true}
	case schema.Time:
		return []any{g.now.Format(time.RFC3339), g.now.Add(-24 * time.Hour).Format(time.RFC3339), g.now.Add(24 * time.Hour).Format(time.RFC3339)}
	case schema.Duration:
		return []any{"0s", "1h", "24h"}
	case schema.List:
		elems := g.values(t.Elem, path, depth+1)
		return []any{[]any{}, []any{elems[0]}}
	case schema.Object:
		rows := g.object(t, path, depth)
		out := make([]any, len(rows))
		for i, r := range rows {
			out[i] = r
		}
		return out
	}
	return append([]any{nil, "x"}, cs...) // any: untyped
}

// object combines the candidates of t's fields into at most maxRows objects.
func (g *gen) object(t *schema.Type, path string, depth int) []map[string]any {
	dims := make([][]any, len(t.Fields))
	for i, f := range t.Fields {
		dims[i] = g.values(f.Type, path+"."+f.Name, depth+1)
	}
	rows := combine(dims, maxRows)
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		m := make(map[string]any, len(t.Fields))
		for j, f := range t.Fields {
			m[f.Name] = dims[j][r[j]]
		}
		out[i] = m
	}
	return out
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// dedup drops repeated scalars (lists and objects are kept: they are built distinct), keeping the
// first max.
func dedup(vs []any, max int) []any {
	out := vs[:0:0]
	seen := map[any]bool{}
	for _, v := range vs {
		switch v.(type) {
		case []any, map[string]any:
		default:
			if seen[v] {
				continue
			}
			seen[v] = true
		}
		out = append(out, v)
		if len(out) == max {
			break
		}
	}
	return out
}

// combine picks rows of indexes into dims, at most max: every combination when they fit, otherwise
// every pair of values of two fields at least once (a guard usually ties two fields: `event.method
// in [...] && event.amount >= ctx.amount`), and for many fields each value of each field once.
func combine(dims [][]any, max int) [][]int {
	total := 1
	for _, d := range dims {
		if len(d) == 0 {
			return nil
		}
		total *= len(d)
		if total > max {
			break
		}
	}
	switch {
	case total <= max:
		return product(dims)
	case len(dims) == 1:
		return eachChoice(dims, max)
	case len(dims) <= maxPairwiseDims:
		return pairwise(dims, max)
	}
	return eachChoice(dims, max)
}

func product(dims [][]any) [][]int {
	rows := [][]int{make([]int, len(dims))}
	for i := len(dims) - 1; i >= 0; i-- { // the first field varies slowest
		var next [][]int
		for _, r := range rows {
			for v := range dims[i] {
				c := append([]int(nil), r...)
				c[i] = v
				next = append(next, c)
			}
		}
		rows = next
	}
	sortRows(rows)
	return rows
}

func sortRows(rows [][]int) {
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && less(rows[j], rows[j-1]); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

func less(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// eachChoice is the first value of every field, then each other value of each field in turn.
func eachChoice(dims [][]any, max int) [][]int {
	rows := [][]int{make([]int, len(dims))}
	for i, d := range dims {
		for v := 1; v < len(d) && len(rows) < max; v++ {
			r := make([]int, len(dims))
			r[i] = v
			rows = append(rows, r)
		}
	}
	return rows
}

// pairwise covers every pair of values of two fields, greedily: each row starts from a pair not yet
// covered and fills the other fields with the values that cover most new pairs; of the rows grown
// from the first few uncovered pairs, the one covering most is kept.
func pairwise(dims [][]any, max int) [][]int {
	p := newPairs(dims)
	var rows [][]int
	for p.left > 0 && len(rows) < max {
		var best []int
		bestNew := -1
		for _, seed := range p.uncovered(8) {
			for shift := range len(dims) { // each field filled first once: greedy depends on the order
				row := p.grow(seed, shift)
				if n := p.fresh(row); n > bestNew {
					best, bestNew = row, n
				}
			}
		}
		p.cover(best)
		rows = append(rows, best)
	}
	return rows
}

// pairs tracks which pairs of values of two fields some row has: covered[i][j][a*len(dims[j])+b]
// for fields i < j.
type pairs struct {
	dims    [][]any
	covered [][][]bool
	left    int
}

func newPairs(dims [][]any) *pairs {
	p := &pairs{dims: dims, covered: make([][][]bool, len(dims))}
	for i := range dims {
		p.covered[i] = make([][]bool, len(dims))
		for j := i + 1; j < len(dims); j++ {
			p.covered[i][j] = make([]bool, len(dims[i])*len(dims[j]))
			p.left += len(p.covered[i][j])
		}
	}
	return p
}

func (p *pairs) has(i, a, j, b int) bool {
	if i > j {
		i, a, j, b = j, b, i, a
	}
	return p.covered[i][j][a*len(p.dims[j])+b]
}

// uncovered are up to n pairs no row has yet, as {i, a, j, b}, one per two fields.
func (p *pairs) uncovered(n int) [][4]int {
	var out [][4]int
	for i := range p.dims {
		for j := i + 1; j < len(p.dims); j++ {
			for x, c := range p.covered[i][j] {
				if !c { // the first of each two fields: seeds spread over the fields
					out = append(out, [4]int{i, x / len(p.dims[j]), j, x % len(p.dims[j])})
					if len(out) == n {
						return out
					}
					break
				}
			}
		}
	}
	return out
}

// grow makes a row holding seed, each other field at the value that covers most new pairs with
// the fields set before it, filling from field shift on.
func (p *pairs) grow(seed [4]int, shift int) []int {
	row := make([]int, len(p.dims))
	for k := range row {
		row[k] = -1
	}
	row[seed[0]], row[seed[2]] = seed[1], seed[3]
	for o := range row {
		k := (o + shift) % len(row)
		if row[k] >= 0 {
			continue
		}
		best, bestNew, bestOpen := 0, -1, -1
		for v := range p.dims[k] {
			n, open := 0, 0
			for m := range row {
				if m == k {
					continue
				}
				if row[m] >= 0 && !p.has(k, v, m, row[m]) {
					n++
				}
				for b := range p.dims[m] { // ties go to the value with most pairs still to cover
					if !p.has(k, v, m, b) {
						open++
					}
				}
			}
			if n > bestNew || n == bestNew && open > bestOpen {
				best, bestNew, bestOpen = v, n, open
			}
		}
		row[k] = best
	}
	return row
}

// fresh counts the pairs of row no row has yet.
func (p *pairs) fresh(row []int) int {
	n := 0
	for i := range row {
		for j := i + 1; j < len(row); j++ {
			if !p.covered[i][j][row[i]*len(p.dims[j])+row[j]] {
				n++
			}
		}
	}
	return n
}

func (p *pairs) cover(row []int) {
	for i := range row {
		for j := i + 1; j < len(row); j++ {
			if x := row[i]*len(p.dims[j]) + row[j]; !p.covered[i][j][x] {
				p.covered[i][j][x] = true
				p.left--
			}
		}
	}
}
