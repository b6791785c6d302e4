package e2e

import (
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// What a team member types in one case room shows its reporter nothing of
// another case; a member cannot end an embargo, the coordinator can; and a
// reporter's bare "agree" agrees to nothing.
func TestCommandsStayInTheirCaseAndOnlyTheCoordinatorLiftsAnEmbargo(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "policybot", servedOptions(t, testbed.BotOptions{}))
	bed.Bob.SetAutoJoin(true)
	first, firstID, firstRoom := openCase(t, bot, "policyone")
	second, secondID, _ := openCase(t, bot, "policytwo")

	// Team commands typed in the first case's room, as a team member would
	// by habit: the reporter reads every answer there.
	say(t, ctx, bed.Alice, firstRoom, "!sec list")
	waitMessage(t, ctx, first, firstRoom, bot.UserID, "answers only in the team room")
	say(t, ctx, bed.Alice, firstRoom, "!sec status "+secondID)
	waitMessage(t, ctx, first, firstRoom, bot.UserID, "Ask about other cases in the team room")
	for _, body := range messagesFrom(first, firstRoom, bot.UserID) {
		if strings.Contains(body, secondID) || strings.Contains(body, second.ID().String()) {
			t.Errorf("the first reporter read of the other case: %q", body)
		}
	}
	// The same in the team room works.
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec status "+secondID)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, second.ID().String())

	// An embargo proposed; the reporter's chat reply "agree" is no answer.
	// One at a time: a message whose key reaches the bot late is handled
	// after the next one.
	for _, step := range [][2]string{{"!sec claim", "is acknowledged"}, {"!sec confirm 1.0", "is confirmed"}} {
		say(t, ctx, bed.Alice, firstRoom, step[0])
		waitMessage(t, ctx, first, firstRoom, bot.UserID, step[1])
	}
	say(t, ctx, bed.Alice, firstRoom, "!sec embargo propose 2099-01-15")
	waitMessage(t, ctx, first, firstRoom, bot.UserID, "embargo** for "+firstID+" until **2099-01-15")
	say(t, ctx, first, firstRoom, "agree")
	say(t, ctx, first, firstRoom, "help") // a marker: answered once "agree" was handled
	waitMessage(t, ctx, first, firstRoom, bot.UserID, "You can say")
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec status "+firstID)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "proposed until 2099-01-15")
	say(t, ctx, first, firstRoom, "!agree")
	waitMessage(t, ctx, first, firstRoom, bot.UserID, "the embargo holds until 2099-01-15")

	// A member's lift is refused and the embargo holds.
	say(t, ctx, bed.Bob, firstRoom, "!sec embargo lift")
	waitMessage(t, ctx, bed.Bob, firstRoom, bot.UserID, "only the coordinator")
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec status "+firstID)
	if _, err := bed.Alice.Wait(ctx, wait, "the status of an agreed embargo", func(evt *event.Event) bool {
		body, err := matrixtest.Body(evt)
		return err == nil && evt.Sender == bot.UserID && evt.RoomID == bed.TeamRoom && strings.Contains(body, "**"+firstID+"**") &&
			strings.Contains(body, "until 2099-01-15") && !strings.Contains(body, "proposed until")
	}); err != nil {
		t.Fatal(err)
	}
	// The coordinator's lift ends it, and the reporter is told.
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec embargo "+firstID+" lift")
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "The embargo of "+firstID+" is lifted")
	// The reporter's own notice (an earlier message says "embargo" too).
	waitMessage(t, ctx, first, firstRoom, bot.UserID, "is lifted")
	if err := bot.WaitOutboxEmpty(ctx, wait); err != nil {
		t.Fatal(err)
	}
	lifted := 0
	for _, body := range messagesFrom(first, firstRoom, bot.UserID) {
		if strings.Contains(body, "lifted") || strings.Contains(body, "ended") {
			lifted++
		}
	}
	if lifted != 1 {
		t.Errorf("the reporter was told of the lift %d times, want 1", lifted)
	}
}

// The reporter's !escalate once the bot's own ladder has told the
// coordinator reaches the next contact, the backup, at once.
func TestTheReportersEscalationReachesTheBackupAtOnce(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	tm.Alice.SetAutoJoin(true)
	tm.Bob.SetAutoJoin(true)
	bot := startBot(t, ctx, "escalatebot", testbed.BotOptions{Team: tm,
		SLA: map[string]string{"acknowledge": `"5s"`, "detailed_response": `"6s"`, "remind_before": `"0s"`, "repeat_every": `"24h"`},
		Extra: `
[[escalation]]
after = "0s"
notify = "coordinator"
[[escalation]]
after = "1h"
notify = "backup"
[[escalation]]
after = "2h"
notify = "team"
`,
	})
	reporter := newUser(t, ctx, "escalator")
	_, caseID := report(t, ctx, reporter, bot.UserID)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	missed := func(u *matrixtest.User, role string) *event.Event {
		t.Helper()
		evt, err := u.Wait(ctx, 30*time.Second, role+" told of the missed response", func(evt *event.Event) bool {
			body, err := matrixtest.Body(evt)
			return err == nil && evt.Sender == bot.UserID && evt.RoomID != tm.Room && strings.Contains(body, caseID) &&
				strings.Contains(body, "You are the "+role) && strings.Contains(body, "detailed response")
		})
		if err != nil {
			t.Fatal(err)
		}
		return evt
	}
	missed(tm.Alice, "security coordinator")
	asked := time.Now()
	say(t, ctx, reporter, room, "!escalate")
	waitMessage(t, ctx, reporter, room, bot.UserID, "to the backup contact, "+tm.Bob.ID().String())
	backup := missed(tm.Bob, "backup contact")
	if body, _ := matrixtest.Body(backup); !strings.Contains(body, "!escalate") {
		t.Errorf("the backup is not told the reporter asked: %q", body)
	}
	t.Logf("the backup was told %s after the reporter's !escalate", time.Since(asked).Round(time.Millisecond))
	// Again: the team room, then nothing more to use.
	say(t, ctx, reporter, room, "!escalate")
	waitMessage(t, ctx, reporter, room, bot.UserID, "to the whole security team")
	waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "**"+caseID+"**: the detailed response was due")
	say(t, ctx, reporter, room, "!escalate")
	waitMessage(t, ctx, reporter, room, bot.UserID, "Everyone on the escalation ladder has been told")
}
