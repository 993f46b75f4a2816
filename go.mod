module github.com/fsmd-io/fsmd

go 1.26.8

require (
	github.com/expr-lang/expr v1.17.8
	github.com/looplab/fsm v1.0.3
	go.yaml.in/yaml/v3 v3.0.6
)
