package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ghsatest "github.com/enarx/secbot/internal/testenv/github"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// rcTeam is the team on the stand-in: alice (coordinator) and bob, with
// the bot, in the private group security-team.
type rcTeam struct {
	aliceID, bobID, teamID string
}

func newRCTeam(t testing.TB, ctx context.Context, b *rcBed) rcTeam {
	aliceID, aliceToken := b.s.AddUser("alice")
	bobID, _ := b.s.AddUser("bob")
	team, err := b.client(aliceID, aliceToken).CreatePrivateGroup(ctx, "security-team", []string{"secbot", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	return rcTeam{aliceID: aliceID, bobID: bobID, teamID: team.ID}
}

const rcTeamTOML = `[team]
room = "rocketchat:security-team"
members = ["rocketchat:alice", "rocketchat:bob"]
coordinator = "rocketchat:alice"
backup = "rocketchat:bob"
`

// rcReport has a new reporter write the bot in a DM and returns their ID
// and the DM's room ID.
func rcReport(t testing.TB, ctx context.Context, b *rcBed, name string) (userID, dmID string) {
	t.Helper()
	userID, token := b.s.AddUser(name)
	dm, err := b.client(userID, token).CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	b.say(userID, dm.ID, "I want to report a security issue")
	return userID, dm.ID
}

// A case on Rocket.Chat from a reporter's DM to the announcement: the
// team runs the steps in the case group, GitHub publishes the advisory,
// and only then is the announcement posted in the public channel, once,
// with nothing of the case in it.
func TestARocketChatCaseIsPublishedAndAnnouncedInAChannelOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	team := newRCTeam(t, ctx, b)
	readerID, _ := b.s.AddUser("reader")
	announcements := b.s.CreateChannel("announcements", team.aliceID, b.botID, readerID)

	const ghToken = "ghp_secbot_stand_in_token"
	gh, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Public: true, Users: []string{"octocat"}, Token: ghToken}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	if err := os.WriteFile(filepath.Join(b.dir, "github-token"), []byte(ghToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := b.config(rcTeamTOML + `[announce]
rooms = ["rocketchat:announcements"]
[github]
api_url = "` + gh.URL() + `"
token_file = "github-token"
owner = "enarx"
repo = "enarx"
watch_reports = false
`)
	b.serve(ctx, path)

	ritaID, dm := rcReport(t, ctx, b, "rita")
	b.wait(ctx, "the reporter's answer", func() bool { return b.said(dm, "SR-2026-0001") })
	var group rctest.Room
	b.wait(ctx, "the case group's welcome", func() bool {
		var ok bool
		group, ok = b.s.RoomByName("security-report-sr-2026-0001")
		return ok && b.said(group.ID, "SR-2026-0001")
	})
	b.wait(ctx, "the advisory on GitHub", func() bool { return len(gh.Advisories()) == 1 })
	const canary = "CANARY-rc-announce-4d2e"
	b.say(ritaID, group.ID, "The details: "+canary)

	// published reports whether GitHub says the advisory is published;
	// early is set if the channel heard from the bot before that.
	var early []rctest.Message
	published := func() bool {
		posted := b.botSaid(announcements) // read before GitHub: a post implies the state after it
		done := gh.Advisories()[0].State == "published"
		if !done && len(posted) > 0 && early == nil {
			early = posted
		}
		return done
	}
	for _, cmd := range []string{"!sec claim", "!sec confirm 1.0", "!sec audit start", "!sec audit done",
		"!sec summary Heap overflow in the loader", "!sec description A crafted image overflows a buffer in the loader."} {
		b.command(ctx, team.bobID, group.ID, cmd)
		if published() {
			t.Fatalf("the advisory is published after %q", cmd)
		}
	}
	if got := b.s.Messages(announcements); len(got) != 0 {
		t.Fatalf("the channel heard something before publish: %+v", got)
	}
	b.say(team.bobID, group.ID, "!sec publish")
	b.wait(ctx, "the advisory published on GitHub", published)
	var announcement rctest.Message
	b.wait(ctx, "the announcement in the channel", func() bool {
		ms := b.botSaid(announcements, "Security advisory GHSA-")
		if len(ms) > 0 {
			announcement = ms[0]
		}
		return len(ms) > 0
	})
	if early != nil {
		t.Fatalf("the channel heard from the bot before GitHub published the advisory: %+v", early)
	}
	for _, want := range []string{"Heap overflow in the loader", "affected versions: = 1", "https://github.com/enarx/enarx/security/advisories/GHSA-"} {
		if !strings.Contains(announcement.Text, want) {
			t.Errorf("the announcement lacks %q:\n%s", want, announcement.Text)
		}
	}
	for _, never := range []string{"SR-", "sr-2026", "rita", canary, group.ID, group.Name} {
		if strings.Contains(announcement.Text, never) {
			t.Errorf("the announcement carries %q:\n%s", never, announcement.Text)
		}
	}
	// The channel by its name, as the team knows it (the Markdown escapes
	// its #), not by the ID its messages carry.
	b.wait(ctx, "the team told where it went", func() bool { return b.said(team.teamID, "Announcement of **SR-2026-0001**", "posting in") })
	if ms := b.botSaid(team.teamID, "Announcement of **SR-2026-0001**", `posting in \#announcements.`); len(ms) != 1 {
		t.Errorf("the team room's notice does not name the channel #announcements: %v", b.botSaid(team.teamID, "Announcement of **SR-2026-0001**"))
	}

	// Announcing again posts nothing new: once its answer is in, the
	// channel still holds the one announcement and nothing else.
	before := len(b.s.Messages(team.teamID))
	b.say(team.aliceID, team.teamID, "!sec announce SR-2026-0001")
	var again string
	b.wait(ctx, "the answer to announce again", func() bool {
		for _, m := range b.s.Messages(team.teamID)[before:] {
			if m.UserID == b.botID && strings.Contains(m.Text, "Announcement of **SR-2026-0001**") {
				again = m.Text
				return true
			}
		}
		return false
	})
	// (Whether it also says "already posted in" depends on whether the
	// outbox marked the first post done yet: the post and its mark are
	// two steps.)
	if !strings.Contains(again, "nothing new to post") {
		t.Errorf("the answer to announce again: %q", again)
	}
	if ms := b.s.Messages(announcements); len(ms) != 1 || ms[0].ID != announcement.ID {
		var lines []string
		for _, m := range ms {
			lines = append(lines, fmt.Sprintf("%s: %q", m.Username, m.Text))
		}
		t.Errorf("the channel holds %d messages, want the one announcement:\n%s", len(ms), strings.Join(lines, "\n"))
	}
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("requests GitHub's description rejects: %v", v)
	}
}

// rcEncryptedCase opens a case on a server that forces encryption on
// private groups and returns the team, the reporter's DM and the team
// room's notice, once both notices are in.
func rcEncryptedCase(t *testing.T, ctx context.Context) (b *rcBed, team rcTeam, dm, unusable string) {
	b = newRCBed(t, rctest.Options{ForceEncryptedPrivateGroups: true})
	// The team's room: the stand-in forces encryption on every private
	// group (it has no group made before the setting, as a real server
	// may), so here the team meets in a channel, which stays unencrypted.
	aliceID, _ := b.s.AddUser("alice")
	bobID, _ := b.s.AddUser("bob")
	team = rcTeam{aliceID: aliceID, bobID: bobID, teamID: b.s.CreateChannel("security-team", aliceID, bobID, b.botID)}
	b.serve(ctx, b.config(rcTeamTOML))

	_, dm = rcReport(t, ctx, b, "rita")
	b.wait(ctx, "the reporter's answer", func() bool { return b.said(dm, "SR-2026-0001") })
	// The first words of templates/text/case_room_unusable.md.
	unusable = "**The private room of SR-2026-0001 cannot be used**"
	b.wait(ctx, "the team told", func() bool { return b.said(team.teamID, unusable, "reach them there") })
	// templates/text/no_encryption.md with Unusable.
	b.wait(ctx, "the reporter told", func() bool {
		return b.said(dm, "The private room of your report cannot be used on this chat", "share no details here")
	})
	return b, team, dm, unusable
}

// On a server that forces encryption on private groups, the case group
// comes out encrypted and a bot cannot use it: the team room is told once,
// and the reporter is told in their DM that the room cannot be used.
func TestAForcedEncryptedCaseGroupIsToldOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, team, dm, unusable := rcEncryptedCase(t, ctx)
	group, ok := b.s.RoomByName("security-report-sr-2026-0001")
	if !ok || !group.Encrypted {
		t.Fatalf("the case group: %+v, %v", group, ok)
	}
	if ms := b.botSaid(group.ID); len(ms) != 0 {
		t.Errorf("the bot posted in the encrypted group: %+v", ms)
	}
	// Told once: a later command, answered in the team room after the
	// notices, finds the one notice.
	b.command(ctx, team.aliceID, team.teamID, "!sec help")
	if n := len(b.botSaid(team.teamID, unusable)); n != 1 {
		t.Errorf("the team room was told %d times that the case room cannot be used", n)
	}
	if n := len(b.botSaid(dm, "cannot be used")); n != 1 {
		t.Errorf("the reporter was told %d times that the room cannot be used", n)
	}
}

// A reporter who writes the bot while secbot is down is answered once
// secbot is back (the REST catch-up after its start), once: a
// second restart with news in the DM does not answer it again.
func TestARocketChatMessageSentWhileSecbotWasDownIsAnsweredOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	team := newRCTeam(t, ctx, b)
	path := b.config(rcTeamTOML)
	stop := b.serve(ctx, path)
	// secbot has been up: its team room is known, its state is in the
	// database. Then it stops.
	b.command(ctx, team.aliceID, team.teamID, "!sec help")
	stop()
	if n := b.s.Connections(); n != 0 {
		t.Fatalf("%d realtime connections after serve returned", n)
	}

	ritaID, dm := rcReport(t, ctx, b, "rita")
	const ack = "Your report is **SR-2026-0001**"
	if b.said(dm, ack) {
		t.Fatal("answered while secbot was down")
	}
	stop = b.serve(ctx, path)
	b.wait(ctx, "the answer after the restart", func() bool { return b.said(dm, ack) })
	b.wait(ctx, "the case group's welcome", func() bool {
		group, ok := b.s.RoomByName("security-report-sr-2026-0001")
		return ok && b.said(group.ID, "SR-2026-0001")
	})

	// Once more down, a second message, and up: once the second is
	// answered, the first was still answered once.
	stop()
	before := len(b.s.Messages(dm))
	b.say(ritaID, dm, "hello?")
	b.serve(ctx, path)
	b.wait(ctx, "the answer to the second message", func() bool {
		for _, m := range b.s.Messages(dm)[before:] {
			if m.UserID == b.botID {
				return true
			}
		}
		return false
	})
	// The bot said in the DM: the answer to the report, and the answer to
	// "hello?" — nothing else.
	if ms := b.botSaid(dm); len(ms) != 2 || !strings.Contains(ms[0].Text, ack) {
		t.Errorf("the reporter's first message was not answered just once: %+v", ms)
	}
	if n := len(b.botSaid(team.teamID, "New security report **SR-2026-0001**")); n != 1 {
		t.Errorf("the team was told %d times of the report", n)
	}
	if _, ok := b.s.RoomByName("security-report-sr-2026-0001-2"); ok {
		t.Error("a second case group was made")
	}
}

// When the case group cannot be used, the team's answer typed in the team
// room naming the case reaches the reporter in their DM, as the team
// room's notice (templates/text/case_room_unusable.md) promises: the case
// group is the one place a bot cannot write, and the team may run respond
// for the case only there and in the team room (SPEC "Where commands
// work").
func TestTheTeamsAnswerReachesTheReporterWhoseCaseGroupIsEncrypted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, team, dm, _ := rcEncryptedCase(t, ctx)
	const answer = "Thanks, we can reproduce it and are on it."
	b.command(ctx, team.aliceID, team.teamID, "!sec respond SR-2026-0001 "+answer)
	// The bot's first try to post the answer, wherever it went.
	var sent rctest.Request
	b.wait(ctx, "the bot's post of the answer", func() bool {
		for _, r := range b.s.Requests() {
			if r.UserID == b.botID && r.Route == "chat.sendMessage" && strings.Contains(string(r.Body), "reproduce it") {
				sent = r
				return true
			}
		}
		return false
	})
	// A later answer in the case's lane comes after every post of the
	// answer: once it is in, the answer went wherever it goes.
	b.command(ctx, team.aliceID, team.teamID, "!sec status SR-2026-0001")
	if !b.said(dm, answer) {
		t.Errorf("the team's answer did not reach the reporter's DM; the bot sent it as %s (%d): %s\n%s", sent.Route, sent.Status, sent.Body, b.dump())
	}
}
