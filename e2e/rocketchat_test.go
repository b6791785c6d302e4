package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/internal/testenv/testbed"
	"github.com/enarx/secbot/rocketchat"
)

// Both platforms at once: a team on Matrix takes a report from a
// Rocket.Chat user (the policy's "Enarx Chat"). The reporter gets their
// case in their Rocket.Chat DM, told that their private area is not a room
// of this chat; the case room is made on Matrix with the team only; what
// the team answers with !sec respond reaches the reporter's DM; nothing of
// the team's room talk does.
func TestAMatrixTeamTakesARocketChatReporter(t *testing.T) {
	ctx := testContext(t)
	s := rctest.Start(t, rctest.Options{})
	t.Cleanup(func() {
		for _, line := range s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
	})
	botID, botToken := s.AddUser("secbot")
	s.SetRoles(botID, "bot")
	ritaID, ritaToken := s.AddUser("rita")
	tokenFile := filepath.Join(t.TempDir(), "rocketchat-token")
	if err := os.WriteFile(tokenFile, []byte(botToken), 0o600); err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, ctx, "bothplatformsbot", testbed.BotOptions{Extra: `
[rocketchat]
server = "` + s.URL() + `"
user_id = "` + botID + `"
token_file = "` + tokenFile + `"
`})
	bed.Settle(t, ctx, bot, bed.Alice)
	if err := s.WaitSubscribed(ctx, botID, 1); err != nil {
		t.Fatal(err)
	}

	rita, err := rocketchat.New(s.URL(), ritaID, ritaToken, rocketchat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dm, err := rita.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendAs(ritaID, dm.ID, "I want to report a security issue", ""); err != nil {
		t.Fatal(err)
	}
	said := func(parts ...string) bool { return len(s.Said(dm.ID, botID, parts...)) > 0 }
	waitFor := func(cond func() bool) error {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return s.Wait(wctx, cond)
	}
	if err := waitFor(func() bool { return said("SR-", "another chat") }); err != nil {
		t.Fatalf("the Rocket.Chat reporter's answer: %v (%v)", err, s.Messages(dm.ID))
	}

	// The team's case room on Matrix, without the reporter.
	invite, err := bed.Alice.WaitInvite(ctx, wait, bot.UserID, func(evt *event.Event) bool {
		return !evt.Content.AsMember().IsDirect
	})
	if err != nil {
		t.Fatal(err)
	}
	caseRoom := invite.RoomID
	if err := bed.Alice.Join(ctx, caseRoom); err != nil {
		t.Fatal(err)
	}
	welcome := waitMessage(t, ctx, bed.Alice, caseRoom, bot.UserID, "Security report")
	if body := welcome.Content.AsMessage().Body; !strings.Contains(body, "another chat") || strings.Contains(body, "Welcome, ") {
		t.Errorf("the case room's welcome does not say the reporter is elsewhere: %q", body)
	}

	// The team's talk stays in its room; its answer reaches the DM.
	say(t, ctx, bed.Alice, caseRoom, "Between us: this looks like the parser overflow.")
	// (Answered in the case room by a reaction: a quiet command.)
	say(t, ctx, bed.Alice, caseRoom, "!sec respond Thank you, we can reproduce it and are working on a fix.")
	if err := waitFor(func() bool { return said("we can reproduce it") }); err != nil {
		t.Fatalf("the team's response did not reach the Rocket.Chat DM: %v (%v)", err, s.Messages(dm.ID))
	}
	if said("parser overflow") {
		t.Error("the team's room talk reached the reporter")
	}
	for _, m := range s.Messages(dm.ID) {
		if m.UserID == botID && strings.Contains(m.Text, string(id.RoomID(caseRoom))) {
			t.Errorf("the reporter was shown the team's room: %q", m.Text)
		}
	}
}
