# envhooks: build, test, demo, bench. Run as root on Debian for test/demo/bench.
# Go as this machine kind ships it, also when /usr/local/go/bin is not on PATH.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/envhooks/envhooks/lib/args.Version=$(VERSION)

.PHONY: build test unit demo bench freebsd lint docs fuzz
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# Installs what the tests need, then runs every test (integration tests
# included) with the race detector off to keep CI inside its time.
test: lint
	./tests/install-deps
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) fuzz

# Each fuzz target runs briefly on every test run; its seeds live in
# testdata/fuzz beside it and run with the ordinary tests too.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzRoundTrip -fuzztime=$(FUZZTIME) ./lib/descriptor

unit:
	$(GO) test -count=1 ./lib/... ./hooks/...

lint: freebsd
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	@command -v mandoc >/dev/null || ./tests/install-deps
	mandoc -Tlint -Wwarning man/*.5 man/*.8

# Every FreeBSD architecture CBSD runs on: 32-bit ones catch int overflows.
FREEBSD_ARCHS ?= amd64 386 arm arm64 riscv64
freebsd:
	@for a in $(FREEBSD_ARCHS); do echo "GOOS=freebsd GOARCH=$$a go build/vet ./..."; \
	  GOOS=freebsd GOARCH=$$a $(GO) build ./... && GOOS=freebsd GOARCH=$$a $(GO) vet ./... || exit 1; done

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
