package server

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/service"
)

// Limits of what a request may name or ask for.
const (
	maxIDLen     = ident.MaxLength // characters of an id or name, in a path, a query or a body
	defaultLimit = service.DefaultPageLimit
	// historyPageLimit is the default page of the lists of what was done to a definition: its
	// migrations and its bulks.
	historyPageLimit = 20
	maxLimit         = service.MaxPageLimit
)

// checkID checks an id or a name a client sends (in a path, a body or a query) by ident.Check's
// rule. what names it in the error.
func checkID(what, v string) error {
	if err := ident.Check(what, v); err != nil {
		return invalid("%s", err)
	}
	return nil
}

// pathID returns the path parameter name, decoded and checked. echo matches the escaped path when
// the request has one that differs from the decoded path (an escaped slash, say) and hands out
// the escaped value then: decode it in that case, and only then (decoding twice would turn "%25"
// into "%").
func pathID(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(v)
		if err != nil {
			return "", invalid("path parameter %s is not properly escaped", name)
		}
		v = u
	}
	if err := checkID("path parameter "+name, v); err != nil {
		return "", err
	}
	return v, nil
}

// pathVersion returns a version number in the path: a positive integer.
func pathVersion(c echo.Context, name string) (int, error) {
	v, err := strconv.Atoi(c.Param(name))
	if err != nil || v < 1 {
		return 0, invalid("path parameter %s must be a positive integer", name)
	}
	return v, nil
}

// query is a request's query string, checked: only the parameters a route knows, each at most once.
// Unknown parameters are refused rather than ignored, as unknown JSON fields are: a misspelled
// filter would otherwise return everything.
type query url.Values

func parseQuery(c echo.Context, known ...string) (query, error) {
	vs, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return nil, invalid("malformed query string: %v", err)
	}
	return checkQuery(vs, known...)
}

// checkQuery checks parsed parameters as parseQuery does.
func checkQuery(vs url.Values, known ...string) (query, error) {
	for name, v := range vs {
		if !slices.Contains(known, name) {
			if len(known) == 0 {
				return nil, invalid("unknown query parameter %q (this route takes none)", name)
			}
			return nil, invalid("unknown query parameter %q (the parameters are: %s)", name, strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return nil, invalid("query parameter %s is given %d times", name, len(v))
		}
	}
	return query(vs), nil
}

// get returns the value of a parameter, "" when it is absent or empty (both mean no value).
func (q query) get(name string) string { return url.Values(q).Get(name) }

// id returns a parameter that names something (an id, a definition, a state), checked.
func (q query) id(name string) (string, error) {
	v := q.get(name)
	if v == "" {
		return "", nil
	}
	if err := checkID("query parameter "+name, v); err != nil {
		return "", err
	}
	return v, nil
}

// int returns an integer parameter in [lo, hi], def when absent.
func (q query) int(name string, lo, hi, def int64) (int64, error) {
	s := q.get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		if hi == maxInt64 {
			return 0, invalid("query parameter %s must be an integer of at least %d", name, lo)
		}
		return 0, invalid("query parameter %s must be an integer from %d to %d", name, lo, hi)
	}
	return v, nil
}

const maxInt64 = 1<<63 - 1

// limit returns the page size: 1 to maxLimit, defaultLimit when absent.
func (q query) limit() (int, error) {
	v, err := q.int("limit", 1, maxLimit, defaultLimit)
	return int(v), err
}

// page reads the parameters of a list paged by id: after (an id, "" for the first page) and limit
// (def when absent).
func (q query) page(def int64) (after string, limit int, err error) {
	n, err := q.int("limit", 1, maxLimit, def)
	if err != nil {
		return "", 0, err
	}
	after, err = q.id("after")
	return after, int(n), err
}

// flag returns a boolean parameter: true or false, false when absent.
func (q query) flag(name string) (bool, error) {
	switch q.get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, invalid("query parameter %s must be true or false", name)
}

// version returns the version parameter: a positive integer, 0 when absent.
func (q query) version() (int, error) {
	v, err := q.int("version", 1, 1<<31-1, 0)
	return int(v), err
}

// singleHeader returns a request header given at most once; present tells whether it was given.
func singleHeader(c echo.Context, name string) (v string, present bool, err error) {
	vs := c.Request().Header.Values(name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", true, invalid("header %s is given %d times", name, len(vs))
}

// idempotencyKey returns the Idempotency-Key header, "" when absent.
func idempotencyKey(c echo.Context) (string, error) {
	v, present, err := singleHeader(c, "Idempotency-Key")
	if err != nil || !present {
		return "", err
	}
	if !printableHeader(v) {
		return "", invalid("header Idempotency-Key must be 1 to %d printable ASCII characters", maxHeaderValue)
	}
	return v, nil
}

// ifMatch returns the revision of the If-Match header, nil when absent (or "*", which any existing
// instance matches). It takes an entity tag as ETag gives it ("3"), its weak form (W/"3"), and the
// bare number (3) that a hand-written request is likely to send; a list of several is refused,
// since an instance has one revision.
func ifMatch(c echo.Context) (*int64, error) {
	v, present, err := singleHeader(c, "If-Match")
	if err != nil || !present {
		return nil, err
	}
	s := strings.TrimSpace(v)
	if s == "*" {
		return nil, nil
	}
	weak := strings.HasPrefix(s, "W/")
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	} else if weak {
		s = "" // W/ is the prefix of a quoted tag only
	}
	rev, err := strconv.ParseInt(s, 10, 64)
	if err != nil || rev < 0 || s == "" || s[0] == '+' {
		return nil, invalid(`header If-Match must be one revision: 3, "3" or W/"3" (got %q)`, v)
	}
	return &rev, nil
}

// etag is the entity tag of a revision.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }
