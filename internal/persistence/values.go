package persistence

import (
	"database/sql"
	"fmt"
	"time"
)

// sqliteTimeLayout is how SQLite stores times: UTC RFC 3339 with nanoseconds, fixed width, so the
// text sorts as the times do.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// timeArg is a time as a query argument of dialect d: on PostgreSQL a time.Time truncated to the
// microsecond (what timestamptz keeps; PostgreSQL itself would round), on SQLite its UTC text.
func timeArg(d Dialect, t time.Time) any {
	if d == SQLite {
		return t.UTC().Format(sqliteTimeLayout)
	}
	return t.UTC().Truncate(time.Microsecond)
}

// dbTime scans a time column of either dialect into a UTC time.Time: PostgreSQL's timestamptz
// arrives as a time.Time (in the session's time zone), SQLite's as text.
type dbTime time.Time

// sqliteTimeLayouts are tried in turn on SQLite text: the layout fsmd writes first, then what
// SQLite's own functions or modernc's default time format would write.
var sqliteTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 -0700 MST", // modernc's default (time.Time.String)
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// Scan implements sql.Scanner.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*t = dbTime(v.UTC())
		return nil
	case nil:
		*t = dbTime(time.Time{})
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("persistence: cannot scan %T into a time", src)
}

func (t *dbTime) parse(s string) error {
	for _, layout := range sqliteTimeLayouts {
		if p, err := time.Parse(layout, s); err == nil {
			*t = dbTime(p.UTC())
			return nil
		}
	}
	return fmt.Errorf("persistence: cannot parse %q as a time", s)
}

// Time returns the time.
func (t dbTime) Time() time.Time { return time.Time(t) }

var _ sql.Scanner = (*dbTime)(nil)

// jsonArg is a JSON document as a query argument: text (lib/pq with binary_parameters would send
// []byte as binary data, which jsonb does not accept), def when b is empty.
func jsonArg(b []byte, def string) any {
	if len(b) == 0 {
		return def
	}
	return string(b)
}

// jsonOrNull is b as an argument, NULL for nil.
func jsonOrNull(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// nullString is s as an argument, NULL for "".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullInt is n as an argument, NULL for 0.
func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}
