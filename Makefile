# fsmd: `make help` lists the targets. `make test` runs everything CI runs.
GO        ?= go
PKGS      := ./...
# How long each fuzz target runs, as executions rather than seconds (about 10 s each here): Go 1.26's
# fuzz coordinator can fail a target that found nothing with "context deadline exceeded" when a
# -fuzztime duration runs out (go.dev/issue/75804, fixed in Go 1.27); a count sets no deadline.
FUZZ_PARSE   ?= 70000x
FUZZ_COMPILE ?= 280000x
# The Mermaid release whose built file the console embeds (make assets).
MERMAID_VERSION ?= 12.3.0
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Files written by `make generate`; verify fails when they differ from what is committed.
GENERATED := api/openapi

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/fsmd
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/fsmd ./cmd/fsmd

.PHONY: test
test: ui-deps ## Run everything: vet, every test under the race detector (the console's in Chromium too), the example tables, brief fuzzing
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	$(GO) run ./cmd/fsmd validate definitions/
	$(GO) run ./cmd/fsmd test --coverage definitions/
	$(MAKE) --no-print-directory fuzz

.PHONY: ui-deps
ui-deps: ## Install what the console test needs, if missing: Debian's chromium, playwright-core (tests/ui)
	@tests/ui/install.sh

.PHONY: assets
assets: ## Refresh the console's third-party files from npm: Mermaid (MERMAID_VERSION)
	rm -rf .assets && mkdir .assets
	cd .assets && npm pack --silent mermaid@$(MERMAID_VERSION) >/dev/null && tar xzf mermaid-$(MERMAID_VERSION).tgz
	cp .assets/package/dist/mermaid.min.js internal/console/assets/mermaid.min.js
	cp .assets/package/LICENSE internal/console/assets/mermaid.LICENSE
	rm -rf .assets

.PHONY: test-race
test-race: ## Run the Go tests under the race detector
	$(GO) test -race -count=1 $(PKGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly (FUZZ_PARSE, FUZZ_COMPILE: executions, or a duration such as 90s)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_PARSE) -fuzzminimizetime 2s ./internal/machine
	$(GO) test -run '^$$' -fuzz '^FuzzCompile$$' -fuzztime $(FUZZ_COMPILE) -fuzzminimizetime 2s ./internal/guards

.PHONY: bench
bench: ## Run the benchmarks (Fire against the looplab/fsm baseline, loading 1,000 definitions)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: bench-load
bench-load: ## Load fsmd on PostgreSQL over HTTP and compare with pgbench -N (CLIENTS=8 DURATION=20s)
	$(GO) run ./bench/load -clients $(or $(CLIENTS),8) -duration $(or $(DURATION),20s)

.PHONY: bench-migrate
bench-migrate: ## Migrate running instances on PostgreSQL: plan and run, timed (INSTANCES=1000000)
	$(GO) run ./bench/migrate -instances $(or $(INSTANCES),1000000)

.PHONY: bench-timers
bench-timers: ## Fire 10,000 durable timers due over one minute on PostgreSQL and report their lag
	$(GO) run ./bench/timers -timers $(or $(TIMERS),10000) -over $(or $(OVER),1m)

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

.PHONY: generate
generate: ## Regenerate generated files
	$(GO) generate $(PKGS)

.PHONY: openapi
openapi: ## Regenerate the OpenAPI document (api/openapi) from the swag annotations of internal/server
	$(GO) tool swag init --quiet -g doc.go -d internal/server,internal/service,internal/machine --parseDependency --parseInternal -o api/openapi --outputTypes go,json,yaml

.PHONY: verify
verify: ## Fail when go.mod/go.sum, formatting or generated files are not up to date
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(MAKE) --no-print-directory generate
	$(if $(GENERATED),@git diff --exit-code --stat -- $(GENERATED) || (echo "generated files are stale: run make generate and commit"; exit 1))

.PHONY: clean
clean: ## Remove build output
	rm -rf bin
