// Package tests holds the project's end-to-end tests: the transition tables of the example
// definitions run as Go subtests (tables_test.go), and the fsmd binary run as users run it
// (cli_test.go). Its fixtures are under testdata; refresh the golden files with
//
//	go test ./tests -run Golden -update
package tests
