package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/fsmd-io/fsmd/internal/service"
)

// eventBodies are event bodies quickEvent decodes and bodies it must leave to encoding/json.
var eventBodies = []string{
	`{"event":"pay"}`,
	`{"event":"pay","payload":null}`,
	`{"payload":{},"event":""}`,
	` {"event" : "pay" , "payload" : {"a" : 1, "b" : [true, false, null, -1.5e3, "x", 0, -0, 1E+2, 2e-3], "c": {"d": {}}, "e": []}} ` + "\n",
	`{"event":"pay","payload":{"amount":12345678901234567890,"note":"é ✓ 😀"}}`,
	`{"event":"pay","payload":{"s":"a\"b"}}`,
	`{"event":"p\u0061y"}`,
	`{"event":5}`,
	`{"event":null}`,
	`{"event":"pay","payload":[1]}`,
	`{"event":"pay","payload":"x"}`,
	`{"event":"pay","payload":{"n":01}}`,
	`{"event":"pay","payload":{"n":1.}}`,
	`{"event":"pay","payload":{"n":.5}}`,
	`{"event":"pay","payload":{"n":-}}`,
	`{"event":"pay","payload":{"n":1e}}`,
	`{"event":"pay","payload":{"n":+1}}`,
	`{"event":"pay","payload":{"t":tru}}`,
	`{"event":"pay","payload":{"t":truex}}`,
	`{"event":"pay","payload":{"a":1,}}`,
	`{"event":"pay","payload":{"a":[1,]}}`,
	`{"event":"pay",}`,
	`{"event":"pay"`,
	`{"event":"pay"}x`,
	"{\"event\":\"pa\ty\"}",
	`{"event":"pay","other":1}`,
}

// TestQuickEvent: what quickEvent decodes is what encoding/json decodes, as decodeBody would; and
// it decodes the common bodies, or it would save nothing.
func TestQuickEvent(t *testing.T) {
	t.Parallel()
	for _, body := range eventBodies {
		checkEvent(t, []byte(body))
	}
	for _, body := range eventBodies[:5] {
		var ev service.SendEvent
		if !quickEvent([]byte(body), &ev) {
			t.Errorf("quickEvent leaves %s to encoding/json", body)
		}
	}
}

// FuzzQuickEvent: the same, for any body.
func FuzzQuickEvent(f *testing.F) {
	for _, body := range eventBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkEvent(t, body) })
}

// checkEvent compares quickEvent with encoding/json on body, where decodeBody would call it: once
// the body's checks passed: readBody's (UTF-8), then quickCheck's, or checkBody's when quickCheck
// is not sure. quickCheck passes malformed JSON (the decoding is to refuse it): quickEvent must too.
func checkEvent(t *testing.T, body []byte) {
	t.Helper()
	fields := jsonFields(&service.SendEvent{})
	if !utf8.Valid(body) || !quickCheck(body, fields) && checkBody(body, fields) != nil {
		return
	}
	var fast service.SendEvent
	if !quickEvent(body, &fast) {
		if !reflect.DeepEqual(fast, service.SendEvent{}) {
			t.Errorf("quickEvent left %+v in the event for %q", fast, body)
		}
		return
	}
	var slow service.SendEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&slow); err != nil {
		t.Fatalf("quickEvent decodes %q, which encoding/json refuses: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("%q: quickEvent %#v, encoding/json %#v", body, fast, slow)
	}
}

// BenchmarkDecodeEvent: an event's body of the load benchmark's kind, decoded by encoding/json as
// decodeBody did before quickEvent, and by quickEvent.
func BenchmarkDecodeEvent(b *testing.B) {
	body := []byte(`{"event":"deposit","payload":{"amount":125,"note":"a deposit of the load benchmark","meta":{"channel":"web","tags":["a","b"]}}}`)
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ev service.SendEvent
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("quickEvent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ev service.SendEvent
			if !quickEvent(body, &ev) {
				b.Fatal("left to encoding/json")
			}
		}
	})
}
