package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/testbed"
)

// reloadTeamRoom points the bot's [team] room at room and sends SIGHUP.
func reloadTeamRoom(t *testing.T, bot *testbed.Bot, room id.RoomID) {
	t.Helper()
	err := bot.Reload(func(cfg string) string {
		old := fmt.Sprintf("room = %q", bed.TeamRoom)
		if !strings.Contains(cfg, old) {
			t.Fatalf("the config names no team room %s", bed.TeamRoom)
		}
		return strings.Replace(cfg, old, fmt.Sprintf("room = %q", room), 1)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the bot's log holds substr.
func waitLog(t *testing.T, ctx context.Context, bot *testbed.Bot, substr string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !strings.Contains(bot.Log(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("the bot did not log %q within %s", substr, wait)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A SIGHUP naming an unencrypted team room is refused: the old team room
// stays in force, and the next note (naming a reporter) goes there,
// encrypted, and not into the clear (issue 18, item 6).
func TestReloadRefusesAnUnencryptedTeamRoom(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "reloadplainbot", testbed.BotOptions{})
	bed.Settle(t, ctx, bot)
	resp, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Team, in the clear", Invite: []id.UserID{bot.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	plain := resp.RoomID
	if err := bed.Alice.WaitJoined(ctx, wait, plain, bot.UserID); err != nil {
		t.Fatal(err)
	}
	reloadTeamRoom(t, bot, plain)
	waitLog(t, ctx, bot, `"message":"Config reload`) // taken or refused

	reporter := newUser(t, ctx, "reloadplainreporter")
	_, caseID := report(t, ctx, reporter, bot.UserID)
	note := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "New security report **"+caseID+"**")
	if !note.Mautrix.WasEncrypted {
		t.Error("the note in the team room in force was not encrypted")
	}
	bed.Settle(t, ctx, bot, bed.Alice)
	if got := messagesFrom(bed.Alice, plain, bot.UserID); len(got) != 0 {
		t.Errorf("the bot posted %d messages in the unencrypted room: %q", len(got), got)
	}
	if !strings.Contains(bot.Log(), "Config reload refused: the new team room is not fit") || !strings.Contains(bot.Log(), "not end-to-end encrypted") {
		t.Error("the log does not say why the reload was refused")
	}
}

// A SIGHUP naming a team room the bot is not in yet is taken, and the
// notes for it wait (the operator told in the log and /metrics) until the
// bot is invited and joins: then they arrive, encrypted; none is dropped
// as refused (issue 18, item 6).
func TestReloadToATeamRoomTheBotIsNotInYet(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "reloadlaterbot", servedOptions(t, testbed.BotOptions{}))
	bed.Settle(t, ctx, bot)
	resp, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: "New security team",
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	room := resp.RoomID
	reloadTeamRoom(t, bot, room)
	waitLog(t, ctx, bot, "Config reloaded")

	reporter := newUser(t, ctx, "reloadlaterreporter")
	_, caseID := report(t, ctx, reporter, bot.UserID)
	// Barrier: the note was tried, and waits (or, given up on, failed).
	deadline := time.Now().Add(wait)
	for {
		waiting, _ := bot.Metric("secbot_team_room_waiting")
		failed, _ := bot.Metric(`secbot_failed_effects{service="matrix"}`)
		if waiting == 1 || failed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the note for the new team room was not tried")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if waiting, err := bot.Metric("secbot_team_room_waiting"); err != nil || waiting != 1 {
		t.Errorf("/metrics does not show the team room waiting: %v %v", waiting, err)
	}
	if _, err := bed.Alice.Client.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: bot.UserID}); err != nil {
		t.Fatal(err)
	}
	note := waitMessage(t, ctx, bed.Alice, room, bot.UserID, "New security report **"+caseID+"**")
	if !note.Mautrix.WasEncrypted {
		t.Error("the note in the new team room was not encrypted")
	}
	if err := bot.WaitMetric(ctx, "secbot_team_room_waiting", 0, wait); err != nil {
		t.Error(err)
	}
	bed.SettleWith(t, ctx, bot, testbed.Marker{From: bed.Alice, Room: room, Text: "!sec help"}, bed.Alice)
	if n, err := bot.Metric("secbot_failed_effects{service=\"matrix\"}"); err == nil && n != 0 {
		t.Errorf("%v Matrix effects were given up on", n)
	}
}
