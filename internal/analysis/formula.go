package analysis

// formula is a guard in negation normal form: negations are pushed down to the literals (an atom or
// its negation), and whatever the analysis does not understand is one leaf, its own negation:
// unknown when it cannot fail (a comparison of two fields of one kind), opaque when it may (a call,
// arithmetic).
type formula struct {
	kind fkind
	lit  int        // fLit: index into analyzer.lits
	sub  []*formula // fAnd, fOr
}

type fkind uint8

const (
	fTrue fkind = iota
	fFalse
	fOpaque  // may be true or false, or fail
	fUnknown // may be true or false, never fails
	fLit
	fAnd
	fOr
)

var (
	trueF    = &formula{kind: fTrue}
	falseF   = &formula{kind: fFalse}
	opaqueF  = &formula{kind: fOpaque}
	unknownF = &formula{kind: fUnknown}
)

func and(fs ...*formula) *formula { return join(fAnd, fs) }
func or(fs ...*formula) *formula  { return join(fOr, fs) }

// join builds a conjunction or disjunction, folding constants and flattening nested ones of its kind.
// x && true is x; false && x is false; but x && false is not quite false: x is evaluated first and
// may fail, which the definite reading (evaluates) must see, so the operands before a decisive
// constant stay.
func join(k fkind, fs []*formula) *formula {
	unit, zero := trueF, falseF
	if k == fOr {
		unit, zero = falseF, trueF
	}
	var sub []*formula
	for _, f := range fs {
		switch {
		case f.kind == zero.kind:
			if len(sub) == 0 {
				return zero
			}
			return &formula{kind: k, sub: append(sub, zero)}
		case f.kind == unit.kind:
		case f.kind == k:
			sub = append(sub, f.sub...)
		default:
			sub = append(sub, f)
		}
	}
	switch len(sub) {
	case 0:
		return unit
	case 1:
		return sub[0]
	}
	return &formula{kind: k, sub: sub}
}

// vars adds the variables f reads.
func (f *formula) vars(a *analyzer, seen map[int]bool) {
	switch f.kind {
	case fLit:
		seen[a.lits[f.lit].atom.v] = true
	case fAnd, fOr:
		for _, s := range f.sub {
			s.vars(a, seen)
		}
	}
}
