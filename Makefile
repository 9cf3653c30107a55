# envhooks: build, test, demo, bench. Run as root on Debian for test/demo/bench.
# Go as this machine kind ships it, also when /usr/local/go/bin is not on PATH.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/envhooks/envhooks/lib/args.Version=$(VERSION)

.PHONY: build test unit demo bench freebsd others lint docs
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# Installs what the tests need, then runs every test (integration tests
# included) with the race detector off to keep CI inside its time.
test: lint
	./tests/install-deps
	$(GO) test -count=1 -timeout 25m ./...

unit:
	$(GO) test -count=1 ./lib/... ./hooks/...

lint: freebsd others
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Every FreeBSD architecture CBSD runs on: 32-bit ones catch int overflows.
FREEBSD_ARCHS ?= amd64 386 arm arm64 riscv64
freebsd:
	@for a in $(FREEBSD_ARCHS); do echo "GOOS=freebsd GOARCH=$$a go build/vet ./..."; \
	  GOOS=freebsd GOARCH=$$a $(GO) build ./... && GOOS=freebsd GOARCH=$$a $(GO) vet ./... || exit 1; done

# Systems envhooks does not run on still build and vet: the programs there
# exit 69 saying "unsupported on this system" (lib/platform).
OTHER_SYSTEMS ?= darwin/arm64 openbsd/amd64
others:
	@for s in $(OTHER_SYSTEMS); do echo "GOOS=$${s%/*} GOARCH=$${s#*/} go build/vet ./..."; \
	  GOOS=$${s%/*} GOARCH=$${s#*/} $(GO) build ./... && GOOS=$${s%/*} GOARCH=$${s#*/} $(GO) vet ./... || exit 1; done

# Needs only util-linux (unshare, nsenter), which every Debian has.
demo: build
	./examples/demo/run $(BIN)

bench: build
	./tests/install-deps
	@for d in tests/bench/*/; do $(GO) run ./$$d || exit 1; done

# Regenerates the key tables of README.md and envhooks.conf(5) from the keys
# the programs declare (tests/docs fails when they drift).
docs:
	$(GO) run ./tests/docs/gen .
