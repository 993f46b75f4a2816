package persistence_test

import (
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

func TestScanTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 1, 2, 3, 4, 5, 6007, time.UTC)
	for _, tc := range []struct {
		name string
		src  any
		want time.Time
		err  bool
	}{
		{"time.Time in another zone (PostgreSQL)", want.In(time.FixedZone("X", -3600)), want, false},
		{"fsmd's SQLite text", "2026-01-02T03:04:05.000006007Z", want, false},
		{"as bytes", []byte("2026-01-02T03:04:05.000006007Z"), want, false},
		{"RFC 3339 with an offset", "2026-01-02T04:04:05.000006007+01:00", want, false},
		{"SQLite's own format", "2026-01-02 03:04:05.000006007+00:00", want, false},
		{"modernc's default format", "2026-01-02 03:04:05.000006007 +0000 UTC", want, false},
		{"no zone: UTC", "2026-01-02 03:04:05", want.Truncate(time.Second), false},
		{"NULL", nil, time.Time{}, false},
		{"not a time", "yesterday", time.Time{}, true},
		{"a number", int64(1), time.Time{}, true},
	} {
		got, err := persistence.ScanTime(tc.src)
		if (err != nil) != tc.err {
			t.Errorf("%s: error %v, want one: %v", tc.name, err, tc.err)
			continue
		}
		if tc.err {
			continue
		}
		if tm := got.Time(); !tm.Equal(tc.want) || tm.Location() != time.UTC {
			t.Errorf("%s: %v, want %v in UTC", tc.name, tm, tc.want)
		}
	}
}
