package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/testbed"
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

	crashedAt(t, bot, "handler.before_commit")
	restart(t, bot)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	bed.Settle(t, ctx, bot, reporter)
	if got := messagesFrom(reporter, dm, bot.UserID); len(got) != 1 {
		t.Errorf("the reporter got %d DM replies, want 1: %q", len(got), got)
	}
	if rooms := invitesFrom(reporter, bot.UserID); len(rooms) != 1 {
		t.Errorf("the reporter was invited to %d case rooms, want 1", len(rooms))
	}
}

// An encrypted event is noted before it is decrypted, so one whose key
// came late (after its batch) survives a crash: the next start fetches and
// handles it, once, though the redelivered batch holds it too.
func TestNotedEncryptedEventIsHandledAfterACrash(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "notedbot", testbed.BotOptions{}, crashpoint.Env+"=decrypt.before_handle")
	reporter := newUser(t, ctx, "notedreporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I want to report a security issue")
	crashedAt(t, bot, "decrypt.before_handle")
	restart(t, bot)
	caseInvite(t, ctx, reporter, bot.UserID)
	waitMessage(t, ctx, reporter, dm, bot.UserID, "Thank you for reaching out")
	bed.Settle(t, ctx, bot, reporter)
	if got := messagesFrom(reporter, dm, bot.UserID); len(got) != 1 {
		t.Errorf("the reporter got %d DM replies, want 1: %q", len(got), got)
	}
	if rooms := invitesFrom(reporter, bot.UserID); len(rooms) != 1 {
		t.Errorf("the reporter was invited to %d case rooms, want 1", len(rooms))
	}
	if !strings.Contains(bot.Log(), "Handling an encrypted event noted before the last stop") {
		t.Error("the start did not go back to the noted event")
	}
}

// A crash after the homeserver created the case room but before secbot
// recorded it must not create a second room: the retry finds the first by
// its org.secbot.case state.
func TestCrashAfterRoomCreationFindsTheRoomAgain(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "crashroombot", testbed.BotOptions{}, crashpoint.Env+"=outbox.after.chat.create_case_room")
	reporter := newUser(t, ctx, "roomreporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "security vulnerability report")

	crashedAt(t, bot, "outbox.after.chat.create_case_room")
	restart(t, bot)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	bed.Settle(t, ctx, bot, reporter)
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
	bed.Settle(t, ctx, bot, reporter)
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
	// Debug logging: request metadata is logged too, and still no text.
	bot := startBot(t, ctx, "canarybot", testbed.BotOptions{LogLevel: "debug"})
	// Another reporter's case room must not see it either.
	other := newUser(t, ctx, "canaryother")
	report(t, ctx, other, bot.UserID)
	otherRoom := caseInvite(t, ctx, other, bot.UserID)
	if err := other.Join(ctx, otherRoom); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, other, otherRoom, bot.UserID, "Security report")
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
		{"the team's view (team room, case rooms, DMs)", func() []string { return botBodies(bed.Alice.Events(), bot) }},
		{"the other reporter's view", func() []string { return botBodies(other.Events(), bot) }},
	} {
		for _, body := range u.evts() {
			if strings.Contains(body, canary) {
				t.Errorf("%s contains the canary: %q", u.name, body)
			}
		}
	}
	log := bot.Log()
	if strings.Contains(log, canary) {
		t.Error("the canary is in secbot's log")
	}
	// Nor are the secrets the bot read from its files.
	for _, file := range []string{"password", "pickle-key"} {
		secret, err := os.ReadFile(filepath.Join(bot.Dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(log, strings.TrimSpace(string(secret))) {
			t.Errorf("the %s is in secbot's log", file)
		}
	}
	if !strings.Contains(log, `"level":"debug"`) {
		t.Error("the log has no debug lines: the check above proves little")
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
