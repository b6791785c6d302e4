package e2e

import (
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// Encryption is sticky. A room admin (standing in for a hostile
// homeserver) sets the team room's m.room.encryption to "none", and a
// case room's encryption is taken out of the bot's own state store while
// it is down: what the bot sends to both afterwards still goes over the
// wire as m.room.encrypted, and the team room is told once of each.
func TestForgedEncryptionStateDoesNotTurnTheBotsMessagesToPlaintext(t *testing.T) {
	ctx := testContext(t)
	created, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: "Sticky team",
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	team := created.RoomID
	bot := startBot(t, ctx, "stickybot", servedOptions(t, testbed.BotOptions{TeamRoom: team}))
	if err := bed.Alice.WaitJoined(ctx, wait, team, bot.UserID); err != nil {
		t.Fatal(err)
	}
	reporter, caseID, room := openCase(t, bot, "stickyreporter")
	ask(t, ctx, bed.Alice, team, bot, "!sec list")

	// The downgrade, as state of the room.
	if _, err := bed.Alice.Client.SendStateEvent(ctx, team, event.StateEncryption, "", map[string]any{"algorithm": "none"}); err != nil {
		t.Fatal(err)
	}
	// alice's own client believed it too; once it has synced the event,
	// it is told otherwise, so that her command is encrypted (the bot
	// ignores plaintext in an encrypted room).
	if err := bed.Alice.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	// What her client now sends goes out in the clear, as anything the
	// homeserver injects would: it is no command.
	plain := say(t, ctx, bed.Alice, team, "!sec claim "+caseID)
	if raw, err := bed.Alice.RawEvent(ctx, wait, team, plain); err != nil || raw.Type != event.EventMessage {
		t.Fatalf("the plaintext command: %v, %v", raw, err)
	}
	if err := bed.Alice.Client.StateStore.SetEncryptionEvent(ctx, team, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
		t.Fatal(err)
	}
	answer := ask(t, ctx, bed.Alice, team, bot, "!sec status "+caseID)
	wire(t, ctx, bed.Alice, answer)
	if body, _ := matrixtest.Body(answer); strings.Contains(body, "handler"+bed.Alice.ID().String()) {
		t.Errorf("the plaintext claim made alice the handler: %q", body)
	}
	for _, evt := range bed.Alice.Events() {
		if evt.Sender == bot.UserID && evt.Type == event.EventMessage && evt.Content.AsMessage().RelatesTo.GetReplyTo() == plain {
			t.Error("the bot answered the plaintext command")
		}
	}
	told := waitMessage(t, ctx, bed.Alice, team, bot.UserID, "Encryption was turned off in this team room")
	wire(t, ctx, bed.Alice, told)

	// The case room's encryption lost from the bot's state store.
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bot.OpenDB(false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.ExecContext(ctx, `UPDATE mx_room_state SET encryption = '{"algorithm":"none"}' WHERE room_id = $1`, room)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("the case room's state: %v (%d rows)", err, n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	restart(t, bot)
	asked := say(t, ctx, reporter, room, "status")
	status, err := reporter.Wait(ctx, wait, "the status answer", func(evt *event.Event) bool {
		return evt.Sender == bot.UserID && evt.Type == event.EventMessage && evt.Content.AsMessage().RelatesTo.GetReplyTo() == asked
	})
	if err != nil {
		t.Fatal(err)
	}
	wire(t, ctx, reporter, status)
	told = waitMessage(t, ctx, bed.Alice, team, bot.UserID, "the room of "+caseID)
	wire(t, ctx, bed.Alice, told)

	// Once each, and audited.
	ask(t, ctx, bed.Alice, team, bot, "!sec list")
	if err := bot.WaitOutboxEmpty(ctx, wait); err != nil {
		t.Fatal(err)
	}
	if err := bed.Alice.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	if n := botSaid(bed.Alice, team, bot, "Encryption was turned off"); n != 2 {
		t.Errorf("the team room was told of downgrades %d times, want 2 (one per room)", n)
	}
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	audited(t, ctx, bot, person(bed.Alice.ID()), "encryption.downgrade", team.String())
	audited(t, ctx, bot, person(bed.Alice.ID()), "plaintext.ignored", team.String())
	audited(t, ctx, bot, person(bot.UserID), "encryption.downgrade", room.String())
}
