package persistence_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestRedact: every form a password can take in a database URL or connection string is hidden;
// the rest, and SQLite paths, are shown as they are.
func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://fsmd:s3cret@db:5432/fsmd?sslmode=disable", "postgres://fsmd:***@db:5432/fsmd?sslmode=disable"},
		{"postgresql://fsmd:p%40ss%2Fw@db/fsmd", "postgresql://fsmd:***@db/fsmd"},
		{"postgres://fsmd:a@b@db/fsmd", "postgres://fsmd:***@db/fsmd"}, // the last "@" ends the user information, as url.Parse says
		{"postgres://fsmd@db/fsmd", "postgres://fsmd@db/fsmd"},
		{"postgres://db/fsmd?user=fsmd&password=s3cret&sslmode=require", "postgres://db/fsmd?user=fsmd&password=***&sslmode=require"},
		{"postgres://db/fsmd?PASSWORD=s3cret", "postgres://db/fsmd?PASSWORD=***"},
		{"postgres://db/fsmd?sslpassword=s3cret&pass%77ord=s3cret", "postgres://db/fsmd?sslpassword=***&pass%77ord=***"},
		{"postgres://u:s3cret@db/fsmd?password=s3cret#s3cret", "postgres://u:***@db/fsmd?password=***#s3cret"}, // a fragment is no password
		{"postgres://u:s3/cret@db/fsmd", "postgres://***"},                                                     // unparsable: the password's end is unknown
		{"postgres://u:s3cret@db:bad/fsmd", "postgres://***"},
		{"host=db user=fsmd password=s3cret dbname=fsmd", "host=db user=fsmd password=*** dbname=fsmd"},
		{"password=s3cret host=db", "password=*** host=db"},
		{"host=db password = s3cret", "host=db password = ***"},
		{"host=db password='s3 cret' dbname=fsmd", "host=db password=*** dbname=fsmd"},
		{`host=db password='it\'s s3cret' dbname=fsmd`, "host=db password=*** dbname=fsmd"},
		{`host=db password=s3\ cret dbname=fsmd`, "host=db password=*** dbname=fsmd"},
		{"host=db password='s3 cret", "host=db password=***"},            // unterminated: to the end
		{"host=db password=s3 cret dbname=fsmd", "host=db password=***"}, // unparsable: nothing after the key
		{"host=db\tsslpassword=s3cret", "host=db\tsslpassword=***"},
		{"fsmd.db", "fsmd.db"},
		{"/var/lib/fsmd/fsmd.db", "/var/lib/fsmd/fsmd.db"},
		{"sqlite:/tmp/a b.db?_busy_timeout=10", "sqlite:/tmp/a b.db?_busy_timeout=10"},
		{"file:/tmp/x.db?mode=rwc", "file:/tmp/x.db?mode=rwc"},
		{"sqlite:///var/lib/fsmd.db", "sqlite:///var/lib/fsmd.db"},
	} {
		if got := persistence.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestParseURLConninfo: a key=value connection string is PostgreSQL's (binary_parameters added
// unless set), and one that cannot be parsed is an error that quotes none of it.
func TestParseURLConninfo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, dsn string }{
		{"host=db user=fsmd password='a b' dbname=fsmd", "host=db user=fsmd password='a b' dbname=fsmd binary_parameters=yes"},
		{" dbname = fsmd binary_parameters=no ", " dbname = fsmd binary_parameters=no "},
		{`user=space\ man host=/tmp/pg`, `user=space\ man host=/tmp/pg binary_parameters=yes`},
	} {
		d, driver, dsn, err := persistence.ParseURL(tc.in)
		if err != nil || d != persistence.Postgres || driver != "postgres" || dsn != tc.dsn {
			t.Errorf("%q: %s %s %q %v, want postgres %q", tc.in, d, driver, dsn, err, tc.dsn)
		}
	}
	for _, in := range []string{
		"host=db password=my s3cret",           // a value with a space, unquoted: "s3cret" reads as a key
		"host=db password='s3cret",             // no closing quote
		`host=db password=s3cret\`,             // a backslash at the end
		"postgres://fsmd:s3/cret@db/fsmd",      // an unescaped slash: "cret@db" looks like a port
		"postgres://fsmd:s3cret@db:5432x/fsmd", // a bad port after a password
		"postgres://db:5432x/fsmd?password=s3cret",
	} {
		_, _, _, err := persistence.ParseURL(in)
		if err == nil || strings.Contains(err.Error(), "s3") || strings.Contains(err.Error(), "cret") {
			t.Errorf("%q: %v, want an error without the password", in, err)
		}
	}
	if _, _, _, err := persistence.ParseURL("postgres://db:5432x/fsmd"); err == nil || !strings.Contains(err.Error(), `invalid port ":5432x"`) {
		t.Errorf("a bad port without a password: %v, want url.Parse's reason", err)
	}
}

// TestOpenConninfo: fsmd opens PostgreSQL from a key=value connection string as from a URL.
func TestOpenConninfo(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.PostgresDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	info := "host=" + u.Hostname() + " port=" + u.Port() + " dbname=" + strings.TrimPrefix(u.Path, "/") +
		" user=" + u.User.Username() + " sslmode=disable"
	if pw, ok := u.User.Password(); ok {
		info += " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
	}
	db, err := persistence.Open(context.Background(), info)
	if err != nil {
		t.Fatalf("Open(%s): %v", persistence.Redact(info), err)
	}
	defer db.Close()
	if db.Dialect != persistence.Postgres {
		t.Fatalf("dialect %s", db.Dialect)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
