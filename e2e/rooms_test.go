package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// A coordinator who left the direct chat the bot stored for them still gets
// the next escalation: in a new direct chat, not into an empty room.
func TestAnEscalationFindsACoordinatorWhoLeftTheirDirectChat(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	tm.Alice.SetAutoJoin(true)
	tm.Bob.SetAutoJoin(true)
	bot := startBot(t, ctx, "leftdmbot", onTeam(steppedPolicy, tm))
	first := newUser(t, ctx, "leftdm-one")
	_, firstID := report(t, ctx, first, bot.UserID)
	advance(t, ctx, bot, 40*time.Minute)
	old := escalationIn(t, tm.Room, tm.Alice, bot.UserID, firstID, "security coordinator", 30*time.Second).RoomID
	if _, err := tm.Alice.Client.LeaveRoom(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitLeft(t, ctx, tm.Alice, old)

	second := newUser(t, ctx, "leftdm-two")
	_, secondID := report(t, ctx, second, bot.UserID)
	advance(t, ctx, bot, 40*time.Minute)
	again := escalationIn(t, tm.Room, tm.Alice, bot.UserID, secondID, "security coordinator", 30*time.Second)
	if again.RoomID == old {
		t.Fatalf("the escalation went to the room the coordinator left")
	}
}

// waitLeft waits until u's client has seen its own leave of room.
func waitLeft(t *testing.T, ctx context.Context, u *matrixtest.User, room interface{ String() string }) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		joined, err := u.Client.JoinedRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		still := false
		for _, r := range joined.JoinedRooms {
			still = still || r.String() == room.String()
		}
		if !still {
			return
		}
		time.Sleep(100 * time.Millisecond) // polls the homeserver's answer, no quiet-period wait
	}
	t.Fatalf("%s is still in %s", u.ID(), room)
}

// A team room that is not end-to-end encrypted is named as such, in the
// log and once in the room, however often secbot starts.
func TestAnUnencryptedTeamRoomIsWarnedAboutOnce(t *testing.T) {
	ctx := testContext(t)
	resp, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Plain team room", Invite: []id.UserID{bed.Bob.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	plain := resp.RoomID
	bot := startBot(t, ctx, "plainteambot", servedOptions(t, testbed.BotOptions{TeamRoom: plain, LogLevel: "debug"}))
	const warning = "not end-to-end encrypted"
	waitMessage(t, ctx, bed.Alice, plain, bot.UserID, warning)
	if err := bot.Stop(); err != nil { // waits for it to stop
		t.Fatal(err)
	}
	restart(t, bot)
	// The restarted bot looked again (its log says so a second time) ...
	const logLine = "The team room is not end-to-end encrypted"
	deadline := time.Now().Add(wait)
	for strings.Count(bot.Log(), logLine) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted bot did not check the team room:\n%s", tail(bot.Log(), 20))
		}
		time.Sleep(100 * time.Millisecond) // polls the log file, no quiet-period wait
	}
	// ... and whatever it recorded is made; then a marker in the room.
	if err := bot.WaitOutboxEmpty(ctx, wait); err != nil {
		t.Fatal(err)
	}
	// No device vouches for a message in the clear: the command is refused.
	say(t, ctx, bed.Alice, plain, "!sec help")
	waitMessage(t, ctx, bed.Alice, plain, bot.UserID, "Team commands work in end-to-end encrypted rooms only")
	if n := countFrom(bed.Alice, bot.UserID, plain, warning); n != 1 {
		t.Errorf("warned %d times, want once", n)
	}
	// What is said in an unencrypted room goes over the wire in plain text;
	// at debug level, mautrix would log its request body.
	const canary = "CANARYplainroom9f3e"
	asked := say(t, ctx, bed.Alice, plain, "!sec "+canary)
	waitFor(t, ctx, bed.Alice, "the answer to the canary", func(evt *event.Event) bool {
		return evt.Sender == bot.UserID && evt.Type == event.EventMessage && evt.Content.AsMessage().RelatesTo.GetReplyTo() == asked
	})
	if err := bot.WaitOutboxEmpty(ctx, wait); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(bot.Log(), canary) {
		t.Error("text sent in an unencrypted room reached secbot's debug log")
	}
}

// An outsider who prepares a room marked for the next case, and has the
// bot join it, does not get the reporter and the team invited into it: after
// a crash in the case room's creation, the bot adopts only a room it made.
func TestAnOutsidersRoomMarkedForTheNextCaseIsNotAdopted(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "trapbot", testbed.BotOptions{}, crashpoint.Env+"=bot.case_room_created")
	mallory := newUser(t, ctx, "mallory")
	next := fmt.Sprintf("SR-%d-0001", time.Now().Year())
	trap, err := mallory.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bot.UserID},
		InitialState: []*event.Event{
			{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}},
			{Type: event.Type{Type: "org.secbot.case", Class: event.StateEventType}, Content: event.Content{Raw: map[string]any{"case_id": next}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mallory.WaitJoined(ctx, wait, trap.RoomID, bot.UserID); err != nil {
		t.Fatal(err)
	}
	reporter := newUser(t, ctx, "trapreporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I want to report a security issue")
	crashedAt(t, bot, "bot.case_room_created") // the room exists; the bot has not recorded it
	restart(t, bot)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if room == trap.RoomID {
		t.Fatal("the reporter was invited into the outsider's room")
	}
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report "+next)
	bed.Settle(t, ctx, bot, reporter, mallory)
	if got := messagesFrom(mallory, trap.RoomID, bot.UserID); len(got) != 0 {
		t.Errorf("the bot posted in the outsider's room: %q", got)
	}
	if !strings.Contains(bot.Log(), "Not adopting a room marked for a case") {
		t.Error("the refused room is not logged")
	}
}
