package bot

import (
	"errors"
	"net/http"
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/outbox"
)

// The team room's 403/404 (the bot not in it yet) is "not ready": retried
// soon, never permanent; elsewhere a 403 stays permanent.
func TestTheTeamRoomsRefusalIsNotReady(t *testing.T) {
	b := &Bot{log: zerolog.Nop()}
	b.FollowTeamRoom(func() string { return "!team:x" })
	for _, status := range []int{http.StatusForbidden, http.StatusNotFound} {
		refused := mautrix.HTTPError{Response: &http.Response{StatusCode: status}, RespError: &mautrix.RespError{ErrCode: "M_FORBIDDEN"}}
		err := b.classifyPost("!team:x", 3, refused)
		var ra *outbox.RetryAfterError
		if errors.Is(err, ErrPermanent) || !errors.As(err, &ra) || ra.After <= 0 || ra.After > teamRoomRetryCap || !errors.Is(err, ErrTeamRoomNotReady) {
			t.Errorf("%d in the team room: %v, want a retry within %s", status, err, teamRoomRetryCap)
		}
		if err := b.classifyPost("!elsewhere:x", 3, refused); !errors.Is(err, ErrPermanent) {
			t.Errorf("%d elsewhere: %v, want permanent", status, err)
		}
	}
	if waiting, refusals := b.TeamRoomWaiting(); !waiting || refusals != 2 {
		t.Errorf("waiting %v after %d refusals, want true after 2", waiting, refusals)
	}
	if err := b.classifyPost("!team:x", 4, nil); err != nil || func() bool { w, _ := b.TeamRoomWaiting(); return w }() {
		t.Errorf("a post that went through: %v, still waiting", err)
	}
}

// A team room a reload put in force is never posted to in the clear, even
// before the bot knows it is encrypted: such a post waits.
func TestANewTeamRoomIsNeverPostedToInTheClear(t *testing.T) {
	b := &Bot{log: zerolog.Nop()}
	b.FollowTeamRoom(func() string { return "!new:x" })
	b.team.sealed = map[id.RoomID]bool{"!new:x": true}
	if err := b.teamRoomReady("!new:x", event.EventMessage, 1); !errors.Is(err, ErrTeamRoomNotReady) || errors.Is(err, ErrPermanent) {
		t.Errorf("a post in the clear to the new team room: %v, want not ready", err)
	}
	if err := b.teamRoomReady("!new:x", event.EventEncrypted, 1); err != nil {
		t.Errorf("an encrypted post to the new team room: %v", err)
	}
	if err := b.teamRoomReady("!announce:x", event.EventMessage, 1); err != nil {
		t.Errorf("a post in the clear elsewhere: %v", err)
	}
}
