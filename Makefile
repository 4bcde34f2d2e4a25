# Rachel Cloud admin. `make help` lists the targets.
SHELL := /bin/bash
export GOTOOLCHAIN := local
SQLC := go run github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1
TEMPL := go tool templ
# staticcheck is pinned in go.mod's tool directive (honnef.co/go/tools v0.8.2, builds with go1.26).
STATICCHECK := go tool staticcheck
# -p 1: one test binary at a time. Several packages boot real Debian containers (at most three boots
# machine-wide); side by side they starved each other's boots on a 2-core machine.
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m -p 1

.PHONY: help run test verify lint generate bench deps

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

run: ## run the whole app: private PostgreSQL, simulator, web and worker (prints the URL and a login)
	go run . dev

test: deps ## run every test (starts its own PostgreSQL; installs missing Debian packages as root)
	@rm -f test-artifacts/fault-suite-summary.txt test-artifacts/real-vps-skipped.txt
	go test $(GO_TEST_FLAGS) ./...
	@cat test-artifacts/fault-suite-summary.txt 2>/dev/null || true
	@sort -u test-artifacts/real-vps-skipped.txt 2>/dev/null || true

verify: ## regenerate sqlc and templ output and fail on any difference; go mod tidy, gofmt, go vet, staticcheck, no SQL outside internal/db
	$(SQLC) generate
	$(TEMPL) generate -path views
	@git diff --exit-code -- internal/db views || (echo "generated code differs: run 'make generate' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- internal/db views)" || (git status --porcelain -- internal/db views; echo "untracked generated files: commit them" >&2; exit 1)
	@go mod tidy -diff || (echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit" >&2; exit 1)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed" >&2; exit 1)
	go vet ./...
	$(STATICCHECK) ./...
	go test -count=1 ./internal/db/boundary/ # no SQL outside internal/db, no Go file naming River's job table

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...
	$(STATICCHECK) ./...

generate: ## regenerate sqlc and templ output
	$(SQLC) generate
	$(TEMPL) generate -path views

bench: deps ## run the benchmarks: writes docs/benchmarks.md, prints JSON
	@go run . bench

deps: ## install the Debian packages the tests need (when root), or say which are missing
	@bash .ci/deps.sh
