package table

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Coverage records which transitions the cases took and which ways their guards went. It is safe for
// concurrent use (go test runs cases in parallel).
type Coverage struct {
	mu    sync.Mutex
	defs  map[*machine.Definition]bool
	taken map[branchKey]bool
	seen  map[branchKey][2]bool // [false seen, true seen]
}

type branchKey struct {
	def          *machine.Definition
	state, event string
	branch       int
}

// NewCoverage returns an empty record.
func NewCoverage() *Coverage {
	return &Coverage{defs: map[*machine.Definition]bool{}, taken: map[branchKey]bool{}, seen: map[branchKey][2]bool{}}
}

func (c *Coverage) record(def *machine.Definition, state, event string, t *machine.Transition, err error) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.defs[def] = true
	key := func(branch int) branchKey { return branchKey{def, state, event, branch} }
	mark := func(branch int, result bool) {
		s := c.seen[key(branch)]
		if result {
			s[1] = true
		} else {
			s[0] = true
		}
		c.seen[key(branch)] = s
	}
	if t != nil {
		c.taken[key(t.Branch)] = true
		for _, g := range t.Guards {
			mark(g.Branch, g.Result)
		}
		return
	}
	var rejected *machine.GuardRejectedError
	if errors.As(err, &rejected) {
		for i := range rejected.Blockers {
			mark(i, false)
		}
	}
}

// Gaps lists what no case exercised, per definition: transitions never taken and guards not seen
// both true and false.
type Gaps struct {
	Definition  *machine.Definition
	Transitions int // all (state, event, branch)
	Guards      int // all guarded branches
	Untaken     []string
	OneWay      []string
}

// Gaps computes the gaps of every definition a case ran against, sorted by name.
func (c *Coverage) Gaps() []Gaps {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Gaps
	for def := range c.defs {
		g := Gaps{Definition: def}
		for _, sn := range def.StateOrder {
			s := def.States[sn]
			for _, ev := range s.OnOrder {
				for _, b := range s.On[ev].Branches {
					k := branchKey{def, sn, ev, b.Index}
					at := fmt.Sprintf("%s:%d:%d", def.File, b.Pos.Line, b.Pos.Col)
					g.Transitions++
					if !c.taken[k] {
						g.Untaken = append(g.Untaken, fmt.Sprintf("%s --%s[%d]--> %s (%s)", sn, ev, b.Index+1, target(sn, b), at))
					}
					if b.GuardSource == "" {
						continue
					}
					g.Guards++
					never := ""
					switch seen := c.seen[k]; {
					case !seen[0] && !seen[1]:
						never = "never evaluated"
					case !seen[0]:
						never = "never false"
					case !seen[1]:
						never = "never true"
					default:
						continue
					}
					guardAt := fmt.Sprintf("%s:%d:%d", def.File, b.GuardPos.Line, b.GuardPos.Col)
					g.OneWay = append(g.OneWay, fmt.Sprintf("%s: guard of %s --%s[%d]--> %s: %s (%s)",
						never, sn, ev, b.Index+1, target(sn, b), b.GuardSource, guardAt))
				}
			}
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Definition.File < out[j].Definition.File })
	return out
}

// target is where branch b leads from state, as the report shows it: a stay is "state (stay)".
func target(state string, b *machine.Branch) string {
	if b.Stays() {
		return state + " (stay)"
	}
	return b.To
}

// Write prints the coverage report.
func (c *Coverage) Write(w io.Writer) {
	for _, g := range c.Gaps() {
		name := g.Definition.Name
		fmt.Fprintf(w, "coverage: %s: %d of %d transitions taken, %d of %d guards seen both true and false\n",
			name, g.Transitions-len(g.Untaken), g.Transitions, g.Guards-len(g.OneWay), g.Guards)
		for _, u := range g.Untaken {
			fmt.Fprintf(w, "  %s: not taken: %s\n", name, u)
		}
		for _, o := range g.OneWay {
			fmt.Fprintf(w, "  %s: %s\n", name, o)
		}
	}
}

// show formats a typed value as JSON, the way users write it.
func show(v any) string {
	b, err := json.Marshal(schema.Encode(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
