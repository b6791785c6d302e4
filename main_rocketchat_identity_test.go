package main

import (
	"context"
	"strings"
	"testing"
	"time"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// A team member's username passed to another account (an admin renamed
// bob and someone registered "bob"; the group's owner then added the new
// "bob" thinking it was him): the new account's commands do nothing, the
// team room is told once, and only the coordinator's trust in the new
// account lets it act.
func TestAnotherAccountUnderAMembersUsernameWaitsForTrust(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	aliceID, aliceToken := b.s.AddUser("alice")
	bobID, _ := b.s.AddUser("bob")
	alice := b.client(aliceID, aliceToken)
	group, err := alice.CreatePrivateGroup(ctx, "security-team", []string{"secbot", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	team := rcTeam{aliceID: aliceID, bobID: bobID, teamID: group.ID}
	b.serve(ctx, b.config(rcTeamTOML))

	// bob's first command pins his account.
	if answers := b.command(ctx, team.bobID, team.teamID, "!sec status"); len(answers) == 0 {
		t.Fatal("bob's first command was not answered")
	}
	rcReport(t, ctx, b, "rita")
	b.wait(ctx, "the case's notice", func() bool { return b.said(team.teamID, "SR-2026-0001") })

	b.s.RenameUser(team.bobID, "bob-old")
	impostorID, _ := b.s.AddUser("bob")
	if err := alice.InviteToGroup(ctx, team.teamID, impostorID); err != nil {
		t.Fatal(err)
	}

	const changed = "now belongs to another account"
	b.say(impostorID, team.teamID, "!sec claim SR-2026-0001")
	b.wait(ctx, "the team told of the changed account", func() bool { return b.said(team.teamID, changed) })
	notice := b.botSaid(team.teamID, changed)[0].Text
	if !strings.Contains(notice, impostorID) {
		t.Errorf("the notice does not name the new account %s:\n%s", impostorID, notice)
	}
	b.command(ctx, impostorID, team.teamID, "!sec claim SR-2026-0001")
	if n := len(b.botSaid(team.teamID, changed)); n != 1 {
		t.Errorf("the team room was told %d times, want once: %+v", n, b.botSaid(team.teamID, changed))
	}
	if b.said(team.teamID, "is handling") || b.said(team.teamID, "claimed") {
		t.Fatalf("a command of the new account ran:\n%s", b.dump())
	}

	// bob (under his new name) is no member: his account is not the
	// configured username's any more either way. The coordinator trusts
	// the new account with the ID the notice showed.
	b.say(team.aliceID, team.teamID, "!sec trust rocketchat:bob "+impostorID)
	b.wait(ctx, "the trust's answer", func() bool { return b.said(team.teamID, "is now the account `"+impostorID+"`") })
	b.say(impostorID, team.teamID, "!sec claim SR-2026-0001")
	b.wait(ctx, "the claim's answer", func() bool { return b.said(team.teamID, "rocketchat:bob is now the handler of SR-2026-0001") })
}
