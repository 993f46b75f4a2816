package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The bound on answers (docs/api.md, "Bounds"): every page of every list holds at most its limit
// of rows and at most 4 MiB of JSON, ending early with `next` when its rows are large.

const apiMaxPage = 4 << 20

// apiJournal is a definition whose one event takes a large payload and stays where it is: its
// history grows by a row of the payload's size per event, its context not at all.
const apiJournal = `name: journal
initial: open
events:
  write: {text: string}
states:
  open:
    on:
      write: open
      close: closed
  closed: {final: true}
`

// TestAPIPagesBoundedByBytes: a history of 1 MB payloads, instances with large contexts and
// versions with large sources each come in pages of at most 4 MiB, which chain to the whole list.
func TestAPIPagesBoundedByBytes(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.do(t, "PUT", "/v1/definitions/journal", apiJournal, "Content-Type", "application/yaml")
		env.create(t, "journal", "fat-1", nil)
		// `<` is one byte in a request; a JSON writer escaping HTML would send six for it.
		text := strings.Repeat("<", 1_000_000)
		const events = 6                                                  // 6 MB: two pages
		body := `{"event": "write", "payload": {"text": "` + text + `"}}` // json.Marshal would escape the <s
		for range events {
			apiWant[apiEventResult](t, env.do(t, "POST", "/v1/instances/fat-1/events", body), http.StatusOK)
		}
		r := env.do(t, "GET", "/v1/instances/fat-1/history?limit=1000", nil)
		page := apiWant[apiPage[apiHistoryEntry]](t, r, http.StatusOK)
		if len(r.body) > apiMaxPage || len(page.Items) == 0 || page.Next == "" || len(page.Items) >= events {
			t.Fatalf("a history page of 1 MB rows: %d bytes, %d items, next %q; want at most %d bytes, and a next",
				len(r.body), len(page.Items), page.Next, apiMaxPage)
		}
		all := env.history(t, "fat-1", 1000) // checks each page's bound and that they chain
		if len(all) != events {
			t.Fatalf("the history's pages hold %d rows, want %d", len(all), events)
		}
		for i, e := range all {
			if e.Seq != int64(i+1) || e.Payload["text"] != text {
				t.Fatalf("row %d: seq %d, a payload of %d bytes", i, e.Seq, len(fmt.Sprint(e.Payload["text"])))
			}
		}

		// Contexts of 200 KB: 25 instances are about 5 MB, two pages.
		note := strings.Repeat("n", 200_000)
		for i := range 25 {
			env.create(t, "door", fmt.Sprintf("wide-%02d", i), map[string]any{"code": "1", "note": note})
		}
		insts := env.list(t, url.Values{"definition": {"door"}}, 1000)
		if len(insts) != 25 {
			t.Fatalf("the pages of instances hold %d, want 25", len(insts))
		}

		// Versions with sources near the body limit: 6 of them are about 5.4 MB.
		for i := range 6 {
			src := apiJournal + "# " + strings.Repeat(fmt.Sprint(i), 900_000) + "\n"
			env.do(t, "PUT", "/v1/definitions/journal", src, "Content-Type", "application/yaml")
		}
		var versions []int
		after := ""
		for range 10 {
			r := env.do(t, "GET", "/v1/definitions/journal/versions?limit=1000"+after, nil)
			page := apiWant[apiPage[struct{ Version int }]](t, r, http.StatusOK)
			if len(r.body) > apiMaxPage {
				t.Fatalf("a page of versions is %d bytes", len(r.body))
			}
			for _, v := range page.Items {
				versions = append(versions, v.Version)
			}
			if page.Next == "" {
				break
			}
			after = "&after=" + page.Next
		}
		if fmt.Sprint(versions) != "[1 2 3 4 5 6 7]" {
			t.Fatalf("the pages of versions hold %v, want 1 to 7", versions)
		}

		// A limit still ends a page of small rows, with a next.
		r = env.do(t, "GET", "/v1/definitions?limit=1", nil)
		defs := apiWant[apiPage[struct{ Name string }]](t, r, http.StatusOK)
		if len(defs.Items) != 1 || defs.Next != defs.Items[0].Name {
			t.Fatalf("GET /v1/definitions?limit=1: %s", r)
		}
		r = env.do(t, "GET", "/v1/definitions?after="+url.QueryEscape(defs.Next), nil)
		rest := apiWant[apiPage[struct{ Name string }]](t, r, http.StatusOK)
		if len(rest.Items) == 0 || rest.Items[0].Name <= defs.Next || rest.Next != "" {
			t.Fatalf("the page after %q: %s", defs.Next, r)
		}
	})
}

// TestAPIMigrationsPage: a definition's migrations page like every list: limit, then after the
// page's next, newest first, each once.
func TestAPIMigrationsPage(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		env.do(t, "PUT", "/v1/definitions/journal", apiJournal, "Content-Type", "application/yaml")
		env.create(t, "journal", "j-1", nil)
		for i := range 3 { // each new version migrates the running instance (policy auto)
			src := apiJournal + fmt.Sprintf("# version %d\n", i+2)
			apiWant[map[string]any](t, env.do(t, "PUT", "/v1/definitions/journal", src, "Content-Type", "application/yaml"), http.StatusCreated)
		}
		// A version registered while a migration runs starts its own once that one is done: wait
		// until the instance is on the last version and no migration runs.
		type status struct{ ID, Status string }
		var all apiPage[status]
		settled := func() bool {
			all = apiWant[apiPage[status]](t, env.do(t, "GET", "/v1/definitions/journal/migrations?limit=1000", nil), http.StatusOK)
			for _, m := range all.Items {
				if m.Status == "running" {
					return false
				}
			}
			return env.instance(t, "j-1").Version == 4
		}
		for deadline := time.Now().Add(10 * time.Second); !settled() && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		}
		if len(all.Items) < 2 || all.Next != "" { // two or more: versions registered during a migration may share the next one
			t.Fatalf("all the migrations: %d, next %q; want 2 or more and no next", len(all.Items), all.Next)
		}
		var ids, want []string
		for _, m := range all.Items {
			want = append(want, m.ID)
		}
		after := ""
		for range len(want) + 2 {
			r := env.do(t, "GET", "/v1/definitions/journal/migrations?limit=1"+after, nil)
			page := apiWant[apiPage[status]](t, r, http.StatusOK)
			for _, m := range page.Items {
				ids = append(ids, m.ID)
			}
			if page.Next == "" {
				break
			}
			if len(page.Items) != 1 || page.Next != page.Items[0].ID {
				t.Fatalf("%s: next %q is not the page's last id", r, page.Next)
			}
			after = "&after=" + url.QueryEscape(page.Next)
		}
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Fatalf("the pages hold %v; the list is %v", ids, want)
		}
	})
}
