package machine

import (
	"fmt"
	"strings"
)

// Mermaid draws the definition as a Mermaid stateDiagram-v2: every transition, labelled with its
// event (and its branch number where a handler has several), the initial state and the final ones.
// A branch that stays in its state (no `to`) is a self-loop labelled "event (stay)", so that it reads
// apart from one that re-enters the state (`to` the state itself), labelled with the event alone.
// Guards are left out: they are long, and the diagram shows where an instance can go. A state with
// a description is declared with its name as its label first: Mermaid 11 and later show a lone
// description in place of the name.
//
// A state that starts children (`children`) has a line per group, "starts GROUP (DEFINITION)", under
// its description, and the class ChildrenClass, declared at the end with a dashed border that leaves
// the fill to other classes (the console colours states by their instances).
func Mermaid(def *Definition) string {
	var b strings.Builder
	var parents []string
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s\n", def.Initial)
	for _, name := range def.StateOrder {
		s := def.States[name]
		if s.Description != "" || len(s.Children) > 0 {
			fmt.Fprintf(&b, "    state \"%s\" as %s\n", name, name)
		}
		if s.Description != "" {
			fmt.Fprintf(&b, "    %s : %s\n", name, label(s.Description))
		}
		for _, g := range s.Children {
			fmt.Fprintf(&b, "    %s : %s\n", name, label("starts "+g.Name+" ("+g.Definition+")"))
		}
		if len(s.Children) > 0 {
			parents = append(parents, name)
		}
		for _, ev := range s.OnOrder {
			h := s.On[ev]
			for _, br := range h.Branches {
				l := ev
				switch {
				case len(h.Branches) > 1 && br.Stays():
					l = fmt.Sprintf("%s (%d, stay)", ev, br.Index+1)
				case len(h.Branches) > 1:
					l = fmt.Sprintf("%s (%d)", ev, br.Index+1)
				case br.Stays():
					l = ev + " (stay)"
				}
				fmt.Fprintf(&b, "    %s --> %s : %s\n", name, br.Target(name), l)
			}
		}
		if s.Final {
			fmt.Fprintf(&b, "    %s --> [*]\n", name)
		}
	}
	if len(parents) > 0 {
		fmt.Fprintf(&b, "    classDef %s %s\n", ChildrenClass, childrenStyle)
		for _, name := range parents {
			fmt.Fprintf(&b, "    class %s %s\n", name, ChildrenClass)
		}
	}
	return b.String()
}

// ChildrenClass is the diagram's class of the states that start children.
const ChildrenClass = "children"

// childrenStyle marks them by their border only: a darker, wider, dashed one.
const childrenStyle = "stroke:#475467,stroke-width:2px,stroke-dasharray:6 3"

// label keeps a description on one line and clear of Mermaid's syntax.
func label(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.NewReplacer(":", " ", ";", ",", "#", "", "\"", "'", "{", "(", "}", ")").Replace(s)
	if r := []rune(s); len(r) > 80 {
		s = string(r[:77]) + "..."
	}
	return s
}
