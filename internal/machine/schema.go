package machine

import (
	"github.com/fsmd-io/fsmd/internal/source"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// fieldSpecKeys are the keys of a field's spec: a mapping with a `type` key.
var fieldSpecKeys = []string{"type", "default", "required", "description", "fields", "optional", "enum"}

// object parses a mapping of field name to type (the `context` section, an event's payload, a
// nested object) into an object type.
func (d *parser) object(n *yaml.Node, what string, depth int) *schema.Type {
	t := schema.ObjectOf()
	if depth > MaxDepth {
		d.Errorf(source.At(n), "%s is nested more than %d levels deep", what, MaxDepth)
		return t
	}
	entries, _ := d.Mapping(n, what)
	for _, e := range entries {
		if !d.Name(e.KeyNode, "field") {
			continue
		}
		if f := d.field(e, what, depth); f != nil {
			t.Fields = append(t.Fields, f)
		}
	}
	return t
}

// field parses one field: a type expression, or a spec mapping with a `type` key.
func (d *parser) field(e source.Entry, what string, depth int) *schema.Field {
	f := &schema.Field{Name: e.Key}
	v := d.Resolve(e.Val)
	if v.Kind != yaml.MappingNode || !hasKey(v, "type") {
		f.Type = d.typeExpr(v, "field "+e.Key, depth+1)
		if f.Type == nil {
			return nil
		}
		return f
	}
	entries, _ := d.Mapping(v, "field "+e.Key)
	spec := d.Keys(entries, "field "+e.Key, fieldSpecKeys...)
	typ, ok := spec.Get("type")
	if !ok { // hasKey saw it, so only a malformed key (an alias, a duplicate) can hide it
		d.Errorf(source.At(v), "field %s: cannot read its `type`", e.Key)
		return nil
	}
	if tv := d.Resolve(typ.Val); tv.Kind == yaml.ScalarNode && tv.Value == "object" {
		fe, ok := spec.Get("fields")
		if !ok {
			d.Errorf(source.At(typ.Val), "field %s of type object needs `fields`", e.Key)
			return nil
		}
		f.Type = d.object(fe.Val, "field "+e.Key, depth+1)
	} else {
		if fe, ok := spec.Get("fields"); ok {
			d.Errorf(source.At(fe.KeyNode), "`fields` goes only with type: object")
		}
		f.Type = d.typeExpr(typ.Val, "field "+e.Key, depth+1)
	}
	if f.Type == nil {
		return nil
	}
	if o, ok := spec.Get("optional"); ok {
		switch yes := d.Boolean(o.Val, "optional"); {
		case yes:
			d.optional(f.Type, o.KeyNode, "field "+e.Key)
		case f.Type.Optional && d.Resolve(o.Val).Tag == "!!bool": // `optional: false` and `time?`
			d.Errorf(source.At(o.Val), "field %s: optional: false contradicts its type %s", e.Key, f.Type)
		}
	}
	if en, ok := spec.Get("enum"); ok {
		d.enum(f.Type, en, e.Key)
	}
	if r, ok := spec.Get("required"); ok {
		f.Required = d.Boolean(r.Val, "required")
	}
	if desc, ok := spec.Get("description"); ok {
		f.Description, _ = d.Scalar(desc.Val, "description")
	}
	if def, ok := spec.Get("default"); ok {
		var raw any
		if err := def.Val.Decode(&raw); err != nil {
			d.Errorf(source.At(def.Val), "default of field %s: %v", e.Key, err)
			return f
		}
		val, err := f.Type.Decode(raw, "", schema.Options{})
		if err != nil {
			d.Errorf(source.At(def.Val), "default of field %s does not fit its type: %v", e.Key, err)
			return f
		}
		f.Default, f.HasDefault = val, true
	}
	return f
}

// typeExpr parses a type: a scalar name (int), a list ([int], or "[int]"), or a nested object.
func (d *parser) typeExpr(n *yaml.Node, what string, depth int) *schema.Type {
	n = d.Resolve(n)
	if depth > MaxDepth {
		d.Errorf(source.At(n), "%s is nested more than %d levels deep", what, MaxDepth)
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.object(n, what, depth)
	case yaml.SequenceNode:
		if len(n.Content) != 1 {
			d.Errorf(source.At(n), "%s: a list type names one element type, like [string]; this list has %d", what, len(n.Content))
			return nil
		}
		elem := d.typeExpr(n.Content[0], what, depth+1)
		if elem == nil {
			return nil
		}
		return schema.ListOf(elem)
	case yaml.ScalarNode:
		if source.IsNull(n) {
			d.Errorf(source.At(n), "%s has no type", what)
			return nil
		}
		if s, ok := strings.CutSuffix(n.Value, "?"); ok { // `time?`, `"[string]?"`: optional
			inner := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Line: n.Line, Column: n.Column}
			t := d.typeExpr(inner, what, depth)
			if t != nil && t.Optional {
				d.Errorf(source.At(n), "%s: %q is optional twice; one ? is enough", what, n.Value)
				return nil
			}
			if t != nil && !d.optional(t, n, what) {
				return nil
			}
			return t
		}
		if s := n.Value; strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			inner := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s[1 : len(s)-1], Line: n.Line, Column: n.Column + 1}
			elem := d.typeExpr(inner, what, depth+1)
			if elem == nil {
				return nil
			}
			return schema.ListOf(elem)
		}
		if k, ok := schema.ScalarKind(n.Value); ok {
			return schema.Scalar(k)
		}
		d.Errorf(source.At(n), "%s: unknown type %q (expected string, int, float, bool, time, duration, any, [T], T? or a mapping of fields)", what, n.Value)
		return nil
	}
	d.Errorf(source.At(n), "%s: not a type", what)
	return nil
}

// optional makes t optional (`T?`, `optional: true`), or reports, at n, why it cannot be: an object
// is never null (its fields can be optional), and `any` already takes null.
func (d *parser) optional(t *schema.Type, n *yaml.Node, what string) bool {
	switch t.Kind {
	case schema.Object:
		d.Errorf(source.At(n), "%s: an object cannot be optional; make its fields optional instead", what)
		return false
	case schema.Any:
		d.Errorf(source.At(n), "%s: any cannot be optional: it already takes null", what)
		return false
	}
	t.Optional = true
	return true
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}
