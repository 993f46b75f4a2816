package server

// quickCheck is checkBody's fast path: one pass over the bytes, without encoding/json's tokens
// (which box every token and took a third of an event's decoding). It answers true only when
// checkBody would find nothing wrong with body, provided body is valid JSON, which the decoding
// after it checks: an object whose top-level keys are all in fields, no key twice in any object, no
// nesting past maxDepth, nothing after the object. Whatever it is not sure of, it leaves to
// checkBody (false), which names the fault: a key with an escape (compared here byte for byte),
// a \u escape anywhere (it may be half of a surrogate pair), an object of more than quickKeys keys,
// anything unexpected.
func quickCheck(body []byte, fields []string) bool {
	var (
		depth int
		// isObject[d] says whether level d is an object; keys holds the open objects' keys so far,
		// as offsets in body, from keyStart[d] on for level d.
		isObject [maxDepth + 1]bool
		keyStart [maxDepth + 1]int
		keys     = make([][2]int, 0, 16)
	)
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return false
	}
	depth, isObject[1], keyStart[1] = 1, true, 0
	i++
	for {
		i = skipSpace(body, i)
		if i == len(body) {
			return false
		}
		if isObject[depth] {
			if body[i] == '}' { // an empty object, or the end of one after a value's comma: see below
				goto closed
			}
			// A key: compared byte for byte, so none with an escape.
			if body[i] != '"' {
				return false
			}
			end, escaped := stringEnd(body, i)
			if end < 0 || escaped {
				return false
			}
			key := body[i+1 : end]
			if depth == 1 && !hasField(fields, key) {
				return false
			}
			if len(keys)-keyStart[depth] >= quickKeys {
				return false
			}
			for _, k := range keys[keyStart[depth]:] {
				if string(body[k[0]:k[1]]) == string(key) {
					return false
				}
			}
			keys = append(keys, [2]int{i + 1, end})
			i = skipSpace(body, end+1)
			if i == len(body) || body[i] != ':' {
				return false
			}
			i = skipSpace(body, i+1)
			if i == len(body) {
				return false
			}
		} else if body[i] == ']' {
			goto closed
		}
		// A value.
		switch c := body[i]; {
		case c == '{' || c == '[':
			if depth == maxDepth {
				return false
			}
			depth++
			isObject[depth], keyStart[depth] = c == '{', len(keys)
			i++
			continue
		case c == '"':
			end, escaped := stringEnd(body, i)
			if end < 0 || escaped && hasUnicodeEscape(body[i:end]) {
				return false
			}
			i = end + 1
		default: // a number, true, false or null: up to what ends it
			for i < len(body) && !isDelim(body[i]) {
				i++
			}
		}
	afterValue: // a comma, or the end of the value's object or list
		i = skipSpace(body, i)
		if i == len(body) {
			return false
		}
		switch body[i] {
		case ',':
			i++
			continue
		case '}', ']':
		default:
			return false
		}
	closed:
		if (body[i] == '}') != isObject[depth] {
			return false
		}
		keys = keys[:keyStart[depth]]
		depth--
		i++
		if depth == 0 {
			return skipSpace(body, i) == len(body)
		}
		goto afterValue // the object or list just closed is a value of the level around it
	}
}

// quickKeys is the most keys quickCheck compares in one object (each new key with those before
// it); a larger object goes to checkBody, whose map does it in linear time.
const quickKeys = 32

// stringEnd returns the index of the quote that ends the JSON string starting at body[start] (a
// quote), and whether it holds a backslash escape; -1 when it does not end.
func stringEnd(body []byte, start int) (int, bool) {
	escaped := false
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '"':
			return i, escaped
		case '\\':
			escaped = true
			i++ // the escaped character, a quote or a backslash included
		}
	}
	return -1, escaped
}

// hasUnicodeEscape says whether the JSON string text s (from its opening quote) holds a \u escape.
func hasUnicodeEscape(s []byte) bool {
	for i := 1; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 < len(s) && s[i+1] == 'u' {
				return true
			}
			i++
		}
	}
	return false
}

func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	return i
}

// isDelim says whether c ends a number or literal.
func isDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// hasField says whether key is one of fields, without converting it to a string.
func hasField(fields []string, key []byte) bool {
	for _, f := range fields {
		if f == string(key) {
			return true
		}
	}
	return false
}
