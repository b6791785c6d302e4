package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// openCase has a fresh reporter open a case and join its room, with the
// coordinator joined too; it returns the reporter, the case ID and the room.
func openCase(t *testing.T, bot *testbed.Bot, prefix string) (*matrixtest.User, string, id.RoomID) {
	t.Helper()
	ctx := testContext(t)
	reporter := newUser(t, ctx, prefix)
	_, caseID := report(t, ctx, reporter, bot.UserID)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report "+caseID)
	if err := bed.Alice.Join(ctx, room); err != nil && !strings.Contains(err.Error(), "already") {
		t.Fatal(err)
	}
	if err := bed.Alice.WaitJoined(ctx, wait, room, bed.Alice.ID()); err != nil {
		t.Fatal(err)
	}
	return reporter, caseID, room
}

func TestACaseGoesFromIntakeToPublishedAndAnnounced(t *testing.T) {
	ctx := testContext(t)
	gh, err := testbed.NewGitHub(true, "octocat", "carol-gh")
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	resp, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Visibility: "public", Name: "Announcements"})
	if err != nil {
		t.Fatal(err)
	}
	announceRoom := resp.RoomID
	// A room the bot was never let into: its announcement must fail alone.
	closed, err := bed.Bob.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Closed"})
	if err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, ctx, "processbot", testbed.BotOptions{GitHub: gh, AnnounceRooms: []id.RoomID{announceRoom, closed.RoomID}})
	if _, err := bed.Alice.Client.InviteUser(ctx, announceRoom, &mautrix.ReqInviteUser{UserID: bot.UserID}); err != nil {
		t.Fatal(err)
	}
	if err := bed.Alice.WaitJoined(ctx, wait, announceRoom, bot.UserID); err != nil {
		t.Fatal(err)
	}
	reader := newUser(t, ctx, "reader")
	if err := reader.Join(ctx, announceRoom); err != nil {
		t.Fatal(err)
	}
	carol := newUser(t, ctx, "carol")
	carol.SetAutoJoin(true)

	reporter, caseID, room := openCase(t, bot, "fullflow")
	waitMessage(t, ctx, reporter, room, bot.UserID, "private GitHub Security Advisory for **")
	// What the reporter writes in the case room stays there: not in the
	// team room, the announcement or the advisory.
	const canary = "CANARY-5b1e-loader-overflow-details"
	say(t, ctx, reporter, room, "The details: "+canary)
	alice := func(cmd string) { say(t, ctx, bed.Alice, room, cmd) }
	// done sends a command answered with a ✅ and waits for it: a message
	// whose key reaches the bot late is handled after the next one.
	done := func(cmd string) {
		t.Helper()
		sent := say(t, ctx, bed.Alice, room, cmd)
		if _, err := bed.Alice.Wait(ctx, wait, "✅ for "+cmd, func(evt *event.Event) bool {
			return evt.Type == event.EventReaction && evt.Content.AsReaction().RelatesTo.EventID == sent
		}); err != nil {
			t.Fatal(err)
		}
	}

	alice("!sec claim")
	waitMessage(t, ctx, reporter, room, bot.UserID, "is handling it")
	alice("!sec audit start")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "confirm the report before starting the audit")
	alice("!sec confirm < 1.2.3; 1.2.3")
	waitMessage(t, ctx, reporter, room, bot.UserID, "is confirmed")
	alice("!sec fork")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "Requested the temporary private fork")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "temporary private fork for "+caseID+" is ready")
	say(t, ctx, reporter, room, "!credit octocat")
	waitMessage(t, ctx, reporter, room, bot.UserID, "credit GitHub user **octocat**")

	end := time.Now().AddDate(0, 0, 3).Format("2006-01-02")
	alice("!sec embargo propose " + end)
	waitMessage(t, ctx, reporter, room, bot.UserID, "proposes an **embargo**")
	say(t, ctx, reporter, room, "!agree")
	waitMessage(t, ctx, reporter, room, bot.UserID, "the embargo holds until")
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "The reporter of **"+caseID+"** agreed")

	alice("!sec embargo add " + carol.ID().String() + " carol-gh")
	if _, err := carol.WaitInvite(ctx, wait, bot.UserID, nil); err != nil {
		t.Fatal(err)
	}
	if err := carol.WaitJoined(ctx, wait, room, carol.ID()); err != nil {
		t.Fatal(err)
	}
	done("!sec audit start")
	done("!sec audit done")
	alice("!sec cve")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "A CVE is requested")
	done("!sec summary Heap overflow in the loader")
	// The placeholder names the case: nothing is published with it.
	alice("!sec publish")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "still carries the neutral placeholder")
	done("!sec description A crafted image overflows a buffer in the loader.")
	alice("!sec publish")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "is under embargo")
	say(t, ctx, bed.Bob, bed.TeamRoom, "!sec publish "+caseID+" --force")
	waitMessage(t, ctx, bed.Bob, bed.TeamRoom, bot.UserID, "only the coordinator")
	bed.Settle(t, ctx, bot, reader)
	if gh.Advisories()[0].State != "draft" {
		t.Fatal("the advisory was published during the embargo")
	}
	if got := messagesFrom(reader, announceRoom, bot.UserID); len(got) != 0 {
		t.Fatalf("the public saw an announcement during the embargo: %q", got)
	}

	alice("!sec embargo remove " + carol.ID().String()) // her GitHub account was stored with her
	_, err = bed.Alice.Wait(ctx, wait, "carol removed", func(evt *event.Event) bool {
		return evt.Type == event.StateMember && evt.RoomID == room && evt.GetStateKey() == carol.ID().String() && evt.Content.AsMember().Membership == event.MembershipLeave
	})
	if err != nil {
		t.Fatal(err)
	}

	alice("!sec publish --force")
	announcement := waitMessage(t, ctx, reader, announceRoom, bot.UserID, "Security advisory GHSA-")
	body := announcement.Content.AsMessage().Body
	for _, want := range []string{"CVE-", "Heap overflow in the loader", "< 1.2.3", "1.2.3", "octocat", "https://github.com/enarx/enarx/security/advisories/GHSA-"} {
		if !strings.Contains(body, strings.ReplaceAll(want, "<", "\\<")) && !strings.Contains(body, want) {
			t.Errorf("the announcement lacks %q:\n%s", want, body)
		}
	}
	for _, never := range []string{caseID, reporter.ID().String(), "SR-"} {
		if strings.Contains(body, never) {
			t.Errorf("the announcement carries %q:\n%s", never, body)
		}
	}
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "posting in "+string(announceRoom))
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "I could not post in "+string(closed.RoomID))
	adv := gh.Advisories()[0]
	if adv.State != "published" || !slices.Contains(adv.Credits, "octocat") || adv.CVEID == "" {
		t.Errorf("the advisory on GitHub: %+v", adv)
	}
	if adv.Summary != "Heap overflow in the loader" || strings.Contains(adv.Summary+adv.Description, "SR-") {
		t.Errorf("the published advisory's text: %q / %q", adv.Summary, adv.Description)
	}
	if slices.Contains(adv.CollaboratingUsers, "carol-gh") {
		t.Error("carol is still a collaborator after being removed from the need-to-know list")
	}
	alice("!sec close")
	waitMessage(t, ctx, reporter, room, bot.UserID, "is closed")
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("requests GitHub's description rejects: %v", v)
	}

	for _, view := range [][]string{messagesFrom(reader, announceRoom, bot.UserID), messagesFrom(bed.Alice, bed.TeamRoom, bot.UserID), messagesFrom(bed.Alice, room, bot.UserID)} {
		for _, body := range view {
			if strings.Contains(body, canary) {
				t.Errorf("the bot repeated the reporter's details: %q", body)
			}
		}
	}
	if a := fmt.Sprintf("%+v", gh.Advisories()); strings.Contains(a, canary) {
		t.Errorf("the reporter's details reached GitHub: %s", a)
	}

	// A second announce posts nowhere new: the public room already has it.
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec announce "+caseID)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "already posted in "+string(announceRoom))
	bed.Settle(t, ctx, bot, reader)
	if n := len(messagesFrom(reader, announceRoom, bot.UserID)); n != 1 {
		t.Errorf("the public room has %d announcements, want 1", n)
	}
}

// Everyone who is not on the team is refused every team command, and
// nothing changes.
func TestOutsidersAndReportersCannotRunTeamCommands(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "permbot", testbed.BotOptions{})
	reporter, caseID, room := openCase(t, bot, "permreporter")
	outsider := newUser(t, ctx, "permoutsider")
	if _, err := bed.Alice.Client.InviteUser(ctx, bed.TeamRoom, &mautrix.ReqInviteUser{UserID: outsider.ID()}); err != nil {
		t.Fatal(err)
	}
	if err := outsider.Join(ctx, bed.TeamRoom); err != nil {
		t.Fatal(err)
	}
	// The outsider's client encrypts for the members it knows of: wait
	// until it has seen the bot in the room.
	if err := outsider.WaitJoined(ctx, wait, bed.TeamRoom, bot.UserID); err != nil {
		t.Fatal(err)
	}
	commands := []string{"help", "list", "status", "claim", "assign %s @alice:localhost", "confirm", "versions %s 1.0", "severity high",
		"cwe CWE-787", "summary x", "reject nope", "audit start", "fork", "cve", "publish --force", "announce", "update hi", "respond hi",
		"close", "embargo propose 2099-01-01", "embargo add @mallory:localhost", "embargo lift", "stats", "contacts", "github octocat"}
	windowsOf := map[id.UserID]int{}
	for _, who := range []struct {
		u    *matrixtest.User
		room id.RoomID
	}{{outsider, bed.TeamRoom}, {reporter, room}} {
		start := time.Now()
		for _, cmd := range commands {
			text := "!sec " + cmd
			if strings.Contains(cmd, "%s") {
				text = "!sec " + fmt.Sprintf(cmd, caseID)
			} else if who.room == bed.TeamRoom && !strings.HasPrefix(cmd, "help") && !strings.HasPrefix(cmd, "list") && !strings.HasPrefix(cmd, "stats") && !strings.HasPrefix(cmd, "contacts") {
				parts := strings.SplitN(cmd, " ", 2)
				text = "!sec " + parts[0] + " " + caseID
				if len(parts) > 1 {
					text += " " + parts[1]
				}
			}
			say(t, ctx, who.u, who.room, text)
		}
		// The bot's minutes start at the first command it handled: the
		// commands span at most this many of them.
		windows := int(time.Since(start)/handlers.ChatterWindow) + 2
		windowsOf[who.u.ID()] = windows
		refusals, quiet := 0, 0
		// Every command has been handled, and nothing else follows.
		bed.Settle(t, ctx, bot, who.u)
		for _, body := range messagesFrom(who.u, who.room, bot.UserID) {
			switch {
			case strings.Contains(body, "Only the security team can use"):
				refusals++
			case strings.Contains(body, "stay quiet for a minute"):
				quiet++
			}
		}
		// Someone outside the team is answered a few times a minute, then
		// told once to slow down, then not at all.
		if refusals == 0 || refusals > windows*handlers.ChatterBurst || quiet == 0 || quiet > windows {
			t.Errorf("%s got %d refusals and %d limit notices for %d commands over at most %d minutes", who.u.ID(), refusals, quiet, len(commands), windows)
		}
	}
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec status "+caseID)
	status := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "**"+caseID+"** — ")
	body := status.Content.AsMessage().Body
	if !strings.Contains(body, "received") || strings.Contains(body, "handler assigned") {
		t.Errorf("the case changed after refused commands:\n%s", body)
	}
	if strings.Contains(body, "embargo") && strings.Contains(body, "proposed") {
		t.Errorf("an embargo appeared:\n%s", body)
	}
	// The refusals are in the audit log, once a minute each: a flood of
	// them writes a row a minute, not a row a command.
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := bot.OpenStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, who := range []id.UserID{outsider.ID(), reporter.ID()} {
		entries, err := st.AuditBy(ctx, person(who))
		if err != nil {
			t.Fatal(err)
		}
		refused := 0
		for _, e := range entries {
			if !e.Allowed {
				refused++
			}
		}
		if refused == 0 || refused > windowsOf[who] {
			t.Errorf("the audit log has %d refusals for %s, want 1 to %d (one a minute)", refused, who, windowsOf[who])
		}
	}
}
