package analysis

import (
	"math/bits"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// analyzer holds what one handler's guards read: their variables and literals, and the work spent.
type analyzer struct {
	env       Env
	vars      []*variable
	byPath    map[string]int // -1: a path of a type the analysis does not reason about
	stateType *schema.Type   // the type of `state`: one of Env.States
	lits      []literal
	guards    []*formula
	negs      [2][]dnf // the disjunctive normal form of each guard's negation, by mode
	done      [2][]bool
	work      int
	over      bool // a bound was hit: the handler gets no finding
}

func newAnalyzer(env Env) *analyzer {
	return &analyzer{env: env, byPath: map[string]int{}}
}

// The two readings of a formula with unknown parts. possible: true for some truth of the unknown
// parts (unknowns are true, an atom unknown on a cell may hold there); definite: evaluates to true
// whatever they are, without an error (evaluates).
type mode uint8

const (
	possible mode = iota
	definite
)

// bitset is a set of cells of one variable.
type bitset []uint64

// constraint restricts one variable to a set of its cells.
type constraint struct {
	v   int
	set bitset
}

// conj is a conjunction of constraints on distinct variables, sorted by variable; empty is true.
// Sets are never changed once built, so conjunctions share them.
type conj []constraint

// dnf is a disjunction of satisfiable conjunctions; empty is false.
type dnf []conj

var trueDNF = dnf{conj{}}

// dnf expands f for a mode, dropping the conjunctions no cell satisfies. Past the bounds it sets over.
func (a *analyzer) dnf(f *formula, m mode) dnf {
	if m == definite {
		return a.evaluates(f)
	}
	if a.over {
		return nil
	}
	switch f.kind {
	case fTrue, fOpaque, fUnknown: // an unknown part may be true
		return trueDNF
	case fFalse:
		return nil
	case fLit:
		return a.litDNF(f.lit, possible)
	case fOr:
		var out dnf
		for _, sub := range f.sub {
			d := a.dnf(sub, m)
			if len(d) > 0 && len(d[0]) == 0 { // true: the disjunction is true
				return trueDNF
			}
			if out = append(out, d...); len(out) > maxConjuncts {
				a.over = true
				return nil
			}
		}
		return out
	}
	acc := trueDNF
	for _, sub := range f.sub {
		if acc = a.product(acc, a.dnf(sub, m)); len(acc) == 0 {
			return nil
		}
	}
	return acc
}

// evaluates is where f surely evaluates to true, without an error: the definite reading. expr
// evaluates && and || from the left and stops at the first operand that decides, and an error (an
// opaque part may fail, nil compared by order does) ends the evaluation: so x || y surely holds
// where x does, or where x cannot fail and y surely holds. Children keep the order of the source
// through negation normal form (neg keeps it).
func (a *analyzer) evaluates(f *formula) dnf {
	if a.over {
		return nil
	}
	switch f.kind {
	case fTrue:
		return trueDNF
	case fFalse, fOpaque, fUnknown: // an unknown part may be false or fail
		return nil
	case fLit:
		return a.litDNF(f.lit, definite)
	case fOr:
		var out dnf
		before := trueDNF // where the children before this one are surely false
		for _, sub := range f.sub {
			if out = append(out, a.product(before, a.evaluates(sub))...); len(out) > maxConjuncts {
				a.over = true
				return nil
			}
			if before = a.product(before, a.noError(sub)); len(before) == 0 {
				break
			}
		}
		return out
	}
	acc := trueDNF
	for _, sub := range f.sub {
		if acc = a.product(acc, a.evaluates(sub)); len(acc) == 0 {
			return nil
		}
	}
	return acc
}

// noError is where f surely evaluates without an error, to true or false: where each of its parts
// does (a part that is not evaluated cannot fail, so this asks a little more than needed).
func (a *analyzer) noError(f *formula) dnf {
	if a.over {
		return nil
	}
	switch f.kind {
	case fOpaque:
		return nil
	case fLit: // an atom fails, or is decided in expr's own way, on the cells where it is unknown
		v, pos := a.litSet(f.lit&^1, definite)
		_, neg := a.litSet(f.lit|1, definite)
		s := pos.or(neg)
		if s.full(len(a.vars[v].cells)) {
			return trueDNF
		}
		return dnf{conj{{v, s}}}
	case fAnd, fOr:
		acc := trueDNF
		for _, sub := range f.sub {
			if acc = a.product(acc, a.noError(sub)); len(acc) == 0 {
				return nil
			}
		}
		return acc
	}
	return trueDNF
}

// litDNF is a literal in a mode: the cells where it holds, as one constraint.
func (a *analyzer) litDNF(l int, m mode) dnf {
	v, s := a.litSet(l, m)
	switch {
	case s.empty():
		return nil
	case s.full(len(a.vars[v].cells)):
		return trueDNF
	}
	return dnf{conj{{v, s}}}
}

// product is the conjunction of two formulas in disjunctive normal form.
func (a *analyzer) product(x, y dnf) dnf {
	if a.over {
		return nil
	}
	var out dnf
	for _, cx := range x {
		for _, cy := range y {
			if c, ok := a.meet(cx, cy); ok {
				out = append(out, c)
				if len(out) > maxConjuncts {
					a.over = true
					return nil
				}
			}
		}
	}
	return out
}

// meet is the conjunction of two conjunctions, false when a variable is left no cell.
func (a *analyzer) meet(x, y conj) (conj, bool) {
	if len(x) == 0 {
		return y, true
	}
	if len(y) == 0 {
		return x, true
	}
	out := make(conj, 0, len(x)+len(y))
	a.spend(len(x) + len(y))
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		switch {
		case x[i].v < y[j].v:
			out = append(out, x[i])
			i++
		case x[i].v > y[j].v:
			out = append(out, y[j])
			j++
		default:
			s := x[i].set.and(y[j].set)
			a.spend(len(s))
			if s.empty() {
				return nil, false
			}
			out = append(out, constraint{x[i].v, s})
			i, j = i+1, j+1
		}
	}
	out = append(out, x[i:]...)
	return append(out, y[j:]...), !a.over
}

func (a *analyzer) spend(n int) {
	if a.work += n; a.work > maxWork {
		a.over = true
	}
}

// litSet is the set of cells on which a literal holds in a mode.
func (a *analyzer) litSet(l int, m mode) (int, bitset) {
	lit := &a.lits[l]
	v := a.vars[lit.atom.v]
	if lit.sets[m] == nil {
		s := newBitset(len(v.cells))
		for i, c := range v.cells {
			t := lit.atom.eval(c.rep)
			if lit.neg && t != tUnknown {
				t = 1 - t
			}
			if t == tTrue || t == tUnknown && m == possible {
				s.set(i)
			}
		}
		a.spend(len(v.cells))
		lit.sets[m] = s
	}
	return lit.atom.v, lit.sets[m]
}

// neg is the negation of a formula in negation normal form.
func neg(f *formula) *formula {
	switch f.kind {
	case fTrue:
		return falseF
	case fFalse:
		return trueF
	case fLit:
		return &formula{kind: fLit, lit: f.lit ^ 1}
	case fAnd, fOr:
		sub := make([]*formula, len(f.sub))
		for i, s := range f.sub {
			sub[i] = neg(s)
		}
		if f.kind == fAnd {
			return or(sub...)
		}
		return and(sub...)
	}
	return f
}

// negDNF is the disjunctive normal form of the negation of guard j, computed once per mode.
func (a *analyzer) negDNF(j int, m mode) dnf {
	if a.done[m] == nil {
		a.negs[m], a.done[m] = make([]dnf, len(a.guards)), make([]bool, len(a.guards))
	}
	if !a.done[m][j] {
		a.negs[m][j], a.done[m][j] = a.dnf(neg(a.guards[j]), m), true
	}
	return a.negs[m][j]
}

// satisfiable reports whether some input may make g true while the guards of the branches in
// earlier are all false; with the bound hit it answers true, which reports nothing.
func (a *analyzer) satisfiable(g *formula, earlier []int) bool {
	acc := a.dnf(g, possible)
	for _, j := range earlier {
		if len(acc) == 0 {
			break
		}
		acc = a.product(acc, a.negDNF(j, possible))
	}
	return len(acc) > 0 || a.over
}

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (s bitset) set(i int)      { s[i/64] |= 1 << (i % 64) }
func (s bitset) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s bitset) and(t bitset) bitset {
	out := make(bitset, len(s))
	for i := range s {
		out[i] = s[i] & t[i]
	}
	return out
}

func (s bitset) or(t bitset) bitset {
	out := make(bitset, len(s))
	for i := range s {
		out[i] = s[i] | t[i]
	}
	return out
}

func (s bitset) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

func (s bitset) full(n int) bool {
	c := 0
	for _, w := range s {
		c += bits.OnesCount64(w)
	}
	return c == n
}
