package e2e

import (
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// answersTo lists the bodies of from's messages that reply to asked.
func answersTo(u *matrixtest.User, room id.RoomID, from id.UserID, asked id.EventID) []string {
	var out []string
	for _, evt := range u.Events() {
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		if evt.Type == event.EventMessage && evt.RoomID == room && evt.Sender == from && ok && msg.RelatesTo != nil && msg.RelatesTo.GetReplyTo() == asked {
			out = append(out, msg.Body)
		}
	}
	return out
}

// A team member's command whose megolm key reaches the bot late is still
// applied before the command typed after it: the later one waits for it
// (issue 18, item 15). Here the coordinator confirms the report and starts
// the audit, and the confirmation's key comes only after the audit command
// reached the bot; out of order, the audit would be refused as unconfirmed.
func TestCommandsApplyInTimelineOrderWhenAKeyComesLate(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "orderbot", testbed.BotOptions{})
	reporter, caseID, room := openCase(t, bot, "orderreporter")
	say(t, ctx, bed.Alice, room, "!sec claim")
	waitMessage(t, ctx, reporter, room, bot.UserID, "is handling it")

	late, release, err := bed.Alice.SayWithheld(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	confirm, err := late("!sec confirm < 1.2.3; 1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	audit := say(t, ctx, bed.Alice, room, "!sec audit start")
	// Barrier: the bot has the audit command (decrypted) and holds it, or
	// (out of order) has answered it already.
	deadline := time.Now().Add(wait)
	for !strings.Contains(bot.Log(), "Holding a message until an earlier one of its room is decrypted") && len(answersTo(bed.Alice, room, bot.UserID, audit)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bot neither held nor answered the audit command")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := release(ctx, bot.UserID); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "is confirmed")
	if _, err := bed.Alice.Wait(ctx, wait, "✅ for the audit start", func(evt *event.Event) bool {
		return evt.Type == event.EventReaction && evt.Content.AsReaction().RelatesTo.EventID == audit
	}); err != nil {
		t.Errorf("the audit command was not applied: %v (answers: %q)", err, answersTo(bed.Alice, room, bot.UserID, audit))
	}
	bed.Settle(t, ctx, bot, bed.Alice, reporter)
	for _, body := range messagesFrom(bed.Alice, room, bot.UserID) {
		if strings.Contains(body, "confirm the report before starting the audit") {
			t.Errorf("%s: the audit command was handled before the confirmation: %q", caseID, body)
		}
		if strings.Contains(body, "I could not read the message") {
			t.Errorf("the confirmation was given up on: %q", body)
		}
	}
	if got := answersTo(bed.Alice, room, bot.UserID, confirm); len(got) > 0 && strings.Contains(strings.Join(got, " "), "Refused") {
		t.Errorf("the confirmation was refused: %q", got)
	}
}

// A team member's message whose key never comes holds the later ones of
// its room only for a bound: then they are applied, and the room is told
// whose message from when was skipped (issue 18, item 15).
func TestAKeyThatNeverComesIsNamedAndTheRestGoesOn(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "givenupbot", testbed.BotOptions{})
	reporter, _, room := openCase(t, bot, "givenupreporter")
	lost, _, err := bed.Alice.SayWithheld(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	first, err := lost("!sec claim")
	if err != nil {
		t.Fatal(err)
	}
	next := say(t, ctx, bed.Alice, room, "!sec status")
	// mautrix waits 25 s for a missing key; the bound is 30 s.
	notice, err := bed.Alice.Wait(ctx, 45*time.Second, "the notice of the skipped message", func(evt *event.Event) bool {
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		return evt.Type == event.EventMessage && evt.RoomID == room && evt.Sender == bot.UserID && ok && msg.RelatesTo != nil && msg.RelatesTo.GetReplyTo() == first
	})
	if err != nil {
		t.Fatal(err)
	}
	if body := notice.Content.AsMessage().Body; !strings.Contains(body, "I could not read the message "+bed.Alice.ID().String()) {
		t.Errorf("the notice does not name the sender: %q", body)
	}
	answer, err := bed.Alice.Wait(ctx, wait, "the answer to the later command", func(evt *event.Event) bool {
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		return evt.Type == event.EventMessage && evt.RoomID == room && evt.Sender == bot.UserID && ok && msg.RelatesTo != nil && msg.RelatesTo.GetReplyTo() == next
	})
	if err != nil {
		t.Fatal(err)
	}
	bed.Settle(t, ctx, bot, bed.Alice, reporter)
	// The later command waited for the first one until it was given up on
	// (mautrix gives up after 25 s), by the homeserver's clock.
	var asked *event.Event
	for _, evt := range bed.Alice.Events() {
		if evt.ID == next {
			asked = evt
		}
	}
	if asked == nil {
		t.Fatal("Alice did not see her own command")
	}
	if held := time.UnixMilli(answer.Timestamp).Sub(time.UnixMilli(asked.Timestamp)); held < 20*time.Second {
		t.Errorf("the later command was answered %s after it was sent: it did not wait for the earlier one", held)
	}
}
