package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

const (
	exportLong    = 50_000   // history rows of the instance "long"
	exportShort   = 50       // instances short-NN...
	exportEach    = 1_000    // ...with this many rows each: 100,000 rows in all
	exportPayload = 600      // bytes of text in each row's payload: about 80 MB of NDJSON
	exportRSS     = 64 << 20 // below what is written: held whole, it would not fit
)

// TestExportMemory: fsmd export writes 100,000 history rows (about 80 MB of NDJSON, one instance
// with 50,000 of them) on PostgreSQL, each instance line followed by its rows in seq order, and
// its peak resident memory stays far below what it writes: it streams.
func TestExportMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.PostgresDatabaseURL(t)
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(db, service.Options{Logger: slog.New(slog.DiscardHandler)})
	if _, err := svc.PutDefinition(ctx, "journal", []byte(apiJournal)); err != nil {
		t.Fatal(err)
	}
	// Set-based: the instances, then every row of every history in one statement each.
	text := strings.Repeat("x", exportPayload)
	for _, stmt := range []struct {
		query string
		args  []any
	}{
		{`INSERT INTO instances (id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at)
			SELECT id, 'journal', 1, 'open', '{}', n, false, 'h', now(), now(), now()
			FROM (SELECT 'long' AS id, $1::bigint AS n UNION ALL
				SELECT 'short-' || lpad(i::text, 2, '0'), $3::bigint FROM generate_series(1, $2) AS i) AS x`,
			[]any{exportLong, exportShort, exportEach}},
		{`INSERT INTO transitions (instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before,
				context_after, source, request_id, request_hash, definition_version, at, actor_kind)
			SELECT i.id, s, 'write', 'open', 'open', 0, '[]', jsonb_build_object('text', $1::text), '{}', '{}', 'api', 'r', 'h', 1, now(), 'user'
			FROM instances i, generate_series(1, i.revision) AS s`, []any{text}},
	} {
		if _, err := db.X.ExecContext(ctx, stmt.query, stmt.args...); err != nil {
			t.Fatalf("%.50s: %v", stmt.query, err)
		}
	}
	svc.Close()
	db.Close()

	cmd := exec.Command(fsmdBin, "export", "--definition", "journal", "--database-url", dbURL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read it as a consumer would, a line at a time, checking the order: an instance, then its
	// history from seq 1 without a gap.
	r := bufio.NewReaderSize(out, 64<<10)
	var (
		bytes, instances, rows int64
		current                string
		seq                    int64
		problems               []string
	)
	var peak int64 // the export's VmHWM, read as it goes (it is gone once it has written its last line)
	for {
		if (instances+rows)%1000 == 0 {
			if v, err := procStatus(cmd.Process.Pid, "VmHWM"); err == nil {
				peak = max(peak, v)
			}
		}
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull { // a long line: count it and go on
				bytes += int64(len(line))
				line, err = r.ReadSlice('\n')
			}
		}
		bytes += int64(len(line))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Instance   *struct{ ID string }
			InstanceID string `json:"instance_id"`
			History    *struct {
				Seq     int64
				Payload map[string]string
			}
		}
		if err := json.Unmarshal(line, &l); err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", instances+rows+1, err))
			break
		}
		switch {
		case l.Instance != nil:
			instances++
			current, seq = l.Instance.ID, 0
		case l.History != nil && l.InstanceID == current && l.History.Seq == seq+1 && len(l.History.Payload["text"]) == exportPayload:
			rows++
			seq++
		default:
			problems = append(problems, fmt.Sprintf("line %d out of order after %s %d: %.200s", instances+rows+1, current, seq, line))
		}
		if len(problems) > 5 {
			break
		}
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fsmd export: %v\n%s", err, stderr.String())
	}
	for _, p := range problems {
		t.Error(p)
	}
	if want := int64(exportLong + exportShort*exportEach); instances != 1+exportShort || rows != want {
		t.Errorf("%d instances, %d history rows; want %d, %d", instances, rows, 1+exportShort, want)
	}
	if want := fmt.Sprintf("fsmd export journal: %d instances, %d history rows\n", instances, rows); stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	t.Logf("fsmd export wrote %d MB (%d instances, %d history rows) with a peak RSS of %d MiB", bytes>>20, instances, rows, peak>>20)
	if peak > exportRSS {
		t.Errorf("peak RSS %d MiB, over %d MiB", peak>>20, exportRSS>>20)
	}

	// The API's stream of the longest history, from fsmd serve: its memory stays bounded too.
	defs := t.TempDir()
	if err := os.WriteFile(filepath.Join(defs, "journal.yaml"), []byte(apiJournal), 0o644); err != nil {
		t.Fatal(err)
	}
	child := startFsmd(t, dbURL, defs)
	before := rss(t, child, "VmRSS")
	// Not through the conformance check (http.DefaultTransport), which holds a whole answer to read
	// it, and under the race detector took most of this test's time.
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(child.base + "/v1/instances/long/history?format=ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var n, size int64
	for sc.Scan() {
		n++
		size += int64(len(sc.Bytes())) + 1
	}
	if err := sc.Err(); err != nil || n != exportLong || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("GET .../history?format=ndjson: %d lines (want %d), %s, %v", n, exportLong, resp.Header.Get("Content-Type"), err)
	}
	peak = rss(t, child, "VmHWM")
	t.Logf("fsmd serve streamed %d MB (%d history rows) with a peak RSS of %d MiB (%d MiB before)", size>>20, n, peak>>20, before>>20)
	// What it grew by, against what it sent: an answer held whole would be more than half of it.
	if peak-before > size/2 {
		t.Errorf("the server's peak RSS %d MiB, %d MiB over its %d MiB before, for %d MiB streamed", peak>>20, (peak-before)>>20, before>>20, size>>20)
	}
}
