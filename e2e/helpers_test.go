package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

const wait = 30 * time.Second

// uncapped lifts the hourly cap on new cases' set-up, for benchmarks that
// open hundreds of cases on purpose.
const uncapped = "\n[intake]\nmax_new_cases_per_hour = 0\n"

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startBot starts a fresh secbot with its own account and database.
func startBot(t *testing.T, ctx context.Context, name string, opts testbed.BotOptions, env ...string) *testbed.Bot {
	t.Helper()
	b, err := bed.NewBot(ctx, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(env...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Stop()
		if t.Failed() {
			t.Logf("secbot log (%s):\n%s", b.LogPath, tail(b.Log(), 25))
		}
	})
	return b
}

// servedOptions has the bot serve /metrics and /healthz on a free address.
func servedOptions(tb testing.TB, opts testbed.BotOptions) testbed.BotOptions {
	tb.Helper()
	listen, err := matrixtest.FreeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	opts.HTTPListen = listen
	return opts
}

// crashedAt waits for the bot to stop at its armed crash point (exit 137).
func crashedAt(t *testing.T, bot *testbed.Bot, point string) {
	t.Helper()
	if code, err := bot.Wait(wait); err != nil || code != 137 {
		t.Fatalf("the crash point %s was not reached (exit %d, %v)", point, code, err)
	}
}

// restart starts the bot again after a crash.
func restart(t *testing.T, bot *testbed.Bot) {
	t.Helper()
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func newUser(t *testing.T, ctx context.Context, prefix string) *matrixtest.User {
	t.Helper()
	u, err := bed.NewUser(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

// openDM has u open an encrypted DM with the bot and waits until the bot joined.
func openDM(t *testing.T, ctx context.Context, u *matrixtest.User, bot id.UserID) id.RoomID {
	t.Helper()
	room, err := u.DM(ctx, bot)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.WaitJoined(ctx, wait, room, bot); err != nil {
		t.Fatal(err)
	}
	return room
}

func say(t *testing.T, ctx context.Context, u *matrixtest.User, room id.RoomID, text string) id.EventID {
	t.Helper()
	evt, err := u.Say(ctx, room, text)
	if err != nil {
		t.Fatal(err)
	}
	return evt
}

func waitMessage(t *testing.T, ctx context.Context, u *matrixtest.User, room id.RoomID, from id.UserID, substr string) *event.Event {
	t.Helper()
	evt, err := u.WaitMessage(ctx, wait, room, from, substr)
	if err != nil {
		t.Fatal(err)
	}
	return evt
}

// caseInvite waits for the invite to a case room and returns the room.
func caseInvite(t *testing.T, ctx context.Context, u *matrixtest.User, bot id.UserID) id.RoomID {
	t.Helper()
	evt, err := u.WaitInvite(ctx, wait, bot, func(evt *event.Event) bool { return !evt.Content.AsMember().IsDirect })
	if err != nil {
		t.Fatal(err)
	}
	return evt.RoomID
}

// messagesFrom counts the messages from sender in room that u has seen.
func messagesFrom(u *matrixtest.User, room id.RoomID, sender id.UserID) []string {
	var out []string
	for _, evt := range u.Events() {
		if evt.Type == event.EventMessage && evt.RoomID == room && evt.Sender == sender {
			if body, err := matrixtest.Body(evt); err == nil {
				out = append(out, body)
			}
		}
	}
	return out
}

// invitesFrom lists the non-DM rooms u was invited to by inviter.
func invitesFrom(u *matrixtest.User, inviter id.UserID) map[id.RoomID]bool {
	rooms := map[id.RoomID]bool{}
	for _, evt := range u.Events() {
		if evt.Type == event.StateMember && evt.GetStateKey() == u.ID().String() && evt.Sender == inviter {
			if m := evt.Content.AsMember(); m.Membership == event.MembershipInvite && !m.IsDirect {
				rooms[evt.RoomID] = true
			}
		}
	}
	return rooms
}

// botBodies returns the bodies of every message the bot sent, in any room.
func botBodies(events []*event.Event, bot *testbed.Bot) []string {
	var out []string
	for _, evt := range events {
		if evt.Type == event.EventMessage && evt.Sender == bot.UserID {
			if body, err := matrixtest.Body(evt); err == nil {
				out = append(out, body)
			}
		}
	}
	return out
}

func ghsatestFault(status int) ghsatest.Fault {
	return ghsatest.Fault{Status: status, Body: `{"message":"Server Error"}`}
}

// report has u ask the bot to report a security issue in a new DM and
// returns the DM and the case ID from the bot's answer.
func report(t *testing.T, ctx context.Context, u *matrixtest.User, bot id.UserID) (id.RoomID, string) {
	t.Helper()
	dm := openDM(t, ctx, u, bot)
	say(t, ctx, u, dm, "I want to report a security issue")
	ack := waitMessage(t, ctx, u, dm, bot, "do not share")
	caseID := caseIDPattern.FindString(ack.Content.AsMessage().Body)
	if caseID == "" {
		t.Fatalf("the bot's answer names no case: %q", ack.Content.AsMessage().Body)
	}
	return dm, caseID
}

// person is a Matrix user as secbot's core names them.
func person(u id.UserID) disclosure.Person { return disclosure.PersonOn(disclosure.Matrix, string(u)) }
