# Every build agrees on the pure-Go olm (no libolm) and cgo for SQLite.
export GOFLAGS := -tags=goolm
export CGO_ENABLED := 1

GO ?= go
BIN := bin/secbot
STATICCHECK_VERSION := v0.8.2

.PHONY: build test unit integration e2e tiers lint demo bench fuzz dendrite maddy clean

build:
	$(GO) build -o $(BIN) .

# The e2e tests that run once more on PostgreSQL in make test.
PG_E2E = ^(TestReporterDMOpensPrivateEncryptedCaseRoom|TestPublicRoomRequestGetsThreadReplyAndDM|TestOutsidersAndReportersCannotRunTeamCommands|TestACaseGoesFromIntakeToPublishedAndAnnounced|TestCrashBeforeCommitStillOpensTheCaseOnce|TestRestartHandlesNoEventTwice|TestLadderSurvivesKillMidway|TestAnEmailedReportReachesTheTeamAndOnlyTheTeam|TestCrashAfterSendingMailsTheAnswerOnce|TestCommandsApplyInTimelineOrderWhenAKeyComesLate|TestForgedEncryptionStateDoesNotTurnTheBotsMessagesToPlaintext|TestADirectInviteToAGroupRoomIsLeftAtOnce|TestTrust|TestAMessageQueuedBeforeTheUpgradeIsSentOnce)$$

# The tests come in three tiers; every package of `go list ./...` is named
# by exactly one of them (`make tiers` checks it, so no test is dropped).
# A package without tests goes where the servers it helps run belong.
#
# unit: no servers at all (in-process fakes and mautrix's mockserver only).
UNIT_PKGS := ./bot ./chat ./config ./disclosure ./internal/backoff \
	./internal/crashpoint ./internal/logfilter ./internal/testclock ./metrics ./outbox \
	./templates ./timers
# integration: maddy (a real mail server), a throwaway PostgreSQL (the
# store's tests and the main package's run on both databases) and the
# in-process GitHub and Rocket.Chat stand-ins.
INTEGRATION_PKGS := . ./store ./ghsa/... ./handlers ./mail ./internal/testenv/maddy/... \
	./internal/testenv/github ./internal/testenv/postgres ./internal/testenv/rocketchat \
	./internal/testenv/daemon ./internal/testenv/fakechat ./internal/testenv/seed ./rocketchat
# e2e: a real Dendrite, the bot as a separate process.
E2E_PKGS := ./e2e/... ./internal/testenv/dendrite/... ./internal/testenv/testbed \
	./cmd/secbot-demo

# The whole suite, in tiers: unit first (a failure there stops the run in
# seconds), then integration on maddy and the stand-ins together with e2e
# on Dendrite and maddy (the servers are installed into the cache on first
# use and started by the tests). The last two share one go test run so
# that the integration packages use the second core while the long e2e
# package runs, as when everything was one run: in two runs they would
# add their time to the e2e tier's.
test: dendrite maddy
	$(GO) vet ./...
	@./scripts/tiers.sh "$(UNIT_PKGS)" "$(INTEGRATION_PKGS)" "$(E2E_PKGS)"
	$(GO) test -race -count=1 -timeout 10m $(UNIT_PKGS)
	$(GO) test -race -count=1 -timeout 50m $(INTEGRATION_PKGS) $(E2E_PKGS)
	$(GO) test -race -count=1 -tags=goolm,crashpoints ./internal/crashpoint/
	$(GO) test -race -count=1 -tags=goolm,testclock ./internal/testclock/
	# The handlers and a part of e2e (intake, crashes, the ladder, email,
	# key order, trust) once more on PostgreSQL; the store's tests run on both.
	SECBOT_TEST_DB=postgres $(GO) test -race -count=1 ./handlers/
	SECBOT_TEST_DB=postgres $(GO) test -race -count=1 -timeout 20m -run '$(PG_E2E)' ./e2e/

# Every package is in exactly one tier.
tiers:
	@./scripts/tiers.sh "$(UNIT_PKGS)" "$(INTEGRATION_PKGS)" "$(E2E_PKGS)"

# Seconds, no servers.
unit: tiers
	$(GO) test -race -count=1 -timeout 10m $(UNIT_PKGS)
	$(GO) test -race -count=1 -tags=goolm,crashpoints ./internal/crashpoint/
	$(GO) test -race -count=1 -tags=goolm,testclock ./internal/testclock/
	SECBOT_TEST_DB=postgres $(GO) test -race -count=1 ./handlers/

# maddy and the GitHub and Rocket.Chat stand-ins.
integration: tiers maddy
	$(GO) test -race -count=1 -timeout 20m $(INTEGRATION_PKGS)

# The serial suite on a real Dendrite.
e2e: tiers dendrite maddy
	$(GO) test -race -count=1 -timeout 50m $(E2E_PKGS)

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(GO) vet ./...
	$(GO) vet -tags=goolm,crashpoints ./internal/crashpoint/
	$(GO) vet -tags=goolm,testclock ./internal/testclock/
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# A local homeserver, the bot on its own SQLite file and a scripted reporter.
demo: dendrite maddy
	$(GO) run ./cmd/secbot-demo

bench: dendrite
	# The timers' ticks; those at 100k cases on SQLite and PostgreSQL each seed
	# 100k cases first (4-10 s on SQLite, 10-30 s on PostgreSQL here).
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2000x -count=1 -timeout 30m ./timers/
	# Intake among 100k cases on SQLite and PostgreSQL, no homeserver.
	$(GO) test -run '^$$' -bench Intake100k -benchmem -benchtime 1000x -count=1 -timeout 20m ./handlers/
	$(GO) test -run '^$$' -bench Watch -benchtime 1x -count=1 -timeout 10m ./ghsa/
	$(GO) test -run '^$$' -bench 'Intake|Burst|ColdStart|Latency|Takeover' -benchtime 1x -count=1 -timeout 60m ./e2e/
	$(GO) test -run '^$$' -bench RocketChat -benchtime 1x -count=1 -timeout 10m .

fuzz:
	./scripts/fuzz.sh 20s

dendrite:
	$(GO) run ./internal/testenv/dendrite/install

maddy:
	$(GO) run ./internal/testenv/maddy/install

clean:
	rm -rf bin
