package machine

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Keys and indexes (docs/definitions.md, "Keys and indexes"): `keys:` names the context fields
// whose value is unique among the running instances of the definition (a business key, to find an
// instance and send it events by), `index:` the fields that GET /v1/instances filters on through an
// index. Both name scalar fields: a list or an object has no one value to compare or make unique.

// FieldRef is a scalar context field named by a definition's `keys` or `index`.
type FieldRef struct {
	Name string      // the dotted path as written: "customer.tier"
	Path []string    // its parts
	Kind schema.Kind // String, Int, Float, Bool, Time or Duration
	Pos  Pos
}

// Key returns the declared key named name ("order_number", or a dotted path), or nil.
func (d *Definition) Key(name string) *FieldRef {
	for _, k := range d.Keys {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// ScalarField resolves a dotted path into the context to a scalar field: its kind, or an error
// that says why the path cannot be compared (an undeclared field, a list, an object, an any).
func (d *Definition) ScalarField(dotted string) (schema.Kind, error) {
	f := d.Context.Path(strings.Split(dotted, "."))
	if f == nil {
		return 0, fmt.Errorf("the context of %s has no field %q", d.Name, dotted)
	}
	switch k := f.Type.Kind; k {
	case schema.String, schema.Int, schema.Float, schema.Bool, schema.Time, schema.Duration:
		return k, nil
	}
	return 0, fmt.Errorf("field %s is of type %s, not a scalar (string, int, float, bool, time or duration)", dotted, f.Type)
}

// fieldRefs parses `keys` or `index` (what): a list of dotted paths to scalar context fields, each
// named once.
func (d *parser) fieldRefs(def *Definition, n *yaml.Node, what string) []*FieldRef {
	var out []*FieldRef
	seen := map[string]Pos{}
	for _, item := range d.Sequence(n, what) {
		name, ok := d.Scalar(item, what)
		if !ok {
			continue
		}
		p := source.At(d.Resolve(item))
		if prev, dup := seen[name]; dup {
			d.Errorf(p, "%s lists %q twice (first at line %d)", what, name, prev.Line)
			continue
		}
		seen[name] = p
		kind, err := def.ScalarField(name)
		if err != nil {
			d.Errorf(p, "%s: %v", what, err)
			continue
		}
		out = append(out, &FieldRef{Name: name, Path: strings.Split(name, "."), Kind: kind, Pos: p})
	}
	return out
}
