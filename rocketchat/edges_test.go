package rocketchat

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/outbox"
)

// A post for an encrypted case group is refused as a room the bot cannot
// use (chat.ErrRoomUnusable, permanent), for the core to route elsewhere:
// from what the platform knows of the group, and, after a restart that
// forgot it, from the server's refusal; nothing is posted in the group.
func TestAPostForAnEncryptedGroupIsRefusedAsUnusable(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{ForceEncryptedPrivateGroups: true})
	ctx := ctxT(t)
	e.user(t, "rita")
	c, err := e.st.CreateCase(ctx, "rocketchat:rita", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var enc *EncryptedGroupError
	if _, err := e.exec(t, e.effect(t, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Invite: []disclosure.Person{"rocketchat:rita"}, Platform: disclosure.RocketChat})); !errors.As(err, &enc) {
		t.Fatalf("an encrypted case group: %v", err)
	}
	send := outbox.SendEffect{To: outbox.Target{CaseRoomOf: c.ID.String()}, Markdown: "Welcome."}
	if _, err := e.exec(t, e.effect(t, outbox.KindSend, send)); !errors.Is(err, chat.ErrRoomUnusable) || !errors.Is(err, chat.ErrPermanent) {
		t.Errorf("a post for the encrypted group, known so: %v", err)
	}
	e.p = e.platform(t, e.st) // a restart: nothing known of the group
	if _, err := e.exec(t, e.effect(t, outbox.KindSend, send)); !errors.Is(err, chat.ErrRoomUnusable) || !errors.Is(err, chat.ErrPermanent) {
		t.Errorf("a post for the encrypted group, refused by the server: %v", err)
	}
	if ms := e.s.Said(chat.Native(enc.Room), e.botID); len(ms) != 0 {
		t.Errorf("the bot posted in the encrypted group: %+v", ms)
	}
	// A refusal for another reason is no unusable room.
	if _, err := e.exec(t, e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:NOSUCHROOM"}, Markdown: "x"})); err == nil || errors.Is(err, chat.ErrRoomUnusable) {
		t.Errorf("a post for no room: %v", err)
	}
}

// JoinPublic makes the bot a member of a public channel, once (a second
// start joins nothing again), and leaves a group alone; the channel is
// then named #name for readers.
func TestJoinPublicJoinsAChannelOnceAndNoGroup(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	aliceID, alice := e.user(t, "alice")
	announcements := e.s.CreateChannel("announcements", aliceID)
	group, err := alice.CreatePrivateGroup(ctx, "security-team", []string{"secbot"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := e.p.ResolveRoom(ctx, "rocketchat:announcements")
	if err != nil || room != "rocketchat:"+announcements {
		t.Fatalf("the channel resolved: %q, %v", room, err)
	}
	if got := e.p.RoomName(room); got != "#announcements" {
		t.Errorf("the channel's name for readers: %q", got)
	}
	if got := e.p.RoomName("rocketchat:UNKNOWNROOM"); got != "" {
		t.Errorf("an unknown room's name: %q", got)
	}
	for range 2 {
		if err := e.p.JoinPublic(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := e.s.RoomByID(announcements); len(r.Members) != 2 {
		t.Errorf("the channel's members: %v", r.Members)
	}
	joined := 0
	for _, m := range e.s.Messages(announcements) {
		if m.Type == "uj" && m.UserID == e.botID {
			joined++
		}
	}
	if joined != 1 {
		t.Errorf("the bot joined the channel %d times", joined)
	}
	before := len(e.s.Requests())
	if err := e.p.JoinPublic(ctx, "rocketchat:"+group.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.s.Requests()[before:] {
		if r.Route == "channels.join" {
			t.Errorf("a group was joined as a channel: %+v", r)
		}
	}
}

// A post the server refuses in a room the config names (an announcement
// room the bot was taken out of) is told to the team room by the room's
// name, as the team knows it, not by its ID.
func TestARefusedPostIsToldByTheRoomsName(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	_, alice := e.user(t, "alice")
	lobby, err := alice.CreatePrivateGroup(ctx, "lobby", []string{"secbot"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := e.p.ResolveRoom(ctx, "rocketchat:lobby")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.KickFromGroup(ctx, lobby.ID, e.botID); err != nil {
		t.Fatal(err)
	}
	const teamRoom = "rocketchat:TEAMROOM"
	if _, err := e.exec(t, e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: room}, Markdown: "An advisory.", IfRefused: teamRoom})); !errors.Is(err, chat.ErrPermanent) {
		t.Fatalf("a post in a group the bot is not in: %v", err)
	}
	sends, states, err := e.st.EffectsOfKind(ctx, outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	for i, eff := range sends {
		var s outbox.SendEffect
		if states[i] == "pending" && eff.Decode(&s) == nil && s.To.Room == teamRoom {
			notices = append(notices, s.Markdown)
		}
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "I could not post in #lobby:") {
		t.Errorf("the team room's notice: %q", notices)
	}
}
