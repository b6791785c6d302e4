package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testbed"
)

// A crash after the handler decided but before it committed must lose
// nothing: the event is synced again after the restart and the case opens
// once.
func TestCrashBeforeCommitStillOpensTheCaseOnce(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "crashcommitbot", testbed.BotOptions{}, crashpoint.Env+"=handler.before_commit")
	reporter := newUser(t, ctx, "crashreporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I want to report a security bug")

	code, err := bot.Wait(wait)
	if err != nil {
		t.Fatalf("the crash point was not reached: %v", err)
	}
	if code != 137 {
		t.Fatalf("secbot exited with %d, want the crash point's 137", code)
	}
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	time.Sleep(2 * time.Second)
	if got := messagesFrom(reporter, dm, bot.UserID); len(got) != 1 {
		t.Errorf("the reporter got %d DM replies, want 1: %q", len(got), got)
	}
	if rooms := invitesFrom(reporter, bot.UserID); len(rooms) != 1 {
		t.Errorf("the reporter was invited to %d case rooms, want 1", len(rooms))
	}
}

// A crash after the homeserver created the case room but before secbot
// recorded it must not create a second room: the retry finds the first by
// its org.secbot.case state.
func TestCrashAfterRoomCreationFindsTheRoomAgain(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "crashroombot", testbed.BotOptions{}, crashpoint.Env+"=outbox.after.matrix.create_case_room")
	reporter := newUser(t, ctx, "roomreporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "security vulnerability report")

	if code, err := bot.Wait(wait); err != nil || code != 137 {
		t.Fatalf("the crash point was not reached: code %d, %v", code, err)
	}
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	time.Sleep(2 * time.Second)
	if rooms := invitesFrom(reporter, bot.UserID); len(rooms) != 1 {
		t.Errorf("the reporter was invited to %d case rooms, want 1", len(rooms))
	}
	if got := messagesFrom(reporter, room, bot.UserID); len(got) != 1 {
		t.Errorf("the case room has %d welcomes, want 1", len(got))
	}
}

// Restarting handles no old event twice.
func TestRestartHandlesNoEventTwice(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "restartbot", testbed.BotOptions{})
	reporter := newUser(t, ctx, "restartreporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I need to report a security problem")
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	before := len(messagesFrom(reporter, dm, bot.UserID))

	for _, stop := range []func() error{bot.Stop, bot.Kill} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := bot.Start(); err != nil {
			t.Fatal(err)
		}
	}
	// Something new after the restarts is answered, and only that.
	say(t, ctx, reporter, dm, "hello again")
	waitMessage(t, ctx, reporter, dm, bot.UserID, "already have an open report")
	time.Sleep(2 * time.Second)
	if got := len(messagesFrom(reporter, dm, bot.UserID)); got != before+1 {
		t.Errorf("after two restarts the DM has %d bot messages, want %d", got, before+1)
	}
	if got := messagesFrom(reporter, room, bot.UserID); len(got) != 1 {
		t.Errorf("the case room has %d bot messages after restarts, want 1", len(got))
	}
}

// What a reporter writes in the DM is never stored, logged or forwarded.
func TestReporterTextNeverLeavesTheDM(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "canarybot", testbed.BotOptions{})
	reporter := newUser(t, ctx, "canaryreporter")
	const canary = "CANARY-7f3a9c-heap-overflow-in-parser"
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I want to report a security issue: "+canary)
	say(t, ctx, reporter, dm, "Details: https://example.org/poc "+canary+" `memcpy(buf, src, n)`")
	waitMessage(t, ctx, reporter, dm, bot.UserID, "share nothing more here")
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	if err := bed.Alice.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "Security report")
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}

	for _, u := range []*struct {
		name string
		evts func() []string
	}{
		{"the reporter's view of the bot", func() []string { return botBodies(reporter.Events(), bot) }},
		{"the team's view", func() []string { return botBodies(bed.Alice.Events(), bot) }},
	} {
		for _, body := range u.evts() {
			if strings.Contains(body, canary) {
				t.Errorf("%s contains the canary: %q", u.name, body)
			}
		}
	}
	if strings.Contains(bot.Log(), canary) {
		t.Error("the canary is in secbot's log")
	}
	files, _ := filepath.Glob(filepath.Join(bot.Dir, "secbot.db*"))
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(canary)) {
			t.Errorf("the canary is in %s", filepath.Base(f))
		}
		if info, err := os.Stat(f); err == nil && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), info.Mode().Perm())
		}
	}
}
