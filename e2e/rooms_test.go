package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/matrixtest"
)

// A coordinator who left the direct chat the bot stored for them still gets
// the next escalation: in a new direct chat, not into an empty room.
func TestAnEscalationFindsACoordinatorWhoLeftTheirDirectChat(t *testing.T) {
	ctx := testContext(t)
	bed.Alice.SetAutoJoin(true)
	bed.Bob.SetAutoJoin(true)
	bot := startBot(t, ctx, "leftdmbot", fastPolicy)
	first := newUser(t, ctx, "leftdm-one")
	_, firstID := report(t, ctx, first, bot.UserID)
	old := escalationTo(t, bed.Alice, bot.UserID, firstID, "security coordinator", 30*time.Second).RoomID
	if _, err := bed.Alice.Client.LeaveRoom(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitLeft(t, ctx, bed.Alice, old)

	second := newUser(t, ctx, "leftdm-two")
	_, secondID := report(t, ctx, second, bot.UserID)
	again := escalationTo(t, bed.Alice, bot.UserID, secondID, "security coordinator", 30*time.Second)
	if again.RoomID == old {
		t.Fatalf("the escalation went to the room the coordinator left")
	}
}

// waitLeft waits until u's client has seen its own leave of room.
func waitLeft(t *testing.T, ctx context.Context, u *matrixtest.User, room interface{ String() string }) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		joined, err := u.Client.JoinedRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		still := false
		for _, r := range joined.JoinedRooms {
			still = still || r.String() == room.String()
		}
		if !still {
			return
		}
		time.Sleep(100 * time.Millisecond) // polls the homeserver's answer, no quiet-period wait
	}
	t.Fatalf("%s is still in %s", u.ID(), room)
}
