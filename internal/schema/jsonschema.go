package schema

// JSONSchema is the type as JSON Schema (draft 2020-12), for a client that builds a form or checks
// a body before it sends it: what Decode accepts, as far as JSON Schema says it. An object takes no
// other fields; a required field without a default is required; a default is given as JSON
// (Encode). An optional type also takes null (its "type" lists "null"); an enumeration lists its
// values in "enum" (and null when optional). A time is an RFC 3339 string (format date-time); a
// duration a string such as "90m" or "3d" (x-fsmd-type duration: JSON Schema has no format for
// it); any, anything.
func (t *Type) JSONSchema() map[string]any {
	s := t.plainSchema()
	if len(t.Enum) > 0 {
		values := make([]any, len(t.Enum), len(t.Enum)+1)
		copy(values, t.Enum)
		if t.Optional {
			values = append(values, nil)
		}
		s["enum"] = values
	}
	if typ, ok := s["type"].(string); ok && t.Optional {
		s["type"] = []any{typ, "null"}
	}
	return s
}

// plainSchema is the JSON Schema of t's kind, neither null nor the enumeration considered.
func (t *Type) plainSchema() map[string]any {
	switch t.Kind {
	case String:
		return map[string]any{"type": "string"}
	case Int:
		return map[string]any{"type": "integer"}
	case Float:
		return map[string]any{"type": "number"}
	case Bool:
		return map[string]any{"type": "boolean"}
	case Time:
		return map[string]any{"type": "string", "format": "date-time"}
	case Duration:
		return map[string]any{"type": "string", "x-fsmd-type": "duration"}
	case List:
		return map[string]any{"type": "array", "items": t.Elem.JSONSchema()}
	case Object:
		props := make(map[string]any, len(t.Fields))
		required := []any{}
		for _, f := range t.Fields {
			p := f.Type.JSONSchema()
			if f.HasDefault {
				p["default"] = Encode(f.Default)
			}
			if f.Description != "" {
				p["description"] = f.Description
			}
			props[f.Name] = p
			if f.Required && !f.HasDefault {
				required = append(required, f.Name)
			}
		}
		out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			out["required"] = required
		}
		return out
	}
	return map[string]any{}
}
