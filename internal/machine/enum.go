package machine

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// enum parses a field's `enum:` into t.Enum: a non-empty list of at most schema.MaxEnum distinct
// values of t, which must be a string or an int. Each value is decoded once and looked up in a set,
// so that loading the largest enumeration stays linear. Every problem is reported at its value.
func (d *parser) enum(t *schema.Type, e source.Entry, field string) {
	what := "enum of field " + field
	if t.Kind != schema.String && t.Kind != schema.Int {
		d.Errorf(source.At(e.KeyNode), "%s: an enumeration is of string or int values, and the field is %s", what, t)
		return
	}
	items := d.Sequence(e.Val, what)
	switch {
	case len(items) == 0:
		if d.Resolve(e.Val).Kind == yaml.SequenceNode || source.IsNull(d.Resolve(e.Val)) {
			d.Errorf(source.At(e.Val), "%s is empty: list the values the field may take", what)
		}
		return
	case len(items) > schema.MaxEnum:
		d.Errorf(source.At(e.Val), "%s has %d values; the most is %d", what, len(items), schema.MaxEnum)
		return
	}
	plain := &schema.Type{Kind: t.Kind} // each value is of the kind; null is no value of an enum
	seen := make(map[any]bool, len(items))
	values := make([]any, 0, len(items))
	for i, n := range items {
		n = d.Resolve(n)
		if n.Kind != yaml.ScalarNode || source.IsNull(n) {
			d.Errorf(source.At(n), "%s: value %d must be a single %s, not %s", what, i+1, t.Kind, source.Describe(n))
			continue
		}
		var raw any
		if err := n.Decode(&raw); err != nil {
			d.Errorf(source.At(n), "%s: value %d: %v", what, i+1, err)
			continue
		}
		v, err := plain.Decode(raw, "", schema.Options{})
		if err != nil {
			d.Errorf(source.At(n), "%s: value %d (%s): %v", what, i+1, n.Value, err)
			continue
		}
		if seen[v] {
			d.Errorf(source.At(n), "%s: %s is listed twice", what, quoted(v))
			continue
		}
		seen[v] = true
		values = append(values, v)
	}
	if len(values) == len(items) {
		t.SetEnum(values)
	}
}

func quoted(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}
