package outage

import (
	"context"
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

// Dendrite stops for a minute: /healthz says degraded meanwhile, secbot
// reconnects with backoff, and a request made as the homeserver comes back
// is handled once.
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

	stopped := time.Now()
	if err := bed.Server.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 55*time.Second, "/healthz saying degraded", func() bool { return bot.Healthz() == http.StatusServiceUnavailable })
	if !bot.Running() {
		t.Fatal("secbot exited when the homeserver went away")
	}
	// Not a quiet-period wait: the homeserver stays down for a minute, the
	// outage under test.
	time.Sleep(time.Minute - time.Since(stopped))
	if err := bed.Server.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The request is made while secbot is still backing off: it is the backlog.
	waitFor(t, time.Minute, "the reporter's message going through", func() bool {
		_, err := reporter.Say(ctx, dm, "I want to report a security issue")
		return err == nil
	})
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
