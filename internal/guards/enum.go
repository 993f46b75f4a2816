package guards

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// maxListed bounds how many of an enumeration's values an error lists.
const maxListed = 10

// listEnum lists the values of an enumeration, the first maxListed of them.
func listEnum(t *schema.Type) string {
	var b strings.Builder
	for i, v := range t.Enum {
		if i == maxListed {
			fmt.Fprintf(&b, ", ... (%d more)", len(t.Enum)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(showValue(v))
	}
	return b.String()
}

func showValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// literal is the value of a string or number literal (a negative number is a unary minus): an int
// for a number without fraction, as the values of an int enumeration are.
func literal(n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.FloatNode:
		if n.Value == math.Trunc(n.Value) && math.Abs(n.Value) < 1<<53 {
			return int(n.Value), true
		}
		return n.Value, true
	case *ast.UnaryNode:
		if n.Operator != "-" && n.Operator != "+" {
			return nil, false
		}
		v, ok := literal(n.Node)
		if !ok || n.Operator == "+" {
			return v, ok
		}
		switch v := v.(type) {
		case int:
			if v == math.MinInt {
				return nil, false
			}
			return -v, true
		case float64:
			return -v, true
		}
	}
	return nil, false
}

// enumLiteral refuses the literal n where its value goes to an enumeration (want) that does not
// admit it: a `set` of an enum field, an element of a list of them.
func (p *nilPass) enumLiteral(n ast.Node, want *schema.Type) {
	if want == nil || len(want.Enum) == 0 {
		return
	}
	v, ok := literal(n)
	if ok && !want.InEnum(v) {
		p.fail(n, "%s is not a value of the field, which is one of %s", showValue(v), listEnum(want))
	}
}

// enumCompare refuses a comparison of x, of type t, with a literal other outside t's enumeration.
func (p *nilPass) enumCompare(t *schema.Type, x, other ast.Node) {
	if t == nil || len(t.Enum) == 0 {
		return
	}
	v, ok := literal(other)
	if ok && !t.InEnum(v) {
		p.fail(other, "%s is not a value of %s, which is one of %s: the comparison is always the same", showValue(v), describeNode(x), listEnum(t))
	}
}

// enumIn refuses `x in [literals]` with a literal outside x's enumeration, and `literal in list`
// with a literal outside the enumeration of the list's elements.
func (p *nilPass) enumIn(lt *schema.Type, left ast.Node, rt *schema.Type, right ast.Node) {
	if lt != nil && len(lt.Enum) > 0 {
		if arr, ok := right.(*ast.ArrayNode); ok {
			for _, e := range arr.Nodes {
				p.enumCompare(lt, left, e)
			}
		}
	}
	if rt != nil && rt.Kind == schema.List && rt.Elem != nil {
		p.enumCompare(rt.Elem, right, left)
	}
}
