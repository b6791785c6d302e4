package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// A kill in the very first crypto set-up, after the homeserver took the
// device's keys and before mautrix recorded that, must not leave the bot
// failing at every start ("olm account is not marked as shared"): the next
// start takes the uploaded keys for its own and works (issue 18, item 17).
func TestKillInFirstCryptoSetUpRecovers(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "firstkeysbot", testbed.BotOptions{}, crashpoint.Env+"=crypto.keys_uploaded")
	crashedAt(t, bot, "crypto.keys_uploaded")
	restart(t, bot)
	bed.Settle(t, ctx, bot, bed.Alice)
	if strings.Contains(bot.Log(), "not marked as shared") {
		t.Error("the start after the kill met the unshared account")
	}
}

// A kill during the first sync, after the bot answered the team room's
// invite (or right after the whole first batch was handled) and before the
// sync position was saved, must not lose the team room: the next start is
// in it and answers there (issue 18, item 17).
func TestKillInFirstSyncKeepsTheTeamRoom(t *testing.T) {
	for _, point := range []string{"bot.room_joined", "sync.first_handled"} {
		t.Run(point, func(t *testing.T) {
			ctx := testContext(t)
			bot := startBot(t, ctx, "firstsync"+strings.ReplaceAll(strings.ReplaceAll(point, ".", ""), "_", "")+"bot", testbed.BotOptions{}, crashpoint.Env+"="+point)
			crashedAt(t, bot, point)
			// Alice writes while the bot is down, after it joined: her
			// command is no history from before the bot's first start.
			if err := bed.Alice.WaitJoined(ctx, wait, bed.TeamRoom, bot.UserID); err != nil {
				t.Fatal(err)
			}
			// Her client shares the room key with the bot's device only if it
			// knows that device: fetch it now rather than trust a device list
			// her sync may not have refreshed yet on a loaded machine.
			if _, _, err := bed.Alice.Devices(ctx, bot.UserID); err != nil {
				t.Fatal(err)
			}
			// And in a session of its own: one her client made in an earlier
			// test may never reach the bot's device (seen in the full suite
			// only). What is tested is the bot's start, not her client.
			if err := bed.Alice.NewSession(ctx, bed.TeamRoom); err != nil {
				t.Fatal(err)
			}
			asked := say(t, ctx, bed.Alice, bed.TeamRoom, "!sec help")
			restart(t, bot)
			answered(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, asked)
			bed.Settle(t, ctx, bot, bed.Alice)
		})
	}
}

// answered waits for from's reply to the message asked.
func answered(t *testing.T, ctx context.Context, u *matrixtest.User, room id.RoomID, from id.UserID, asked id.EventID) {
	t.Helper()
	_, err := u.Wait(ctx, wait, "the answer to "+asked.String(), func(evt *event.Event) bool {
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		return evt.Type == event.EventMessage && evt.RoomID == room && evt.Sender == from && ok && msg.RelatesTo != nil && msg.RelatesTo.GetReplyTo() == asked
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An invite the bot's sync position went past unanswered (a batch given
// up on) is answered at the next start (issue 18, item 17).
func TestAStartAnswersAnInviteItsSyncWentPast(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "pastinvitebot", testbed.BotOptions{})
	bed.Settle(t, ctx, bot)
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	resp, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Missed invite", Invite: []id.UserID{bot.UserID},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	// A position past the invite (Dendrite's stream positions are global).
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	filter, err := json.Marshal(&mautrix.Filter{Presence: none, AccountData: none, Room: &mautrix.RoomFilter{Timeline: none, State: none, Ephemeral: none, AccountData: none}})
	if err != nil {
		t.Fatal(err)
	}
	past, err := bed.Alice.Client.FullSyncRequest(ctx, mautrix.ReqSync{FilterID: string(filter)})
	if err != nil {
		t.Fatal(err)
	}
	if err := bot.SetSyncPosition(ctx, past.NextBatch); err != nil {
		t.Fatal(err)
	}
	restart(t, bot)
	if err := bed.Alice.WaitJoined(ctx, wait, resp.RoomID, bot.UserID); err != nil {
		t.Fatal(err)
	}
}
