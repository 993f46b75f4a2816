// Command fsmd is the rule-driven state-machine service: it validates definitions, runs their
// transition tables, and (with serve) runs instances. See README.md.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
