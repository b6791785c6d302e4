package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/internal/testenv/testbed"
	"github.com/enarx/secbot/rocketchat"
)

// teamSection is the config's [team] block as the testbed writes it.
var teamSection = regexp.MustCompile(`(?s)\[team\]\n.*?\n\n`)

// Both platforms at once, the other way round: the team is on Rocket.Chat
// (its private group, its coordinator and backup), and a Matrix user
// reports in a Matrix DM. The reporter gets their answer in that DM; the
// case group is made on Rocket.Chat with the team and without the reporter,
// who cannot be on another chat; the welcome says so; what the team answers
// with commands reaches the reporter's DM, encrypted, and nothing of its
// room talk does; the reporter's text stays in their DM (it is never
// forwarded, not into the case room either: they are pointed to their
// private area, not to the team's group), while their commands there reach
// the team as from the case room; the ladder reaches the coordinator by a
// Rocket.Chat DM.
func TestARocketChatTeamTakesAMatrixReporter(t *testing.T) {
	ctx := testContext(t)
	rc := newRCTeamBot(t, ctx, "rcteambot", testbed.BotOptions{
		SLA: map[string]string{"acknowledge": `"8s"`, "remind_before": `"0s"`, "repeat_every": `"24h"`}})
	s, bot, botID, carolID, daveID, teamRoom, carolDM := rc.s, rc.bot, rc.botID, rc.carolID, rc.daveID, rc.teamRoom, rc.carolDM
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitSubscribed(ctx, botID, 1); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if err := s.Wait(wctx, cond); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// The Matrix reporter's request, with a link: it looks like details.
	reporter := newUser(t, ctx, "mreporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I want to report a security issue, see https://example.org/poc")
	ack := waitMessage(t, ctx, reporter, dm, bot.UserID, "another chat")
	caseID := regexp.MustCompile(`SR-\d{4}-\d{4}`).FindString(ack.Content.AsMessage().Body)
	if caseID == "" {
		t.Fatalf("the reporter's answer names no case: %q", ack.Content.AsMessage().Body)
	}
	warning := waitMessage(t, ctx, reporter, dm, bot.UserID, "share nothing more")
	if body := warning.Content.AsMessage().Body; !strings.Contains(body, caseID) || strings.Contains(body, "inviting you") {
		t.Errorf("the details warning of a reporter on another chat: %q", body)
	}
	for _, evt := range []*event.Event{ack, warning} {
		if !evt.Mautrix.WasEncrypted {
			t.Errorf("the bot's answer in the reporter's DM was not encrypted: %q", evt.Content.AsMessage().Body)
		}
	}

	// The case group on Rocket.Chat: the team and the bot, no one else.
	var group rctest.Room
	waitFor("the case group on Rocket.Chat", func() bool {
		var ok bool
		group, ok = s.RoomByName("security-report-" + strings.ToLower(caseID))
		return ok && len(s.Said(group.ID, botID, "Security report "+caseID)) > 0
	})
	if group.Type != "p" {
		t.Errorf("the case room is a %q room, not a private group", group.Type)
	}
	members := slices.Clone(group.Members)
	slices.Sort(members)
	want := []string{botID, carolID, daveID}
	slices.Sort(want)
	if !slices.Equal(members, want) {
		t.Errorf("the case group's members are %v, want the bot and the team %v", members, want)
	}
	welcome := s.Said(group.ID, botID, "Security report "+caseID)[0]
	if !strings.Contains(welcome.Text, "another chat") || strings.Contains(welcome.Text, "Welcome, ") {
		t.Errorf("the case group's welcome does not say the reporter is elsewhere: %q", welcome.Text)
	}
	if len(s.Said(teamRoom, botID, caseID)) == 0 {
		// The team room's notice may come after the group's welcome.
		waitFor("the team room's notice", func() bool { return len(s.Said(teamRoom, botID, caseID)) > 0 })
	}

	// Nobody acknowledges: the ladder's first step, the coordinator, by
	// her Rocket.Chat DM.
	waitFor("the escalation in the coordinator's Rocket.Chat DM", func() bool {
		return len(s.Said(carolDM, botID, caseID, "coordinator")) > 0
	})

	// The team's talk stays in its group; its commands' answers reach the
	// reporter's DM.
	talk := canary("TEAMTALK")
	if _, err := s.SendAs(carolID, group.ID, "Between us: "+talk, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendAs(carolID, group.ID, "!sec claim", ""); err != nil {
		t.Fatal(err)
	}
	claimed := waitMessage(t, ctx, reporter, dm, bot.UserID, "acknowledged")
	if !claimed.Mautrix.WasEncrypted {
		t.Error("the acknowledgement reached the reporter unencrypted")
	}
	response := canary("RESPONSE")
	if _, err := s.SendAs(carolID, group.ID, "!sec respond Thank you, we can reproduce it: "+response, ""); err != nil {
		t.Fatal(err)
	}
	answered := waitMessage(t, ctx, reporter, dm, bot.UserID, response)
	if !answered.Mautrix.WasEncrypted {
		t.Error("the team's response reached the reporter unencrypted")
	}

	// The reporter's follow-up in their DM: its text goes nowhere (they
	// are pointed to their private area again); their answer to the
	// team's embargo proposal, a command, reaches the case group.
	followUp := canary("FOLLOWUP")
	say(t, ctx, reporter, dm, "Here is more about it: "+followUp)
	pointer := waitMessage(t, ctx, reporter, dm, bot.UserID, "You already have an open report")
	if body := pointer.Content.AsMessage().Body; !strings.Contains(body, caseID) || strings.Contains(body, "!invite") || strings.Contains(body, group.ID) {
		t.Errorf("the pointer for a reporter on another chat: %q", body)
	}
	end := time.Now().AddDate(0, 0, 10).Format("2006-01-02")
	if _, err := s.SendAs(carolID, group.ID, "!sec embargo propose "+end, ""); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, dm, bot.UserID, "Say `!agree`")
	say(t, ctx, reporter, dm, "!agree")
	waitMessage(t, ctx, reporter, dm, bot.UserID, "the embargo holds until")
	// As for a reporter in the case room, the domain tells the team room
	// (the case group hears nothing of it).
	waitFor("the reporter's agreement in the team room", func() bool {
		return len(s.Said(teamRoom, botID, "The reporter of", caseID, "agreed")) > 0
	})

	// Nothing of the team's room talk reached the reporter, nor the
	// reporter's text any request secbot made on Rocket.Chat.
	for _, evt := range reporter.Events() {
		if evt.Type == event.EventMessage && evt.Sender == bot.UserID {
			body := evt.Content.AsMessage().Body
			if strings.Contains(body, talk) {
				t.Errorf("the team's room talk reached the reporter: %q", body)
			}
			if strings.Contains(body, group.ID) {
				t.Errorf("the reporter was shown the team's group: %q", body)
			}
		}
	}
	for _, r := range s.Requests() {
		if r.UserID == botID && (bytes.Contains(r.Body, []byte(followUp)) || bytes.Contains(r.Body, []byte("example.org/poc"))) {
			t.Errorf("the reporter's text was sent to Rocket.Chat: %s %s", r.Route, r.Body)
		}
	}
	for _, room := range []string{group.ID, teamRoom, carolDM} {
		for _, m := range s.Messages(room) {
			if strings.Contains(m.Text, followUp) {
				t.Errorf("the reporter's text is in a Rocket.Chat room: %q", m.Text)
			}
		}
	}
	for _, room := range reporter.Invites() {
		if room != dm {
			t.Errorf("the reporter was invited to a Matrix room: %s", room)
		}
	}
}

// rcTeamBot is a secbot on the testbed (its Matrix account on Dendrite)
// and on a Rocket.Chat stand-in, whose team is the Rocket.Chat one: carol
// the coordinator, dave the backup, their private group security-team the
// team room (so case rooms are made there). The bot is made, not started.
type rcTeamBot struct {
	s                      *rctest.Server
	bot                    *testbed.Bot
	botID, carolID, daveID string
	// teamRoom is the team's group, carolDM the coordinator's DM with the
	// bot (where escalations reach her: im.create finds the same room
	// when the bot opens it).
	teamRoom, carolDM string
}

func newRCTeamBot(t *testing.T, ctx context.Context, name string, opts testbed.BotOptions) *rcTeamBot {
	t.Helper()
	s := rctest.Start(t, rctest.Options{})
	t.Cleanup(func() {
		for _, line := range s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
	})
	rc := &rcTeamBot{s: s}
	var botToken, carolToken string
	rc.botID, botToken = s.AddUser("secbot")
	s.SetRoles(rc.botID, "bot")
	rc.carolID, carolToken = s.AddUser("carol")
	rc.daveID, _ = s.AddUser("dave")
	carol, err := rocketchat.New(s.URL(), rc.carolID, carolToken, rocketchat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	team, err := carol.CreatePrivateGroup(ctx, "security-team", []string{"secbot", "dave"})
	if err != nil {
		t.Fatal(err)
	}
	dm, err := carol.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	rc.teamRoom, rc.carolDM = team.ID, dm.ID
	tokenFile := filepath.Join(t.TempDir(), "rocketchat-token")
	if err := os.WriteFile(tokenFile, []byte(botToken), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Extra += `
[rocketchat]
server = "` + s.URL() + `"
user_id = "` + rc.botID + `"
token_file = "` + tokenFile + `"
`
	bot, err := bed.NewBot(ctx, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(bot.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !teamSection.Match(cfg) {
		t.Fatalf("no [team] section in the testbed's config:\n%s", cfg)
	}
	cfg = teamSection.ReplaceAll(cfg, []byte(`[team]
room = "rocketchat:security-team"
members = ["rocketchat:carol", "rocketchat:dave"]
coordinator = "rocketchat:carol"
backup = "rocketchat:dave"

`))
	if err := os.WriteFile(bot.ConfigPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bot.Stop()
		if t.Failed() {
			t.Logf("secbot log (%s):\n%s", bot.LogPath, tail(bot.Log(), 40))
		}
	})
	rc.bot = bot
	return rc
}
