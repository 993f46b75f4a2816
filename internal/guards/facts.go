package guards

import (
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// Facts of the optional values check (optional.go): what a condition proves not nil, named by
// keys that are the same wherever a path is written.

// facts are the keys (keyOf) of the expressions known not to be nil. A facts value is never changed
// in place once made: extending it copies, so that sibling subexpressions share their parent's.
type facts []string

func (f facts) has(k string) bool {
	for _, x := range f {
		if x == k {
			return true
		}
	}
	return false
}

func (f facts) with(more facts) facts {
	if len(more) == 0 {
		return f
	}
	if len(f) == 0 {
		return more
	}
	out := make(facts, 0, len(f)+len(more))
	return append(append(out, f...), more...)
}

// without drops the facts about paths from name (a key names a variable only at its root): on
// entering a scope where name means something else (a `let`, a predicate's # and #acc), what was
// proved of it outside no longer holds.
func (f facts) without(name string) facts {
	var out facts
	for i, x := range f {
		if rest, ok := strings.CutPrefix(x, name); ok && (name == "#" || rest == "" || strings.ContainsRune(".[", rune(rest[0]))) {
			if out == nil {
				out = append(make(facts, 0, len(f)), f[:i]...)
			}
			continue
		}
		if out != nil {
			out = append(out, x)
		}
	}
	if out == nil {
		return f
	}
	return out
}

// facts is what n proves not nil when its value is truth.
func (p *nilPass) facts(n ast.Node, truth bool) facts {
	switch n := n.(type) {
	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			return p.facts(n.Node, !truth)
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "!=", "==":
			if (n.Operator == "!=") != truth {
				return nil
			}
			x := n.Left
			if _, ok := x.(*ast.NilNode); ok {
				x = n.Right
			} else if _, ok := n.Right.(*ast.NilNode); !ok {
				return nil
			}
			return notNilPath(x)
		case "&&", "and":
			if truth {
				return p.facts(n.Left, true).with(p.facts(n.Right, true))
			}
		case "||", "or":
			if !truth {
				return p.facts(n.Left, false).with(p.facts(n.Right, false))
			}
		}
	}
	return nil
}

// notNilPath is what x != nil proves: x, and the base of each ?. in it (a?.b is nil when a is).
func notNilPath(x ast.Node) facts {
	k, ok := keyOf(x)
	if !ok {
		return nil
	}
	out := facts{k}
	for {
		switch m := x.(type) {
		case *ast.ChainNode:
			x = m.Node
			continue
		case *ast.MemberNode:
			if m.Optional {
				if b, ok := keyOf(m.Node); ok {
					out = append(out, b)
				}
			}
			x = m.Node
			continue
		}
		return out
	}
}

// keyOf names a path (a name, # or a member chain of field names and constant indexes) the same
// way wherever it is written, so that a fact about it is found where it is used. a?.b and a.b have
// the same key: when either is not nil, a is not nil and both are a.b.
func keyOf(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return n.Value, true
	case *ast.PointerNode:
		return "#" + n.Name, true
	case *ast.ChainNode:
		return keyOf(n.Node)
	case *ast.MemberNode:
		base, ok := keyOf(n.Node)
		if !ok {
			return "", false
		}
		switch pr := n.Property.(type) {
		case *ast.StringNode:
			if isName(pr.Value) {
				return base + "." + pr.Value, true
			}
			return base + "[" + strconv.Quote(pr.Value) + "]", true
		case *ast.IntegerNode:
			return base + "[" + strconv.Itoa(pr.Value) + "]", true
		}
	}
	return "", false
}

func isName(s string) bool {
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// NotNil is what a guard proves of optional values when it holds, for Env.NotNil of its branch's
// `set` and `send` expressions ("" for other expressions, or a guard that proves nothing).
func (p *Program) NotNil() Facts {
	if p == nil {
		return ""
	}
	return p.notNil
}

func (f Facts) list() facts {
	if f == "" {
		return nil
	}
	return strings.Split(string(f), "\n")
}

// exported keeps the facts about paths of ctx and event: the other expressions of a branch see the
// same ctx and event, but not the guard's `let` variables or predicates' elements.
func exported(f facts) Facts {
	var keep []string
	for _, k := range f {
		if (strings.HasPrefix(k, "ctx.") || strings.HasPrefix(k, "event.")) && !strings.ContainsAny(k, "#\n") && !slices.Contains(keep, k) {
			keep = append(keep, k)
		}
	}
	slices.Sort(keep)
	return Facts(strings.Join(keep, "\n"))
}
