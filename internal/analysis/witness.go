package analysis

import (
	"slices"
	"strconv"
)

// witness finds an input on which every guard is surely false: the handler is then not exhaustive.
// A branch without a guard (or one whose guard the analysis cannot decide) makes it exhaustive as
// far as the analysis knows.
func (a *analyzer) witness(h Handler, guards []*formula) ([]Binding, bool) {
	for _, b := range h.Branches {
		if b.Guard == "" {
			return nil, false
		}
	}
	if len(guards) == 0 {
		return nil, false
	}
	acc := trueDNF
	for j := range h.Branches {
		if acc = a.product(acc, a.negDNF(j, definite)); len(acc) == 0 || a.over {
			return nil, false
		}
	}
	// The conjunction that constrains fewest variables reads best.
	best := acc[0]
	for _, c := range acc[1:] {
		if len(c) < len(best) {
			best = c
		}
	}
	w := make([]Binding, 0, len(best))
	for _, c := range best {
		w = append(w, a.binding(c))
	}
	slices.SortFunc(w, func(x, y Binding) int {
		if x.Path < y.Path {
			return -1
		}
		if x.Path > y.Path {
			return 1
		}
		return 0
	})
	return w, true
}

// binding picks a value of a constrained variable: a constant the guards name, else any other,
// nil last.
func (a *analyzer) binding(c constraint) Binding {
	v := a.vars[c.v]
	pick := -1
	for rank := 0; rank < 3 && pick < 0; rank++ {
		for i, cl := range v.cells {
			if !c.set.has(i) {
				continue
			}
			if r := cellRank(cl); r == rank {
				pick = i
				break
			}
		}
	}
	rep := v.cells[pick].rep
	if _, ok := rep.(notNil); ok {
		return Binding{Path: v.path, NotNil: true}
	}
	return Binding{Path: v.path, Value: rep}
}

func cellRank(c cell) int {
	switch {
	case c.rep == nil:
		return 2
	case c.point:
		return 0
	}
	return 1
}

// exprLiteral writes a value as in expr.
func exprLiteral(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		return s
	case bool:
		return strconv.FormatBool(x)
	}
	return "?"
}
