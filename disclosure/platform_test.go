package disclosure

import (
	"errors"
	"strings"
	"testing"
)

// Nobody on another chat than the case room's is invited to it (no
// platform could make that invitation): neither a reporter there asking
// !invite, nor a need-to-know person or a team member's !sec invite.
// Before, the invitation was decided, "invited" answered, and the Matrix
// bot was handed a Rocket.Chat username to invite.
func TestNobodyOfAnotherChatIsInvitedToTheCaseRoom(t *testing.T) {
	p := testPolicy()
	p.TeamRoom, p.Team, p.Coordinator, p.Backup = "matrix:!team:x", []Person{"matrix:@alice:x", "matrix:@bob:x"}, "matrix:@alice:x", "matrix:@bob:x"
	rita, vendor := PersonOn(RocketChat, "rita"), PersonOn(RocketChat, "vendor")
	c := &Case{ID: one, Stage: StageConfirmed, Reporter: rita}
	team := Request{By: "matrix:@alice:x", Device: DeviceVerified, Where: Place{Kind: CaseRoom, Case: one}, Now: now, Policy: p}
	reporter := Request{By: rita, Where: Place{Kind: PrivateChat}, Now: now, Policy: p}
	for name, try := range map[string]func() (Decision, error){
		"the reporter's !invite":      func() (Decision, error) { return c.Invite(reporter, "") },
		"the team invites them":       func() (Decision, error) { return c.Invite(team, rita) },
		"a need-to-know of that chat": func() (Decision, error) { return c.AddNeedToKnow(team, vendor, "") },
	} {
		d, err := try()
		var refusal *Refusal
		if !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "another chat") || len(d.Effects) != 0 {
			t.Errorf("%s: %+v, %v; want a refusal that says why, and no effect", name, d, err)
		}
	}
	// A Matrix need-to-know person is still invited.
	if d, err := c.AddNeedToKnow(team, "matrix:@vendor:x", ""); err != nil || len(d.Effects) == 0 {
		t.Errorf("a Matrix need-to-know person: %+v, %v", d, err)
	}
}

// A case keeps the room it was made in when the team room moves to
// another platform: its people of that room's platform are still
// invited to it, and those of the team room's new platform are not.
func TestACaseRoomStaysOnItsPlatformWhenTheTeamRoomMoves(t *testing.T) {
	p := testPolicy()
	p.TeamRoom = "rocketchat:security-team"
	p.Team, p.Coordinator, p.Backup = []Person{"rocketchat:alice", "matrix:@bob:x"}, "rocketchat:alice", "matrix:@bob:x"
	c := &Case{ID: one, Stage: StageConfirmed, Reporter: "matrix:@reporter:x", RoomPlatform: Matrix}
	team := Request{By: "rocketchat:alice", Device: DeviceVerified, Where: Place{Kind: TeamRoom}, Now: now, Policy: p}
	if d, err := c.AddNeedToKnow(team, "matrix:@vendor:x", ""); err != nil || len(d.Effects) == 0 {
		t.Errorf("a Matrix need-to-know person of a Matrix case room: %+v, %v", d, err)
	}
	var refusal *Refusal
	if _, err := c.AddNeedToKnow(team, PersonOn(RocketChat, "vendor"), ""); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "another chat") {
		t.Errorf("a Rocket.Chat need-to-know person of a Matrix case room: %v", err)
	}
	// Before it has a room, the case's room will be on the team room's.
	c.RoomPlatform = ""
	if _, err := c.AddNeedToKnow(team, "matrix:@vendor2:x", ""); !errors.As(err, &refusal) {
		t.Errorf("a Matrix person for a room to be made on Rocket.Chat: %v", err)
	}
}
