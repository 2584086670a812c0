# sekisho: the usual entry points. `go run ./cmd/sekisho serve` and
# `go test -race ./...` need nothing else.

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all build test install install-dry-run bench

all: build

build:
	go build -o bin/ ./cmd/sekisho ./cmd/sekisho-bench

test:
	go test -race ./...

# Builds and installs the binary, the systemd unit, the folders and the
# example configuration (docs/layout.md). Run as root; DESTDIR stages.
install:
	DESTDIR="$(DESTDIR)" packaging/install.sh --prefix "$(PREFIX)"

install-dry-run:
	DESTDIR="$(DESTDIR)" packaging/install.sh --prefix "$(PREFIX)" --dry-run

# sekisho against Postfix (when installed) on loopback: scripts/bench-vs-postfix.sh.
bench:
	scripts/bench-vs-postfix.sh
