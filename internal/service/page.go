package service

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Pages are bounded twice: by rows (limit, at most MaxPageLimit) and by bytes. The rows of a list
// grow with stored data (a history row carries a payload of up to a request body and two contexts
// of up to MaxContextBytes), so a page of 1,000 of them could be gigabytes: a page ends early, with
// `next`, before its JSON would pass MaxPageBytes. The same rule holds for every list (instances,
// history, dead letters, versions), and it is applied in one place, readPage.
const (
	// MaxPageBytes bounds the JSON of one page of any list the API answers.
	MaxPageBytes = 4 << 20
	// DefaultPageLimit and MaxPageLimit are the rows of a page when no limit is asked for, and the
	// most a limit may ask for.
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
	// pageEnvelope is room kept for what surrounds the items: {"items":[...],"next":"..."} with an
	// id of the longest kind.
	pageEnvelope = 1 << 10
	// firstBatch is how many rows the first read of a page asks for; later reads ask for up to
	// twice as many as the one before, and no more than the bytes left can hold at the size of the
	// largest row seen. Each read also stops scanning once its rows pass the bytes left, so memory
	// stays about one page; the batches keep what the database sends and the driver discards (on
	// PostgreSQL it reads a result to its end) near what the page holds.
	firstBatch = 16
)

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultPageLimit
	case n > MaxPageLimit:
		return MaxPageLimit
	}
	return n
}

// pageSpec says how to read one list: fetch reads at most n rows after last (nil: from the
// start), in key order, stopping after the row whose size takes them past maxBytes; size
// estimates a row's bytes as JSON (its stored JSON and text: persistence's Bytes); item converts
// a row and key names an item for `next`.
type pageSpec[R, T any] struct {
	limit int
	fetch func(last *R, n, maxBytes int) ([]R, error)
	size  func(R) int
	item  func(R) (T, error)
	key   func(T) string
}

// readPage reads a page of at most limit items and at most MaxPageBytes of JSON. Rows are read in
// growing batches until limit+1 rows (the one past the page says there is a next), the end, or
// more stored bytes than a page holds (then the page has a next, which may lead to an empty page
// when the list ended there); then the items are encoded one by one, as the answer writes
// them, and the page ends before the one that would take it past MaxPageBytes. The first item is
// always kept, so that a page always moves on (the other bounds keep any one item well under
// MaxPageBytes).
func readPage[R, T any](p pageSpec[R, T]) (Page[T], error) {
	limit := clampLimit(p.limit)
	var rows []R
	stored, largest, batch := 0, 1, firstBatch
	more := false // there may be rows after those read
	for len(rows) <= limit {
		n := min(batch, limit+1-len(rows), (MaxPageBytes-stored)/largest+1)
		var last *R
		if len(rows) > 0 {
			last = &rows[len(rows)-1]
		}
		got, err := p.fetch(last, n, MaxPageBytes-stored)
		if err != nil {
			return Page[T]{}, err
		}
		for _, r := range got {
			size := p.size(r)
			rows, stored, largest = append(rows, r), stored+size, max(largest, size)
		}
		if stored > MaxPageBytes { // the read stopped for the bytes, or could have
			more = true
			break
		}
		if len(got) < n {
			break // the end of the list
		}
		batch *= 2
	}
	if len(rows) > limit {
		rows, more = rows[:limit], true
	}
	page := Page[T]{Items: make([]T, 0, len(rows))}
	used := pageEnvelope
	for i, r := range rows {
		var zero R
		rows[i] = zero // the stored bytes are not needed past here: a page's memory is about one copy
		it, err := p.item(r)
		if err != nil {
			return Page[T]{}, err
		}
		b, err := encodeItem(it)
		if err != nil {
			return Page[T]{}, err
		}
		if len(page.Items) > 0 && used+len(b)+1 > MaxPageBytes {
			more = true
			break
		}
		used += len(b) + 1
		page.Items, page.raw = append(page.Items, it), append(page.raw, b)
	}
	if more && len(page.Items) > 0 {
		page.Next = p.key(page.Items[len(page.Items)-1])
	}
	return page, nil
}

// encodeItem is an item's JSON as the API writes it: without HTML escaping (the server's JSON
// serializer does the same, so the bytes measured are the bytes sent).
func encodeItem(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding a page's item: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MarshalJSON writes the page as WriteJSON does.
func (p Page[T]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	err := p.WriteJSON(&b)
	return b.Bytes(), err
}

// WriteJSON writes the page's JSON to w, from the items' JSON as readPage measured it when it has
// it: the server streams a page so, without the copies of it that json.Marshal would make.
func (p Page[T]) WriteJSON(w io.Writer) error {
	if p.raw == nil || len(p.raw) != len(p.Items) {
		type plain Page[T] // without the methods
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(plain(p))
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"items":[`)
	for i, r := range p.raw {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.Write(r)
	}
	bw.WriteByte(']')
	if p.Next != "" {
		next, err := json.Marshal(p.Next)
		if err != nil {
			return err
		}
		bw.WriteString(`,"next":`)
		bw.Write(next)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}
