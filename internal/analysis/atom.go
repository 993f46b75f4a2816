package analysis

import "math"

// atom is one comparison of a variable with constants.
type atom struct {
	v  int
	op op
	c  any   // the constant (normalized to the variable's kind), or nil
	in []any // opIn: the constants of the list
}

// literal is an atom or its negation: literals come in pairs, 2k the atom k and 2k+1 its negation,
// so that the negation of literal l is l^1.
type literal struct {
	atom *atom
	neg  bool
	sets [2]bitset // by mode; nil until computed
}

type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opIn
	opTruth // a bool field read alone
)

var (
	ops     = map[string]op{"==": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}
	flipped = [...]op{opEq: opEq, opNe: opNe, opLt: opGt, opLe: opGe, opGt: opLt, opGe: opLe}
)

// exact is the magnitude below which every integer is a float64: expr compares an int with a float
// as two float64, which rounds ints beyond it.
const exact = 1 << 53

// atom makes the formula of `v op c` (c a list for opIn), after normalizing the constants to v's
// kind: a comparison the analysis cannot decide cell by cell is opaque, one whose value does not
// depend on v a constant.
func (a *analyzer) atom(v int, o op, c any) *formula {
	x := a.vars[v]
	if o == opIn {
		var in []any
		for _, e := range c.([]any) {
			n, ok, never := normalize(x.kind, e)
			if !ok {
				return opaqueF
			}
			if !never {
				in = append(in, n)
			}
		}
		if len(in) == 0 && !x.optional { // nothing is in []: but nil's lookup is expr's own business
			return falseF
		}
		x.consts = append(x.consts, in...)
		return a.add(&atom{v: v, op: opIn, in: in})
	}
	if o == opTruth {
		return a.add(&atom{v: v, op: opTruth})
	}
	if c == nil {
		switch {
		case o != opEq && o != opNe:
			return opaqueF
		case x.optional:
			return a.add(&atom{v: v, op: o})
		case o == opEq: // a field that is not optional always has a value of its type
			return falseF
		}
		return trueF
	}
	if x.kind == vNilOnly || (o != opEq && o != opNe && x.kind != vInt && x.kind != vFloat) {
		return opaqueF
	}
	n, ok, never := normalize(x.kind, c)
	if !ok {
		return opaqueF
	}
	if never { // an int compared with a fraction
		f := c.(float64)
		switch {
		case (o == opEq || o == opNe) && x.optional: // no int equals it; nil is eval's business
			return a.add(&atom{v: v, op: o, c: f})
		case o == opEq:
			return falseF
		case o == opNe:
			return trueF
		case o == opLt || o == opGe: // x < 2.5 is x < 3
			n = int64(math.Ceil(f))
		default: // x <= 2.5 is x <= 2
			n = int64(math.Floor(f))
		}
	}
	x.consts = append(x.consts, n)
	return a.add(&atom{v: v, op: o, c: n})
}

// normalize converts a constant to a variable's kind: ok is false when the comparison is not one
// the analysis decides (another kind, a float that rounds an int); never is true for a fraction
// compared with an int, which no int equals.
func normalize(k vkind, c any) (n any, ok, never bool) {
	switch k {
	case vInt:
		switch x := c.(type) {
		case int64:
			return x, true, false
		case float64:
			if math.Abs(x) >= exact {
				return nil, false, false
			}
			if x != math.Trunc(x) {
				return nil, true, true
			}
			return int64(x), true, false
		}
	case vFloat:
		switch x := c.(type) {
		case int64:
			return float64(x), true, false // as expr compares them
		case float64:
			return x, true, false
		}
	case vString:
		if s, isString := c.(string); isString {
			return s, true, false
		}
	case vBool:
		if b, isBool := c.(bool); isBool {
			return b, true, false
		}
	}
	return nil, false, false
}

// add registers an atom and returns its positive literal.
func (a *analyzer) add(x *atom) *formula {
	i := len(a.lits)
	a.lits = append(a.lits, literal{atom: x}, literal{atom: x, neg: true})
	return &formula{kind: fLit, lit: i}
}

// tri is a truth value of three: an atom that errors or that expr decides in its own way (nil
// compared by order, nil looked up in a list) is unknown on that cell.
type tri uint8

const (
	tFalse tri = iota
	tTrue
	tUnknown
)

func truth(b bool) tri {
	if b {
		return tTrue
	}
	return tFalse
}

// eval decides an atom on a value of its variable. On nil only == nil and != nil are decided: how
// expr compares nil with a value depends on the static type it gives the field (an error for a
// field typed int, false for one typed any), so that is left unknown.
func (x *atom) eval(rep any) tri {
	if x.c == nil && (x.op == opEq || x.op == opNe) {
		return truth((rep == nil) == (x.op == opEq))
	}
	if rep == nil {
		return tUnknown
	}
	switch x.op {
	case opEq:
		return truth(rep == x.c)
	case opNe:
		return truth(rep != x.c)
	case opIn:
		for _, c := range x.in {
			if rep == c {
				return tTrue
			}
		}
		return tFalse
	case opTruth:
		b, ok := rep.(bool)
		if !ok {
			return tUnknown
		}
		return truth(b)
	}
	d, ok := cmp(rep, x.c)
	if !ok {
		return tUnknown
	}
	switch x.op {
	case opLt:
		return truth(d < 0)
	case opLe:
		return truth(d <= 0)
	case opGt:
		return truth(d > 0)
	}
	return truth(d >= 0)
}

func cmp(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		y, ok := b.(int64)
		return sign(x < y, x > y), ok
	case float64:
		y, ok := b.(float64)
		return sign(x < y, x > y), ok
	}
	return 0, false
}

func sign(lt, gt bool) int {
	switch {
	case lt:
		return -1
	case gt:
		return 1
	}
	return 0
}
