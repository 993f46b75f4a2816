// Package ident makes the ids fsmd generates (instances, migrations, webhook deliveries): 26
// characters of Crockford base32, time-ordered (48 bits of milliseconds) and then random (80 bits),
// so that they list in creation order and no two processes or databases make the same one. It
// also holds the one rule every id and name from outside must meet (Check).
package ident

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// New makes an id at now.
func New(now time.Time) string {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	out := make([]byte, 26)
	var acc uint64
	bits, j := 0, 0
	for _, x := range b {
		acc = acc<<8 | uint64(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[j] = alphabet[(acc>>uint(bits))&31]
			j++
		}
	}
	out[j] = alphabet[(acc<<uint(5-bits))&31]
	return string(out)
}

// MaxLength bounds every id and name a client sends or fsmd stores (instance ids, definition and
// event names, idempotency keys), in characters.
const MaxLength = 200

// Check is the one rule for an id or a name from outside: 1 to MaxLength characters of valid
// UTF-8, none a control character. what names it in the error ("field id", "path parameter
// name"); the callers make the error their own kind (a 400 in the API).
func Check(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is empty", what)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s is not valid UTF-8", what)
	case utf8.RuneCountInString(v) > MaxLength:
		return fmt.Errorf("%s is longer than %d characters", what, MaxLength)
	case strings.ContainsFunc(v, unicode.IsControl):
		return fmt.Errorf("%s contains a control character", what)
	}
	return nil
}
