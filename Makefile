# envhooks: build, test, demo, bench. Run as root on Debian for test/demo/bench.
# Go as this machine kind ships it, also when /usr/local/go/bin is not on PATH.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/envhooks/envhooks/lib/args.Version=$(VERSION)

.PHONY: build test unit race fuzz demo bench freebsd others lint docs install install-files
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# Installs what the tests need, then runs every test (integration tests
# included), the unit packages again under the race detector, and each
# fuzz target briefly.
test: lint
	./tests/install-deps
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) race
	$(MAKE) fuzz FUZZ_COUNT=$(FUZZ_COUNT_TEST)

unit:
	$(GO) test -count=1 ./lib/... ./hooks/...

race:
	$(GO) test -race -count=1 -timeout 15m ./lib/... ./hooks/...

# Every fuzz target, as package:Target. Counts rather than durations: a
# duration's deadline races Go 1.26's fuzz coordinator, which then fails
# with "context deadline exceeded" and no crasher (go.dev/issue/75804).
FUZZ_TARGETS ?= lib/iscsi:FuzzReadPDU lib/iscsi:FuzzDecodeKeys lib/iscsi:FuzzPortal \
	lib/config:FuzzConfigFile lib/state:FuzzStateRecord lib/quick:FuzzQuickNote \
	lib/lease:FuzzLeaseRecord lib/ssh:FuzzRemoteCommand lib/args:FuzzArgs lib/oneline:FuzzClean lib/descriptor:FuzzRoundTrip
FUZZ_COUNT_TEST ?= 3000x
FUZZ_COUNT ?= 500000x
fuzz:
	@for t in $(FUZZ_TARGETS); do echo "fuzz $${t#*:} ($(FUZZ_COUNT)) in ./$${t%%:*}"; \
	  $(GO) test -count=1 -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZ_COUNT) ./$${t%%:*} || exit 1; done

# golangci-lint at a pinned version, built with this Go from the module proxy.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(shell $(GO) env GOPATH)/bin/golangci-lint-$(GOLANGCI_LINT_VERSION)
$(GOLANGCI_LINT):
	GOBIN=$$(mktemp -d) sh -c '$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) && mkdir -p $(dir $(GOLANGCI_LINT)) && mv "$$GOBIN/golangci-lint" $(GOLANGCI_LINT)'

lint: freebsd others $(GOLANGCI_LINT)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	@command -v mandoc >/dev/null || ./tests/install-deps
	mandoc -Tlint -Wwarning man/*.5 man/*.8

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

# Installs the programs, the man pages, the sample configuration and the
# scripts other programs run, the same set on FreeBSD (gmake) and Linux:
# dist/freebsd/pkg-plist names exactly these files (tests/dist checks it).
# PREFIX: /usr/local by default; DESTDIR: a staging directory (the port's).
PREFIX  ?= /usr/local
DESTDIR ?=
DATADIR  = $(DESTDIR)$(PREFIX)/share/envhooks
PROGRAMS = mnt-start envhooks-attach mnt-stop envctl
install: build install-files

# install-files installs what BIN already holds (the port builds with the
# ports framework's Go support, then runs this).
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/rc.d $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 \
	  $(DATADIR)/cbsd/master_poststop.d $(DATADIR)/libvirt $(DATADIR)/systemd
	for p in $(PROGRAMS); do install -m 755 $(BIN)/$$p $(DESTDIR)$(PREFIX)/bin/$$p || exit 1; done
	for m in man/*.5 man/*.8; do gzip -9nc $$m > $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/$${m##*/}.gz && chmod 644 $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/$${m##*/}.gz || exit 1; done
	install -m 644 dist/envhooks.conf.sample $(DESTDIR)$(PREFIX)/etc/envhooks.conf.sample
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' dist/rc.d/envhooks_heartbeat > $(DESTDIR)$(PREFIX)/etc/rc.d/envhooks_heartbeat
	chmod 755 $(DESTDIR)$(PREFIX)/etc/rc.d/envhooks_heartbeat
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' dist/systemd/envhooks-heartbeat.service > $(DATADIR)/systemd/envhooks-heartbeat.service
	chmod 644 $(DATADIR)/systemd/envhooks-heartbeat.service
	install -m 755 dist/cbsd/master_poststop.d/envhooks-mnt-stop $(DATADIR)/cbsd/master_poststop.d/envhooks-mnt-stop
	install -m 755 dist/libvirt/envhooks $(DATADIR)/libvirt/envhooks
