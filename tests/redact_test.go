package tests

import (
	"net/url"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// redactSecret is the password the tests below give: PostgreSQL trusts the test's connections, so
// any password connects, and none may be seen in fsmd's output.
const redactSecret = "s3cret-never-logged"

// TestRedactServeLog: fsmd serve logs the database it serves without its password, whichever way
// the password is given: in the URL's user information, as ?password=, or in a key=value
// connection string.
func TestRedactServeLog(t *testing.T) {
	t.Parallel()
	base := dbtest.PostgresDatabaseURL(t)
	pu, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	userinfo := *pu
	userinfo.User = url.UserPassword(pu.User.Username(), redactSecret)
	conninfo := "host=" + pu.Hostname() + " port=" + pu.Port() + " dbname=" + strings.TrimPrefix(pu.Path, "/") +
		" user=" + pu.User.Username() + " sslmode=disable password='" + redactSecret + "'"
	for _, tc := range []struct{ name, url, shown string }{
		{"userinfo", userinfo.String(), ":***@"},
		{"query", base + "&password=" + redactSecret, "password=***"},
		{"key=value", conninfo, "password=***"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			child := startFsmd(t, tc.url, t.TempDir())
			child.kill()
			log := child.log.tail()
			if strings.Contains(log, redactSecret) {
				t.Errorf("the password is in the log:\n%s", log)
			}
			if !strings.Contains(log, `"msg":"fsmd serving"`) || !strings.Contains(log, tc.shown) {
				t.Errorf("the start-up line does not show the database as %q:\n%s", tc.shown, log)
			}
		})
	}
}

// TestRedactErrors: when the database cannot be opened, serve, migrate and stats name it in their
// error without its password.
func TestRedactErrors(t *testing.T) {
	t.Parallel()
	defs := t.TempDir()
	for _, u := range []string{
		"postgres://fsmd:" + redactSecret + "@127.0.0.1:1/fsmd?sslmode=disable", // nothing listens on port 1
		"postgres://127.0.0.1:1/fsmd?sslmode=disable&password=" + redactSecret,
		"host=127.0.0.1 port=1 dbname=fsmd sslmode=disable password=" + redactSecret,
		"host=127.0.0.1 port=1 password=" + redactSecret + " with a space", // cannot be parsed
		"postgres://fsmd:" + redactSecret + "/x@127.0.0.1:1/fsmd",          // cannot be parsed
	} {
		for _, args := range [][]string{
			{"serve", "--addr", "127.0.0.1:0", "--database-url", u, "--definitions", defs},
			{"migrate", "plan", "x", "--database-url", u, "--definitions", defs},
			{"stats", "x", "--database-url", u},
		} {
			res := fsmd(t, args...)
			if res.code == 0 || strings.Contains(res.stdout+res.stderr, "s3cret") {
				t.Errorf("fsmd %s: want a failure without the password:\n%s", args[0], res)
			}
		}
	}
}
