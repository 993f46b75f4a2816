package outbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of a delivery, besides Content-Type: application/json and User-Agent.
const (
	// HeaderDeliveryID is the delivery's id, the same on every attempt: a receiver that has seen
	// it has the transition already (deliveries are at least once).
	HeaderDeliveryID = "Fsmd-Delivery-Id"
	// HeaderTimestamp is when the attempt was made, in Unix seconds; it is signed with the body.
	HeaderTimestamp = "Fsmd-Timestamp"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the secret, of the
	// timestamp, a dot and the body: Sign.
	HeaderSignature = "Fsmd-Signature"
	// HeaderAttempt numbers the attempts of a delivery from 1.
	HeaderAttempt = "Fsmd-Attempt"
)

// UserAgent is the User-Agent of deliveries.
const UserAgent = "fsmd-webhook/1"

// Sign returns the value of the Fsmd-Signature header of body sent at timestamp (Unix seconds):
// "sha256=" followed by the hex HMAC-SHA256, keyed with secret, of the timestamp in decimal, a
// dot, and the body.
func Sign(secret []byte, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery as a receiver should: signature is the Fsmd-Signature header,
// timestamp the Fsmd-Timestamp header, body the request's body as received. The signature must be
// one made with secret (comparing in constant time), and the timestamp within tolerance of now
// (so that a recorded request cannot be replayed later); a tolerance of 0 does not check it.
func Verify(secret []byte, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("outbox: %s %q is not a Unix time", HeaderTimestamp, timestamp)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("outbox: %s is %v away from now; the tolerance is %v", HeaderTimestamp, d.Round(time.Second), tolerance)
		}
	}
	want := []byte(Sign(secret, ts, body))
	// One header may carry several signatures, comma-separated (a secret being rotated).
	for _, sig := range strings.Split(signature, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(sig)), want) {
			return nil
		}
	}
	return errors.New("outbox: the signature does not match the body")
}
