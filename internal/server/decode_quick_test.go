package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// quickBodies are bodies on both sides of each rule quickCheck stands in for.
var quickBodies = []string{
	`{"event":"pay"}`,
	` {"event" : "pay" , "payload" : {"a" : 1, "b" : [true, false, null, -1.5e3, "x"]}} ` + "\n",
	`{"event":"pay","payload":{}}`,
	`{"event":"pay","payload":{"a":[],"b":{},"c":[[]],"d":[{}]}}`,
	`{"payload":{"a":{"a":{"a":1}}},"event":"pay"}`,
	`{"event":"pay","payload":{"a":1,"b":2,"a":3}}`,
	`{"event":"pay","event":"ship"}`,
	`{"event":"pay","amount":3}`,
	`{"Event":"pay"}`,
	`{"event":"pay","payload":{"a":1,"\u0061":2}}`,
	`{"event":"pay","payload":{"a\"b":1,"a\"b":2}}`,
	`{"event":"pay","payload":{"note":"\ud800"}}`,
	`{"event":"pay","payload":{"note":"\ud83d\ude00"}}`,
	`{"event":"pay","payload":{"note":"a\\ud800"}}`,
	`{"event":"pay","payload":{"note":"a \"quoted\" word"}}`,
	`{"event":"pay","payload":{"meta":[{"k":1},{"x":{"k":1,"k":1}}]}}`,
	`{"event":"pay","payload":{"a":` + strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) + `}}`,
	`{"event":"pay","payload":{"a":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}}`,
	`{"event":"pay"} {}`,
	`{"event":"pay"}x`,
	`["pay"]`,
	`null`,
	`{"event":"pay","payload":{"a":1]}`,
	`{"event":"pay","payload":[1}}`,
	`{"event":"pay","payload":{"a":1,}}`,
	`{"event":`,
	`{"event" "pay"}`,
	`{}`,
}

func init() {
	// An object of many keys, all distinct and one repeated.
	var many []string
	for i := range quickKeys + 8 {
		many = append(many, `"k`+strings.Repeat("x", i)+`":1`)
	}
	quickBodies = append(quickBodies,
		`{"event":"pay","payload":{`+strings.Join(many, ",")+`}}`,
		`{"event":"pay","payload":{`+strings.Join(many, ",")+`,"k":2}}`)
}

// TestQuickCheck: where quickCheck passes a body, checkBody passes it too, for every body that is
// valid JSON; and it passes the common bodies, or it would save nothing.
func TestQuickCheck(t *testing.T) {
	t.Parallel()
	fields := jsonFields(&eventBody{})
	for _, body := range quickBodies {
		checkQuick(t, []byte(body), fields)
	}
	for _, body := range append(quickBodies[:5:5], quickBodies[13], quickBodies[14], quickBodies[16]) {
		if !quickCheck([]byte(body), fields) {
			t.Errorf("quickCheck sends %s to checkBody", body)
		}
	}
}

// FuzzQuickCheck: the same, for any body.
func FuzzQuickCheck(f *testing.F) {
	for _, body := range quickBodies {
		f.Add([]byte(body))
	}
	fields := jsonFields(&eventBody{})
	f.Fuzz(func(t *testing.T, body []byte) { checkQuick(t, body, fields) })
}

// eventBody has the fields of an event's body.
type eventBody struct {
	Event   string         `json:"event"`
	Payload map[string]any `json:"payload"`
}

func checkQuick(t *testing.T, body []byte, fields []string) {
	t.Helper()
	if !quickCheck(body, fields) {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var v any
	if dec.Decode(&v) != nil {
		return // not JSON: the decoding after quickCheck refuses it
	}
	if err := checkBody(body, fields); err != nil {
		t.Errorf("quickCheck passes %q, which checkBody refuses: %v", body, err)
	}
}

// BenchmarkCheckBody: an event's body of the load benchmark's kind, checked by encoding/json's
// tokens (checkBody) and by quickCheck.
func BenchmarkCheckBody(b *testing.B) {
	body := []byte(`{"event":"deposit","payload":{"amount":125,"note":"a deposit of the load benchmark","meta":{"channel":"web","tags":["a","b"]}}}`)
	fields := jsonFields(&eventBody{})
	b.Run("checkBody", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := checkBody(body, fields); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("quickCheck", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !quickCheck(body, fields) {
				b.Fatal("refused")
			}
		}
	})
}
