package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/outbox"
)

// TestOutboxServe: fsmd serve with FSMD_WEBHOOK_SECRET delivers the transitions of a definition
// with a notify section to a real receiver: each once (by delivery id), signed with the secret, in
// order per instance, the first one failing and retried.
func TestOutboxServe(t *testing.T) {
	t.Parallel()
	for name, dbURL := range dbtest.Databases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testOutboxServe(t, dbURL(t))
		})
	}
}

func testOutboxServe(t *testing.T, dbURL string) {
	const secret = "s3cret"
	type delivery struct {
		id       string
		instance string
		seq      int64
	}
	var (
		mu     sync.Mutex
		got    []delivery
		failed bool
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := outbox.Verify([]byte(secret), r.Header.Get(outbox.HeaderSignature), r.Header.Get(outbox.HeaderTimestamp),
			body, time.Now(), time.Minute); err != nil {
			t.Errorf("a delivery that does not verify: %v", err)
		}
		var b outbox.Body
		if err := json.Unmarshal(body, &b); err != nil || b.DeliveryID != r.Header.Get(outbox.HeaderDeliveryID) {
			t.Errorf("body %s: %v", body, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !failed { // the first attempt fails: it is retried
			failed = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got = append(got, delivery{b.DeliveryID, b.Instance.ID, b.Transition.Seq})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	defs := t.TempDir()
	def := fmt.Sprintf(`name: bell
initial: quiet
context:
  n: int
notify:
  - name: listener
    url: %s/hook
states:
  quiet: {on: {ring: {to: quiet, set: {n: ctx.n + 1}}}}
`, recv.URL)
	if err := os.WriteFile(filepath.Join(defs, "bell.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	child := startFsmdEnv(t, []string{"FSMD_WEBHOOK_SECRET=" + secret}, dbURL, defs)
	const instances, rings = 4, 6
	for i := range instances {
		id := fmt.Sprintf("bell-%d", i)
		if code, b := childPost(child, "/v1/instances", fmt.Appendf(nil, `{"definition": "bell", "id": %q}`, id)); code != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", id, code, b)
		}
		for range rings {
			if code, b := childPost(child, "/v1/instances/"+id+"/events", []byte(`{"event": "ring"}`)); code != http.StatusOK {
				t.Fatalf("ring %s: %d %s", id, code, b)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second) // the failed first attempt waits up to 1 s (backoff)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= instances*rings {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries after 30 s; log:\n%s", n, instances*rings, child.log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nothing more comes
	mu.Lock()
	defer mu.Unlock()
	ids := map[string]bool{}
	last := map[string]int64{}
	for _, d := range got {
		if ids[d.id] {
			t.Errorf("delivery %s twice", d.id)
		}
		ids[d.id] = true
		if d.seq != last[d.instance]+1 {
			t.Errorf("%s: seq %d after %d: out of order", d.instance, d.seq, last[d.instance])
		}
		last[d.instance] = d.seq
	}
	if len(got) != instances*rings {
		t.Errorf("%d deliveries, want %d", len(got), instances*rings)
	}
}
