# Every build agrees on the pure-Go olm (no libolm) and cgo for SQLite.
export GOFLAGS := -tags=goolm
export CGO_ENABLED := 1

GO ?= go
BIN := bin/secbot
STATICCHECK_VERSION := v0.8.2

.PHONY: build test unit lint demo bench fuzz dendrite maddy clean

build:
	$(GO) build -o $(BIN) .

# The whole suite: unit tests, then the integration tests on a real
# Dendrite and maddy, a mail server (installed into the cache on first use
# and started by the tests).
test: dendrite maddy
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 50m ./...
	$(GO) test -race -count=1 -tags=goolm,crashpoints ./internal/crashpoint/

# Everything but the integration tests on Dendrite.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	$(GO) test -race -count=1 -tags=goolm,crashpoints ./internal/crashpoint/

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(GO) vet ./...
	$(GO) vet -tags=goolm,crashpoints ./internal/crashpoint/
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# A local homeserver, the bot on its own SQLite file and a scripted reporter.
demo: dendrite maddy
	$(GO) run ./internal/demo

bench: dendrite
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2000x -count=1 -timeout 30m ./timers/
	$(GO) test -run '^$$' -bench Watch -benchtime 1x -count=1 -timeout 10m ./ghsa/
	$(GO) test -run '^$$' -bench 'Intake|Burst|ColdStart|Latency' -benchtime 1x -count=1 -timeout 60m ./e2e/

fuzz:
	./scripts/fuzz.sh 20s

dendrite:
	$(GO) run ./internal/matrixtest/install

maddy:
	$(GO) run ./internal/mailtest/install

clean:
	rm -rf bin
