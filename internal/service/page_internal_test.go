package service

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pageItem is a list row of a given size, for readPage.
type pageItem struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

// listOf makes a list whose i-th row holds sizes[i] bytes of text; reads counts the rows fetched.
func listOf(sizes []int, reads *int) func(last *pageItem, n, maxBytes int) ([]pageItem, error) {
	rows := make([]pageItem, len(sizes))
	for i, s := range sizes {
		rows[i] = pageItem{N: i + 1, Text: strings.Repeat("<", s)}
	}
	return func(last *pageItem, n, maxBytes int) ([]pageItem, error) {
		after := 0
		if last != nil {
			after = last.N
		}
		var got []pageItem
		total := 0
		for _, r := range rows[after:min(len(rows), after+n)] { // as persistence's lists stop
			got, total = append(got, r), total+pageSize(r)
			if total > maxBytes {
				break
			}
		}
		*reads += len(got)
		return got, nil
	}
}

func pageSize(r pageItem) int { return len(r.Text) + 256 }

func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// TestReadPage: a page ends at its limit, or before its JSON would pass MaxPageBytes, and its next
// continues it; the database is never asked for much more than the page holds.
func TestReadPage(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	tests := []struct {
		name      string
		sizes     []int
		limit     int
		wantItems int
		wantNext  string
		maxReads  int // rows fetched, at most
	}{
		{"small rows, the limit ends the page", repeat(300, 10), 100, 100, "100", 101},
		{"small rows, the last page", repeat(30, 10), 100, 30, "", 30},
		{"the default limit", repeat(300, 10), 0, DefaultPageLimit, "100", 101},
		{"a limit over the most is the most", repeat(1200, 1), 5000, MaxPageLimit, "1000", 1001},
		{"1 MiB rows: four do not fit with the envelope", repeat(10, mib), 1000, 3, "3", 5},
		{"a row over the bound is sent alone", []int{5 * mib, 10}, 1000, 1, "1", 2},
		{"small rows, then large ones", append(repeat(16, 10), repeat(100, mib)...), 1000, 19, "19", 16 + 5},
		{"exactly at the end", repeat(3, mib), 1000, 3, "", 3},
		{"an empty list", nil, 100, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reads := 0
			page, err := readPage(pageSpec[pageItem, pageItem]{
				limit: tt.limit,
				fetch: listOf(tt.sizes, &reads),
				size:  pageSize,
				item:  func(r pageItem) (pageItem, error) { return r, nil },
				key:   func(r pageItem) string { return strconv.Itoa(r.N) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != tt.wantItems || page.Next != tt.wantNext {
				t.Errorf("%d items, next %q; want %d, %q", len(page.Items), page.Next, tt.wantItems, tt.wantNext)
			}
			if reads > tt.maxReads {
				t.Errorf("%d rows read for the page, want at most %d", reads, tt.maxReads)
			}
			b, err := encodeItem(page) // as the server writes it: no HTML escaping
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxPageBytes && len(page.Items) > 1 {
				t.Errorf("the page is %d bytes of JSON, over %d", len(b), MaxPageBytes)
			}
			var back Page[pageItem]
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("the page's JSON: %v", err)
			}
			if !slices.Equal(back.Items, page.Items) || back.Next != page.Next {
				t.Errorf("the page's JSON reads back as %d items, next %q", len(back.Items), back.Next)
			}
			if len(page.Items) > 0 && !strings.Contains(string(b), `"text":"<`) {
				t.Errorf("the page's JSON escapes HTML: %.60s", b)
			}
		})
	}
}

// TestReadPageChain: following next from page to page gives every row once, in order.
func TestReadPageChain(t *testing.T) {
	t.Parallel()
	sizes := []int{10, 3 << 20, 10, 10, 2 << 20, 2 << 20, 1 << 20, 10}
	reads := 0
	fetch := listOf(sizes, &reads)
	var seen []int
	after := 0
	for range len(sizes) + 1 {
		page, err := readPage(pageSpec[pageItem, pageItem]{
			limit: 1000,
			fetch: func(last *pageItem, n, maxBytes int) ([]pageItem, error) {
				if last == nil {
					last = &pageItem{N: after}
				}
				return fetch(last, n, maxBytes)
			},
			size: pageSize,
			item: func(r pageItem) (pageItem, error) { return r, nil },
			key:  func(r pageItem) string { return strconv.Itoa(r.N) },
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			seen = append(seen, it.N)
		}
		if page.Next == "" {
			break
		}
		after, _ = strconv.Atoi(page.Next)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(seen, want) {
		t.Errorf("the pages hold %v, want %v", seen, want)
	}
}
