package e2e

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/testbed"
)

// An is_direct invite to a room with a third member pulls the bot in only
// to count them: it leaves at once, before anyone writes, and audits it
// (issue 18, LOW).
func TestADirectInviteToAGroupRoomIsLeftAtOnce(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "crowdedbot", testbed.BotOptions{})
	inviter := newUser(t, ctx, "crowdedinviter")
	third := newUser(t, ctx, "crowdedthird")
	resp, err := inviter.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bot.UserID, third.ID()},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inviter.Wait(ctx, wait, "the bot leaving", func(evt *event.Event) bool {
		return evt.Type == event.StateMember && evt.RoomID == resp.RoomID && evt.GetStateKey() == bot.UserID.String() && evt.Content.AsMember().Membership == event.MembershipLeave
	}); err != nil {
		t.Fatal(err)
	}
	bed.Settle(t, ctx, bot)
	db, err := bot.OpenDB(true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var audited, dms int
	if err := db.QueryRowContext(context.Background(), `SELECT
		(SELECT COUNT(*) FROM audit_log WHERE action = 'direct-chat.leave'),
		(SELECT COUNT(*) FROM chat_dms)`).Scan(&audited, &dms); err != nil {
		t.Fatal(err)
	}
	if audited != 1 || dms != 0 {
		t.Errorf("%d leaves audited and %d direct chats recorded, want 1 and 0", audited, dms)
	}
}
