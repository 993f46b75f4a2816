package explore

import (
	"strings"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// omitted is the type of omit, the candidate "leave the field out": the field takes its default.
type omitted struct{}

var omit = omitted{}

// contexts are the initial contexts the walk starts from. A context is given at creation, so only
// its fields matter that no `set` writes: those guards compare with constants, the required ones
// (which must be given), and lists (empty or one element: `len(ctx.legs) > 0`, `for_each`). Each
// value of each such field is tried once with the others left at their first candidate (the
// default, for a field that is not required): a context's guards decide branches one field at a
// time far more often than in pairs, and each context is a whole walk.
func (g *gen) contexts(def *machine.Definition) []map[string]any {
	written := setPaths(def)
	var paths [][]string
	var dims [][]any
	var walk func(t *schema.Type, path []string, depth int)
	walk = func(t *schema.Type, path []string, depth int) {
		for _, f := range t.Fields {
			p := append(append([]string(nil), path...), f.Name)
			key := "ctx." + strings.Join(p, ".")
			switch {
			case f.Type.Kind == schema.Object && !f.Required && len(f.Type.Enum) == 0 && depth < maxNesting:
				walk(f.Type, p, depth+1)
				continue
			case f.Required:
				vs := g.values(f.Type, key, depth)
				if !g.compared(key) && len(f.Type.Enum) == 0 && f.Type.Kind != schema.List {
					vs = vs[:1] // no guard asks about it: any valid value will do
				}
				paths, dims = append(paths, p), append(dims, vs)
			case written[key]:
			case g.compared(key) || f.Type.Kind == schema.List:
				vs := append([]any{omit}, g.values(f.Type, key, depth)...)
				paths, dims = append(paths, p), append(dims, vs)
			}
		}
	}
	walk(def.Context, nil, 0)
	rows := eachChoice(dims, maxContexts)
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		ctx := map[string]any{}
		for j, p := range paths {
			if v := dims[j][r[j]]; v != omit {
				put(ctx, p, v)
			}
		}
		out[i] = ctx
	}
	return out
}

// put sets the nested field path of m to v, making the objects on the way.
func put(m map[string]any, path []string, v any) {
	for _, name := range path[:len(path)-1] {
		inner, ok := m[name].(map[string]any)
		if !ok {
			inner = map[string]any{}
			m[name] = inner
		}
		m = inner
	}
	m[path[len(path)-1]] = v
}

// compared reports whether a guard compares the field at path with a constant or another field.
func (g *gen) compared(path string) bool {
	_, ok := g.consts[path]
	return ok
}
