// Command gen writes the OpenAPI 3 document of the API from the Swagger 2.0 document swag made:
//
//	go run ./internal/apidoc/gen api/openapi/swagger.json api/openapi/openapi.json
//
// `make openapi` runs it after swag.
package main

import (
	"fmt"
	"os"

	"github.com/fsmd-io/fsmd/internal/apidoc"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen SWAGGER2.json OPENAPI3.json")
		os.Exit(2)
	}
	in, err := os.ReadFile(os.Args[1])
	if err == nil {
		var out []byte
		if out, err = apidoc.FromSwagger(in); err == nil {
			err = os.WriteFile(os.Args[2], out, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
