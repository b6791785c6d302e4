package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/enarx/secbot/internal/testclock"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// rcLadderTOML is the team of rcTeamTOML (alice the coordinator, bob the
// backup) on the policy's ladder with its days shrunk to minutes: the
// test steps serve's clock from one rung to the next, so real time never
// reaches a rung and each falls due exactly when the test steps to it.
const rcLadderTOML = rcTeamTOML + `[sla]
acknowledge = "40m"
detailed_response = "3h"
remind_before = "20m"
repeat_every = "30m"
[[escalation]]
after = "0s"
notify = "coordinator"
[[escalation]]
after = "20m"
notify = "backup"
[[escalation]]
after = "40m"
notify = "team"
`

// steppedClock makes the serves the test starts run on a clock the test
// steps (real time plus an offset that only grows). It sets the package's
// newClock, so a test that calls it must not run in parallel.
func steppedClock(t *testing.T) *testclock.Stepped {
	clk := testclock.NewStepped()
	old := newClock
	newClock = func() clockwork.Clock { return clk }
	t.Cleanup(func() { newClock = old })
	return clk
}

// botDM waits for the DM the bot opened with a user and returns its ID.
func (b *rcBed) botDM(ctx context.Context, userID, who string) string {
	b.t.Helper()
	var dm rctest.Room
	b.wait(ctx, "the bot's DM with "+who, func() bool {
		var ok bool
		dm, ok = b.s.DirectRoom(b.botID, userID)
		return ok
	})
	return dm.ID
}

// caseOf waits for the bot's first answer in a reporter's DM and returns
// the case ID it names.
func (b *rcBed) caseOf(ctx context.Context, dm string) string {
	b.t.Helper()
	var caseID string
	b.wait(ctx, "the reporter's answer", func() bool {
		for _, m := range b.botSaid(dm, "Your report is **SR-") {
			caseID = caseIDIn.FindString(m.Text)
		}
		return caseID != ""
	})
	return caseID
}

var caseIDIn = regexp.MustCompile(`SR-\d{4}-\d{4,}`)

// An unanswered report on a team that is all on Rocket.Chat goes up the
// ladder as the clock reaches each rung: the team's group is reminded,
// then the coordinator and the backup are chased in their DMs with the
// bot, then the whole team in its group; each once, each where it
// belongs, and the reporter hears only that the team was chased. A
// claim stops the ladder, and the next reminder goes to the handler's DM.
func TestTheLadderClimbsByDMOnRocketChat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	clk := steppedClock(t)
	b := newRCBed(t, rctest.Options{})
	team := newRCTeam(t, ctx, b)
	b.serve(ctx, b.config(rcLadderTOML))

	ritaID, ritaDM := rcReport(t, ctx, b, "rita")
	caseID := b.caseOf(ctx, ritaDM)
	var group rctest.Room
	b.wait(ctx, "the case group's welcome", func() bool {
		var ok bool
		group, ok = b.s.RoomByName("security-report-" + strings.ToLower(caseID))
		return ok && b.said(group.ID, "**Security report "+caseID)
	})
	const canary = "CANARY-rc-ladder-91b7"
	b.say(ritaID, group.ID, "The details: "+canary)

	// A second case, claimed in time: its ladder never starts.
	_, otherDM := rcReport(t, ctx, b, "olga")
	otherID := b.caseOf(ctx, otherDM)
	b.command(ctx, team.bobID, team.teamID, "!sec claim "+otherID)
	b.wait(ctx, "the claim's answer", func() bool { return b.said(team.teamID, "is now the handler of "+otherID) })

	teamStep := "**" + caseID + "**: the acknowledgement was due"
	// The acknowledgement is due 40 minutes after the report: the
	// reminder 20 minutes before, the coordinator at the due time, the
	// backup 20 minutes later and the team 20 after that.
	clk.Advance(20 * time.Minute)
	b.wait(ctx, "the reminder in the team's group", func() bool { return b.said(team.teamID, "Reminder for **"+caseID) })
	clk.Advance(20 * time.Minute)
	aliceDM := b.botDM(ctx, team.aliceID, "the coordinator")
	b.wait(ctx, "the coordinator's escalation", func() bool {
		return b.said(aliceDM, "**"+caseID+"**", "You are the security coordinator", "acknowledgement")
	})
	b.wait(ctx, "the reporter told the team was chased", func() bool { return b.said(group.ID, "I have escalated to the security team") })
	clk.Advance(20 * time.Minute)
	bobDM := b.botDM(ctx, team.bobID, "the backup")
	b.wait(ctx, "the backup's escalation", func() bool { return b.said(bobDM, "**"+caseID+"**", "You are the backup contact") })
	clk.Advance(20 * time.Minute)
	b.wait(ctx, "the team's escalation", func() bool { return b.said(team.teamID, teamStep) })
	b.waitOutboxIdle(ctx)

	// Each rung once, where it belongs, and nothing of the second case.
	for _, c := range []struct {
		where, room string
		parts       []string
		want        int
	}{
		{"the team's group", team.teamID, []string{"Reminder for **" + caseID}, 1},
		{"the team's group", team.teamID, []string{teamStep}, 1},
		{"the coordinator's DM", aliceDM, []string{caseID, "You are the security coordinator"}, 1},
		{"the backup's DM", bobDM, []string{caseID, "You are the backup contact"}, 1},
		{"the case group", group.ID, []string{"I have escalated to the security team"}, 1},
		{"the coordinator's DM", aliceDM, []string{"You are the backup contact"}, 0},
		{"the backup's DM", bobDM, []string{"You are the security coordinator"}, 0},
		{"the team's group", team.teamID, []string{"You are the"}, 0},
		{"the team's group", team.teamID, []string{otherID + "**: the"}, 0},
		{"the team's group", team.teamID, []string{"Reminder for **" + otherID}, 0},
	} {
		if n := len(b.botSaid(c.room, c.parts...)); n != c.want {
			t.Errorf("%s holds %d of the bot's messages with %q, want %d\n%s", c.where, n, c.parts, c.want, b.dump())
		}
	}
	// The DMs hold the escalation and nothing else: no reminder, no word
	// of the second case.
	for who, dm := range map[string]string{"coordinator": aliceDM, "backup": bobDM} {
		if ms := b.botSaid(dm); len(ms) != 1 {
			t.Errorf("the %s's DM holds %d messages of the bot, want the one escalation: %+v", who, len(ms), ms)
		}
	}

	// The last rung repeats until someone answers; a claim stops it.
	clk.Advance(30 * time.Minute)
	b.wait(ctx, "the team's escalation repeated", func() bool { return len(b.botSaid(team.teamID, teamStep)) == 2 })
	b.command(ctx, team.aliceID, team.teamID, "!sec claim "+caseID)
	b.wait(ctx, "the claim's answer", func() bool { return b.said(team.teamID, "is now the handler of "+caseID) })
	// A step that fell due before the claim was handled may still be on
	// its way: it counts as sent before the claim.
	b.waitOutboxIdle(ctx)
	stopped := len(b.botSaid(team.teamID, teamStep))
	// The clock steps past the next repeat (30 minutes on): it would fall
	// due had the claim not stopped the ladder. A third case, opened just
	// before the step, is reminded in it: the proof that the deadlines
	// were checked after the step.
	_, controlDM := rcReport(t, ctx, b, "carl")
	controlID := b.caseOf(ctx, controlDM)
	clk.Advance(40 * time.Minute)
	b.wait(ctx, "the third case's reminder", func() bool { return b.said(team.teamID, "Reminder for **"+controlID) })
	b.waitOutboxIdle(ctx)
	if n := len(b.botSaid(team.teamID, teamStep)); n != stopped {
		t.Errorf("the ladder went on after the claim: %d team escalations, want %d", n, stopped)
	}
	for who, dm := range map[string]string{"coordinator": aliceDM, "backup": bobDM} {
		if n := len(b.botSaid(dm, "**"+caseID+"**", "You are the")); n != 1 {
			t.Errorf("the %s was chased %d times about %s, want once", who, n, caseID)
		}
	}

	// A case with a handler is reminded to the handler, in their DM:
	// the detailed response (due 3 hours after the report) is reminded 20
	// minutes before, to alice for the first case and to bob for the
	// second, and not in the team's group.
	clk.Advance(20 * time.Minute)
	const response = "the detailed response is due by"
	b.wait(ctx, "the handlers' reminders", func() bool {
		return b.said(aliceDM, "Reminder for **"+caseID, response) && b.said(bobDM, "Reminder for **"+otherID, response)
	})
	b.waitOutboxIdle(ctx)
	for _, c := range []struct {
		where, room, caseID string
		want                int
	}{
		{"alice's DM", aliceDM, caseID, 1}, {"bob's DM", bobDM, otherID, 1},
		{"alice's DM", aliceDM, otherID, 0}, {"bob's DM", bobDM, caseID, 0},
		{"the team's group", team.teamID, caseID, 0}, {"the team's group", team.teamID, otherID, 0},
	} {
		if n := len(b.botSaid(c.room, "Reminder for **"+c.caseID, response)); n != c.want {
			t.Errorf("%s holds %d reminders of the detailed response of %s, want %d", c.where, n, c.caseID, c.want)
		}
	}

	// The reporter's view: their DM and the case group, and there only
	// what the policy promises: the first answer, the welcome, the word
	// that the team was chased, and the acknowledgement of the claim.
	rooms := map[string]bool{}
	for _, r := range b.s.RoomsOf(ritaID) {
		rooms[r.ID] = true
	}
	if len(rooms) != 2 || !rooms[ritaDM] || !rooms[group.ID] {
		t.Errorf("the reporter is in %v, want their DM %s and the case group %s", rooms, ritaDM, group.ID)
	}
	for room, promised := range map[string][]string{
		ritaDM:   {"Thank you for reaching out to the security team. Your report is **" + caseID},
		group.ID: {"**Security report " + caseID, "We owe you the acknowledgement and it is overdue", "Your report **" + caseID + "** is acknowledged"},
	} {
		got := b.botSaid(room)
		var texts []string
		for _, m := range got {
			texts = append(texts, fmt.Sprintf("%q", m.Text))
		}
		if len(got) != len(promised) {
			t.Errorf("the reporter saw %d messages of the bot in %s, want %d:\n%s", len(got), room, len(promised), strings.Join(texts, "\n"))
			continue
		}
		for i, m := range got {
			if !strings.HasPrefix(m.Text, promised[i]) {
				t.Errorf("the reporter's message %d in %s is %q, want it to begin %q", i, room, m.Text, promised[i])
			}
		}
	}
	// Nothing the reporter wrote left the case group.
	for _, r := range b.s.RoomsOf(b.botID) {
		if r.ID == group.ID {
			continue
		}
		for _, m := range b.botSaid(r.ID) {
			if strings.Contains(m.Text, canary) || strings.Contains(m.Text, "I want to report") {
				t.Errorf("the bot carried the reporter's words into %s (%s): %q", r.ID, r.Name, m.Text)
			}
		}
	}
}
