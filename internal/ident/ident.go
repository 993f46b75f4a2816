// Package ident makes the ids fsmd generates (instances, migrations, webhook deliveries): 26
// characters of Crockford base32, time-ordered (48 bits of milliseconds) and then random (80 bits),
// so that they list in creation order and no two processes or databases make the same one.
package ident

import (
	"crypto/rand"
	"time"
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
