package server

import (
	"net/url"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// ctxPrefix begins the query parameters that filter on a context field (docs/api.md, GET
// /v1/instances): ctx.<path>=<value>, or ctx.<path>[gt]=<value> and the other comparisons.
const ctxPrefix = "ctx."

// ctxParamsHelp names the ctx. parameters in the list of a route's parameters.
const ctxParamsHelp = "ctx.<path>[op]"

// parseFindQuery is parseQuery for a route that also takes ctx. filters: it returns them apart,
// as the query gave them (the service types them by the definition), in the order of their names.
func parseFindQuery(c echo.Context, known ...string) (query, []service.CtxCondition, error) {
	vs, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return nil, nil, invalid("malformed query string: %v", err)
	}
	rest := url.Values{}
	var conds []service.CtxCondition
	for name, v := range vs {
		if !strings.HasPrefix(name, ctxPrefix) {
			rest[name] = v
			continue
		}
		if len(v) > 1 {
			return nil, nil, invalid("query parameter %s is given %d times", name, len(v))
		}
		if v[0] == "" { // an empty value means none, as for every parameter
			continue
		}
		path, op := strings.TrimPrefix(name, ctxPrefix), ""
		if i := strings.IndexByte(path, '['); i >= 0 {
			if !strings.HasSuffix(path, "]") {
				return nil, nil, invalid("query parameter %s: a comparison is written at the end, as ctx.<path>[gt]", name)
			}
			path, op = path[:i], path[i+1:len(path)-1]
		}
		if path == "" {
			return nil, nil, invalid("query parameter %s names no field: write ctx.<path>=<value>", name)
		}
		conds = append(conds, service.CtxCondition{Param: name, Path: path, Op: op, Value: v[0]})
	}
	sort.Slice(conds, func(i, j int) bool { return conds[i].Param < conds[j].Param })
	q, err := checkQuery(rest, append(known, ctxParamsHelp)...)
	return q, conds, err
}
