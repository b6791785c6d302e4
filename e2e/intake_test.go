package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/testbed"
)

var caseIDPattern = regexp.MustCompile(`SR-\d{4}-\d{4,}`)

func TestReporterDMOpensPrivateEncryptedCaseRoom(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	bot := startBot(t, ctx, "intakebot", testbed.BotOptions{Team: tm})
	reporter := newUser(t, ctx, "reporter")
	outsider := newUser(t, ctx, "outsider")

	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "Hi! I'd like to report a security issue, please.")

	ack := waitMessage(t, ctx, reporter, dm, bot.UserID, "do not share")
	ackBody := ack.Content.AsMessage()
	if ackBody.MsgType != event.MsgNotice {
		t.Errorf("the DM reply is a %s, want m.notice", ackBody.MsgType)
	}
	if !ack.Mautrix.WasEncrypted {
		t.Error("the DM reply was not encrypted")
	}
	caseID := caseIDPattern.FindString(ackBody.Body)
	if caseID == "" {
		t.Fatalf("the DM reply names no case ID: %q", ackBody.Body)
	}

	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	welcome := waitMessage(t, ctx, reporter, room, bot.UserID, "Security report "+caseID)
	if !welcome.Mautrix.WasEncrypted {
		t.Error("the welcome reached the reporter unencrypted")
	}
	if body := welcome.Content.AsMessage().Body; !strings.Contains(body, "acknowledge") || !strings.Contains(body, "detailed response") {
		t.Errorf("the welcome does not say what happens next and by when: %q", body)
	}

	state, err := reporter.Client.State(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	get := func(t event.Type) *event.Event { return state[t][""] }
	if enc := get(event.StateEncryption); enc == nil || enc.Content.AsEncryption().Algorithm != id.AlgorithmMegolmV1 {
		t.Errorf("room encryption = %v, want megolm", enc)
	}
	if jr := get(event.StateJoinRules); jr == nil || jr.Content.AsJoinRules().JoinRule != event.JoinRuleInvite {
		t.Error("the case room is not invite-only")
	}
	if pl := get(event.StatePowerLevels); pl == nil {
		t.Error("the case room has no power levels")
	} else if l := pl.Content.AsPowerLevels(); l.GetUserLevel(bot.UserID) != 100 || l.GetUserLevel(reporter.ID()) >= l.Invite() ||
		l.GetUserLevel(tm.Alice.ID()) < l.Invite() || l.GetUserLevel(tm.Alice.ID()) >= 100 || l.StateDefault() != 100 {
		t.Errorf("in the case room the bot must be the only admin and only the team may invite: %+v", l.Users)
	}
	if ga := get(event.StateGuestAccess); ga == nil || ga.Content.AsGuestAccess().GuestAccess != event.GuestAccessForbidden {
		t.Error("guests are not forbidden in the case room")
	}
	if hv := get(event.StateHistoryVisibility); hv == nil || hv.Content.AsHistoryVisibility().HistoryVisibility != event.HistoryVisibilityInvited {
		t.Error("history visibility is not 'invited'")
	}
	if name := get(event.StateRoomName); name == nil || name.Content.AsRoomName().Name != "Security report "+caseID {
		t.Errorf("room name = %v, want the neutral 'Security report %s'", name, caseID)
	}
	if get(event.StateTopic) != nil {
		t.Error("the case room has a topic: room state is not encrypted, it must have none")
	}
	// Made with an alias (so that a retry finds it), which is gone once
	// the room is recorded: from its state and from the directory.
	if ca := get(event.StateCanonicalAlias); ca == nil || ca.Content.AsCanonicalAlias().Alias != "" || len(ca.Content.AsCanonicalAlias().AltAliases) > 0 {
		t.Errorf("the case room's canonical alias %v, want one emptied", ca)
	}
	if resp, err := reporter.Client.GetAliases(ctx, room); err != nil || len(resp.Aliases) > 0 {
		t.Errorf("the case room's aliases %v (%v), want none", resp, err)
	}
	if public, err := outsider.Client.PublicRooms(ctx, &mautrix.ReqPublicRooms{}); err != nil {
		t.Error(err)
	} else {
		for _, r := range public.Chunk {
			if r.RoomID == room {
				t.Error("the case room is in the public room directory")
			}
		}
	}
	marker := state[event.Type{Type: "org.secbot.case", Class: event.StateEventType}][""]
	if marker == nil || marker.Content.Raw["case_id"] != caseID {
		t.Errorf("org.secbot.case state = %v, want case_id %s", marker, caseID)
	}

	members := map[id.UserID]event.Membership{}
	for key, evt := range state[event.StateMember] {
		members[id.UserID(key)] = evt.Content.AsMember().Membership
	}
	want := map[id.UserID]event.Membership{
		bot.UserID: event.MembershipJoin, reporter.ID(): event.MembershipJoin,
		tm.Alice.ID(): event.MembershipInvite, tm.Bob.ID(): event.MembershipInvite,
	}
	for user, membership := range want {
		if members[user] != membership {
			t.Errorf("%s is %q in the case room, want %q", user, members[user], membership)
		}
	}
	if len(members) != len(want) {
		t.Errorf("the case room has members %v, want exactly %v", members, want)
	}
	if _, ok := members[outsider.ID()]; ok {
		t.Error("an outsider was invited to the case room")
	}

	// The team sees the welcome too once they join, and the team room heard of the case.
	if err := tm.Alice.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, tm.Alice, room, bot.UserID, "Security report "+caseID)
	waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "New security report **"+caseID)

	// Asking again opens no second case: the reporter is pointed to this one.
	say(t, ctx, reporter, dm, "i want to report a vulnerability")
	waitMessage(t, ctx, reporter, dm, bot.UserID, "already have an open report with us: **"+caseID)
	bed.SettleWith(t, ctx, bot, tm.Marker(), reporter)
	if rooms := invitesFrom(reporter, bot.UserID); len(rooms) != 1 {
		t.Errorf("the reporter was invited to %d case rooms, want 1", len(rooms))
	}
}

func TestPublicRoomRequestGetsThreadReplyAndDM(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	bot := startBot(t, ctx, "publicbot", testbed.BotOptions{Team: tm})
	reporter := newUser(t, ctx, "public")

	// A team member brings the bot into a public room.
	resp, err := tm.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Visibility: "public", Name: "Project chat", Invite: []id.UserID{bot.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	public := resp.RoomID
	if err := tm.Alice.WaitJoined(ctx, wait, public, bot.UserID); err != nil {
		t.Fatal(err)
	}
	if err := reporter.Join(ctx, public); err != nil {
		t.Fatal(err)
	}
	request := say(t, ctx, reporter, public, "Hello, who do I talk to about a security vulnerability I found?")

	reply := waitMessage(t, ctx, reporter, public, bot.UserID, "direct message")
	rel := reply.Content.AsMessage().RelatesTo
	if rel == nil || rel.Type != event.RelThread || rel.EventID != request {
		t.Errorf("the public answer is not in a thread under the request: %+v", rel)
	}
	if caseIDPattern.MatchString(reply.Content.AsMessage().Body) {
		t.Error("the public answer names the case ID")
	}

	invite, err := reporter.WaitInvite(ctx, wait, bot.UserID, func(evt *event.Event) bool { return evt.Content.AsMember().IsDirect })
	if err != nil {
		t.Fatal(err)
	}
	if err := reporter.Join(ctx, invite.RoomID); err != nil {
		t.Fatal(err)
	}
	hello := waitMessage(t, ctx, reporter, invite.RoomID, bot.UserID, "public room")
	if !hello.Mautrix.WasEncrypted {
		t.Error("the DM the bot opened is not encrypted")
	}
	caseID := caseIDPattern.FindString(hello.Content.AsMessage().Body)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report "+caseID)
}

func TestBotDeclinesGroupInvitesFromOutsiders(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	bot := startBot(t, ctx, "declinebot", testbed.BotOptions{Team: tm})
	outsider := newUser(t, ctx, "inviter")
	resp, err := outsider.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Let me in", Invite: []id.UserID{bot.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = outsider.Wait(ctx, wait, "the bot declining", func(evt *event.Event) bool {
		return evt.Type == event.StateMember && evt.RoomID == resp.RoomID && evt.GetStateKey() == bot.UserID.String() && evt.Content.AsMember().Membership == event.MembershipLeave
	})
	if err != nil {
		t.Fatal(err)
	}
	members, err := outsider.Client.JoinedMembers(ctx, resp.RoomID)
	if err != nil {
		t.Fatal(err)
	}
	if _, in := members.Joined[bot.UserID]; in {
		t.Error("the bot joined a group room an outsider invited it to")
	}
}

func TestBadInputOpensNoCaseAndCrashesNothing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	bot := startBot(t, ctx, "badinputbot", testbed.BotOptions{Team: tm})
	u := newUser(t, ctx, "fuzzer")
	dm := openDM(t, ctx, u, bot.UserID)

	first := say(t, ctx, u, dm, "hello there")
	waitMessage(t, ctx, u, dm, bot.UserID, "report a security issue")
	sends := []struct {
		name    string
		typ     event.Type
		content any
	}{
		{"an edit that adds intent", event.EventMessage, map[string]any{
			"msgtype": "m.text", "body": "* I want to report a security issue",
			"m.new_content": map[string]any{"msgtype": "m.text", "body": "I want to report a security issue"},
			"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": first},
		}},
		{"a reaction", event.EventReaction, map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": first, "key": "👍"}}},
		{"an image", event.EventMessage, map[string]any{"msgtype": "m.image", "body": "vulnerability.png", "url": "mxc://localhost/abc"}},
		{"a message without a body", event.EventMessage, map[string]any{"msgtype": "m.text"}},
		{"a body of the wrong type", event.EventMessage, map[string]any{"msgtype": "m.text", "body": 42}},
		{"an unknown event type", event.Type{Type: "org.example.unknown", Class: event.MessageEventType}, map[string]any{"body": "I want to report a security issue"}},
		{"a huge message", event.EventMessage, map[string]any{"msgtype": "m.text", "body": strings.Repeat("lorem ipsum ", 3000)}},
	}
	for _, s := range sends {
		if _, err := u.Client.SendMessageEvent(ctx, dm, s.typ, s.content); err != nil {
			t.Fatalf("send %s: %v", s.name, err)
		}
	}
	if _, err := u.Client.RedactEvent(ctx, dm, first); err != nil {
		t.Fatal(err)
	}
	// Everything above has been handled, and all it led to made and seen.
	bed.SettleWith(t, ctx, bot, tm.Marker(), u)
	if !bot.Running() {
		t.Fatal("the bot crashed on bad input")
	}
	if rooms := invitesFrom(u, bot.UserID); len(rooms) != 0 {
		t.Errorf("bad input opened %d case(s)", len(rooms))
	}
	if got := messagesFrom(u, dm, bot.UserID); slices.ContainsFunc(got, func(s string) bool { return caseIDPattern.MatchString(s) }) {
		t.Errorf("a case was opened: %q", got)
	}
}
