package main

import (
	"context"
	"strings"
	"testing"
	"time"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// botRequests are the requests the bot made of a route, with their
// places in the server's log of requests.
func (b *rcBed) botRequests(route string) (at []int, reqs []rctest.Request) {
	for i, r := range b.s.Requests() {
		if r.UserID == b.botID && r.Route == route {
			at, reqs = append(at, i), append(reqs, r)
		}
	}
	return at, reqs
}

// What was queued for a case group before secbot learnt that the server
// encrypts it (the welcome, and a respond the team typed while the group
// was still to be made) is refused by the group; it reaches the reporter
// in their DM instead, once each, and nothing of it the team room.
func TestWhatWasQueuedForAnEncryptedCaseGroupReachesTheReporterOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{ForceEncryptedPrivateGroups: true})
	// Without the bot role's exemption from rate limits: the server's
	// limit on groups.create holds the case group back while the team
	// types (the outbox waits out its 429).
	b.s.SetRoles(b.botID, "user")
	aliceID, aliceToken := b.s.AddUser("alice")
	bobID, _ := b.s.AddUser("bob")
	// A channel: on this server every private group is encrypted.
	team := rcTeam{aliceID: aliceID, bobID: bobID, teamID: b.s.CreateChannel("security-team", aliceID, bobID, b.botID)}
	b.serve(ctx, b.config(rcTeamTOML))

	const window = 5 * time.Second
	b.s.SetRateLimit("POST", "groups.create", 1, window)
	if _, err := b.client(aliceID, aliceToken).CreatePrivateGroup(ctx, "elsewhere", []string{"bob"}); err != nil {
		t.Fatal(err) // the window's one call
	}
	_, dm := rcReport(t, ctx, b, "rita")
	b.wait(ctx, "the case group held back by the rate limit", func() bool {
		_, reqs := b.botRequests("groups.create")
		return len(reqs) > 0 && reqs[0].Status == 429
	})
	const answer = "Thanks, we can reproduce it and are on it."
	b.say(team.aliceID, team.teamID, "!sec respond SR-2026-0001 "+answer)
	// Its answers wait behind the case group in the case's lane; a help
	// typed after it is answered in the team room's own lane, once the
	// respond before it was handled (messages are handled in order).
	b.command(ctx, team.aliceID, team.teamID, "!sec help")
	typed := len(b.s.Requests())

	const unusable = "**The private room of SR-2026-0001 cannot be made**"
	b.wait(ctx, "the team told", func() bool { return b.said(team.teamID, unusable) })
	b.wait(ctx, "the answer in the reporter's DM", func() bool { return b.said(dm, answer) })
	at, reqs := b.botRequests("groups.create")
	for i, r := range reqs {
		if r.Status == 200 && at[i] < typed {
			t.Fatalf("the case group was made before the respond was handled (the rate limit's window of %s was too short here): the test shows nothing", window)
		}
	}
	group, ok := b.s.RoomByName("security-report-sr-2026-0001")
	if !ok || !group.Encrypted {
		t.Fatalf("the case group: %+v, %v", group, ok)
	}
	// A later answer in the case's lane comes after every post queued
	// before it: once it is in, everything went wherever it goes.
	b.command(ctx, team.aliceID, team.teamID, "!sec status SR-2026-0001")

	if n := len(b.botSaid(dm, answer)); n != 1 {
		t.Errorf("the reporter got the team's answer %d times in their DM", n)
	}
	if n := len(b.botSaid(dm, "What happens next")); n != 1 {
		t.Errorf("the reporter got the welcome %d times in their DM: %+v", n, b.botSaid(dm))
	}
	if n := len(b.botSaid(dm, "cannot be made")); n != 1 {
		t.Errorf("the reporter was told %d times that the room cannot be made", n)
	}
	for _, never := range []string{answer, "What happens next"} {
		if ms := b.botSaid(team.teamID, never); len(ms) != 0 {
			t.Errorf("the team room got the reporter's text %q: %+v", never, ms)
		}
	}
	if ms := b.botSaid(group.ID); len(ms) != 0 {
		t.Errorf("the bot posted in the encrypted group: %+v", ms)
	}
	if n := len(b.botSaid(team.teamID, unusable)); n != 1 {
		t.Errorf("the team room was told %d times that the case room cannot be made", n)
	}
	// What the group refused ended in the outbox without its text.
	if strings.Contains(b.logs.String(), answer) {
		t.Error("the team's answer is in the log")
	}
}
