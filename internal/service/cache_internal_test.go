package service

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

func TestCache(t *testing.T) {
	t.Parallel()
	row := func(id string, rev int64, ctxBytes int) persistence.InstanceRow {
		return persistence.InstanceRow{ID: id, Revision: rev, Context: []byte(strings.Repeat("x", ctxBytes))}
	}
	size := func(r persistence.InstanceRow) int { return cacheOverhead + len(r.ID) + len(r.Context) }
	one := size(row("aa", 0, 100))

	tests := []struct {
		name     string
		max      int
		puts     []persistence.InstanceRow
		drop     string
		get      string // after the puts (and the drop)
		want     int64  // the revision got; -1 for none
		wantRows int
	}{
		{name: "kept", max: 100 * one, puts: []persistence.InstanceRow{row("aa", 3, 100)}, get: "aa", want: 3, wantRows: 1},
		{name: "a later revision replaces", max: 100 * one,
			puts: []persistence.InstanceRow{row("aa", 3, 100), row("aa", 4, 100)}, get: "aa", want: 4, wantRows: 1},
		{name: "an earlier revision does not", max: 100 * one,
			puts: []persistence.InstanceRow{row("aa", 4, 100), row("aa", 3, 100)}, get: "aa", want: 4, wantRows: 1},
		{name: "dropped", max: 100 * one, puts: []persistence.InstanceRow{row("aa", 3, 100)}, drop: "aa", get: "aa", want: -1},
		{name: "the least recently used goes first", max: 64 * one,
			puts: func() []persistence.InstanceRow {
				var rs []persistence.InstanceRow
				for i := range 65 {
					rs = append(rs, row(fmt.Sprintf("%02d", i), int64(i), 100))
				}
				return rs
			}(), get: "00", want: -1, wantRows: 64},
		{name: "an outsize row is not kept", max: 64 * one,
			puts: []persistence.InstanceRow{row("aa", 1, 100), row("aa", 2, 2*one)}, get: "aa", want: -1},
		{name: "off", max: 0, puts: []persistence.InstanceRow{row("aa", 1, 1)}, get: "aa", want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(tt.max)
			for _, r := range tt.puts {
				c.put(r)
			}
			if tt.drop != "" {
				c.drop(tt.drop)
			}
			got, ok := c.get(tt.get)
			if (tt.want < 0 && ok) || (tt.want >= 0 && (!ok || got.Revision != tt.want)) {
				t.Errorf("get %q: revision %d, %v; want %d", tt.get, got.Revision, ok, tt.want)
			}
			if len(c.byID) != tt.wantRows || c.order.Len() != tt.wantRows {
				t.Errorf("%d rows (%d in order), want %d", len(c.byID), c.order.Len(), tt.wantRows)
			}
			sum := 0
			for _, e := range c.byID {
				sum += e.Value.(*cached).size
			}
			if sum != c.size || c.size > max(tt.max, 0) {
				t.Errorf("size %d, rows sum %d, bound %d", c.size, sum, tt.max)
			}
		})
	}
}
