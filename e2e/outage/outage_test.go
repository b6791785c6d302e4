package outage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

var bed *testbed.Bed

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "secbot-outage-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	bed, err = testbed.New(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "set up the homeserver:", err)
		os.Exit(1)
	}
	code := m.Run()
	bed.Close()
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "test data kept in", dir)
	}
	os.Exit(code)
}

// waitFor polls cond until it holds (for what has no event to wait on:
// /healthz, a homeserver coming back).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, timeout)
		}
		// Not a quiet-period wait: the interval between two polls.
		time.Sleep(250 * time.Millisecond)
	}
}

// syncFailures returns the bot's "Sync failed" log lines in log: how many
// syncs in a row failed, and the wait before the next try.
func syncFailures(log string) (failures []int, retryIn []time.Duration) {
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			Message  string  `json:"message"`
			Failures int     `json:"failures"`
			RetryIn  float64 `json:"retry_in"` // milliseconds
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Message == "Sync failed" {
			failures = append(failures, entry.Failures)
			retryIn = append(retryIn, time.Duration(entry.RetryIn*float64(time.Millisecond)))
		}
	}
	return failures, retryIn
}

// nextSyncFailure waits for the bot's next failed sync after the first
// from bytes of its log, and returns its count and retry wait.
func nextSyncFailure(t *testing.T, bot *testbed.Bot, from, after int) (int, time.Duration) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if log := bot.Log(); len(log) > from {
			failures, retryIn := syncFailures(log[from:])
			if n := len(failures); n > 0 && failures[n-1] > after {
				return failures[n-1], retryIn[n-1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sync failure after the %dth within a minute", after)
		}
		time.Sleep(20 * time.Millisecond) // polls the log file, no quiet-period wait
	}
}

// Dendrite dies for a minute of the bot's time: /healthz says degraded
// meanwhile, secbot reconnects with backoff (the test steps the bot's clock
// through it: each retry fails while the homeserver is down), and a
// request made as the homeserver comes back, while secbot backs off, is
// handled once.
func TestHomeserverOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	addr, err := matrixtest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	bot, err := bed.NewBot(ctx, "outagebot", testbed.BotOptions{HTTPListen: addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = bot.Stop()
		if t.Failed() {
			t.Logf("secbot log: %s", bot.LogPath)
		}
	}()
	reporter, err := bed.NewUser(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	defer reporter.Close()
	dm, err := reporter.DM(ctx, bot.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if err := reporter.WaitJoined(ctx, time.Minute, dm, bot.UserID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "/healthz answering ok", func() bool { return bot.Healthz() == http.StatusOK })

	// The homeserver dies with the bot idle in its long poll, which then
	// fails at once. (A graceful stop would answer the long poll, and an
	// outage halfway through a batch holds the sync loop in mautrix's own
	// retries of the batch's requests: a minute of real time that the
	// bot's clock does not govern.)
	bed.Settle(t, ctx, bot)
	from := len(bot.Log())
	if err := bed.Server.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 55*time.Second, "/healthz saying degraded", func() bool { return bot.Healthz() == http.StatusServiceUnavailable })
	if !bot.Running() {
		t.Fatal("secbot exited when the homeserver went away")
	}
	// The homeserver stays down for a minute of the bot's clock, the outage
	// under test: the clock steps to each retry, which fails, and the
	// backoff grows (1 s, 2 s, … 32 s), until the waits stepped and the one
	// the bot is in add up to a minute.
	failures, wait := nextSyncFailure(t, bot, from, 0)
	for stepped := time.Duration(0); stepped+wait < time.Minute; stepped += wait {
		if err := bot.Advance(ctx, wait); err != nil {
			t.Fatal(err)
		}
		failures, wait = nextSyncFailure(t, bot, from, failures)
	}
	if wait < 32*time.Second {
		t.Errorf("after %d failed syncs the bot retries in %s: it does not back off", failures, wait)
	}
	if err := bed.Server.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The request is made while secbot is still backing off: it is the backlog.
	waitFor(t, time.Minute, "the reporter's message going through", func() bool {
		_, err := reporter.Say(ctx, dm, "I want to report a security issue")
		return err == nil
	})
	// The bot's clock reaches its retry: it is back, with the backlog.
	if err := bot.Advance(ctx, wait); err != nil {
		t.Fatal(err)
	}
	if _, err := reporter.WaitMessage(ctx, 2*time.Minute, dm, bot.UserID, "do not share"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "/healthz answering ok again", func() bool { return bot.Healthz() == http.StatusOK })
	if _, err := reporter.WaitInvite(ctx, time.Minute, bot.UserID, func(evt *event.Event) bool { return !evt.Content.AsMember().IsDirect }); err != nil {
		t.Fatal(err)
	}
	// The reporter's `help` in the DM is the marker: this test is about the
	// reporter, and the team's clients need not have caught up with keys
	// the bot may have shared during the outage.
	bed.SettleWith(t, ctx, bot, testbed.Marker{From: reporter, Room: dm, Text: "help"}, reporter)
	acks := 0
	for _, evt := range reporter.Events() {
		if body, err := matrixtest.Body(evt); err == nil && evt.Sender == bot.UserID && strings.Contains(body, "Thank you for reaching out") {
			acks++
		}
	}
	if acks != 1 {
		t.Errorf("the reporter got %d answers after the outage, want 1", acks)
	}
}
