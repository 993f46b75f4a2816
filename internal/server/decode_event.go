package server

import (
	"encoding/json"

	"github.com/fsmd-io/fsmd/internal/service"
)

// quickEvent decodes an event's body into ev as decodeBody's encoding/json decoding would, for the
// bodies it is sure of, and reports whether it did: an object of "event" (a string) and "payload"
// (an object or null), of valid JSON throughout, after quickCheck passed it (no key twice, no
// unknown field, not too deep). It is the hot path of every event; encoding/json's decoder costs
// two allocations of a buffer and a reflective walk per request. Anything else (another type, a
// string with an escape, a malformed number) is left to encoding/json (false), which decodes it or
// names the fault; ev is then left as it was.
func quickEvent(body []byte, ev *service.SendEvent) bool {
	p := jsonParser{b: body}
	var out service.SendEvent
	p.space()
	if !p.byte('{') {
		return false
	}
	ok := p.items('}', func() bool {
		key, ok := p.key()
		if !ok {
			return false
		}
		switch key {
		case "event":
			out.Event, ok = p.str()
			return ok
		case "payload":
			if p.literal("null") {
				out.Payload = nil
				return true
			}
			v, ok := p.value(1)
			m, isObject := v.(map[string]any)
			out.Payload = m
			return ok && isObject
		}
		return false
	})
	if !ok {
		return false
	}
	p.space()
	if p.i != len(p.b) {
		return false
	}
	ev.Event, ev.Payload = out.Event, out.Payload
	return true
}

// items reads the members of an object or the elements of a list, after its opening bracket and
// up to close, each (with what precedes it: white space, a comma) by read.
func (p *jsonParser) items(close byte, read func() bool) bool {
	for first := true; ; first = false {
		if !p.spaceThen() {
			return false
		}
		if p.byte(close) {
			return true
		}
		if !first && !(p.byte(',') && p.spaceThen()) {
			return false
		}
		if !read() {
			return false
		}
	}
}

// jsonParser reads JSON values strictly from b at i; each method says whether what it read is valid.
type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) space() { p.i = skipSpace(p.b, p.i) }

// spaceThen skips white space and reports that there is more to read.
func (p *jsonParser) spaceThen() bool {
	p.space()
	return p.i < len(p.b)
}

// byte consumes c if it is next.
func (p *jsonParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// literal consumes word (true, false, null) if it is next, whole.
func (p *jsonParser) literal(word string) bool {
	end := p.i + len(word)
	if end > len(p.b) || string(p.b[p.i:end]) != word || end < len(p.b) && !isDelim(p.b[end]) {
		return false
	}
	p.i = end
	return true
}

// str reads a string without escapes and without control characters (the body is valid UTF-8:
// readBody checked); one with an escape is encoding/json's to decode.
func (p *jsonParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// key reads an object's key and the colon after it, up to its value.
func (p *jsonParser) key() (string, bool) {
	k, ok := p.str()
	return k, ok && p.spaceThen() && p.byte(':') && p.spaceThen()
}

// number reads a number as JSON's grammar has it, as a json.Number (decodeBody's UseNumber).
func (p *jsonParser) number() (json.Number, bool) {
	start := p.i
	p.byte('-')
	switch {
	case p.byte('0'):
	case p.digits() == 0:
		return "", false
	}
	if p.byte('.') && p.digits() == 0 {
		return "", false
	}
	if p.byte('e') || p.byte('E') {
		if !p.byte('+') {
			p.byte('-')
		}
		if p.digits() == 0 {
			return "", false
		}
	}
	if p.i < len(p.b) && !isDelim(p.b[p.i]) {
		return "", false
	}
	return json.Number(p.b[start:p.i]), true
}

func (p *jsonParser) digits() int {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// value reads any value at nesting level depth (quickCheck bounded it): objects as map[string]any,
// lists as []any, numbers as json.Number, as encoding/json decodes into an interface with UseNumber.
func (p *jsonParser) value(depth int) (any, bool) {
	if p.i >= len(p.b) || depth > maxDepth {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '{':
		p.i++
		m := map[string]any{}
		return m, p.items('}', func() bool {
			k, ok := p.key()
			if ok {
				m[k], ok = p.value(depth + 1)
			}
			return ok
		})
	case c == '[':
		p.i++
		l := []any{}
		ok := p.items(']', func() bool {
			v, ok := p.value(depth + 1)
			l = append(l, v)
			return ok
		})
		return l, ok
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return p.number()
	}
}
