package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

const (
	floodMessages = 10000
	// A homeserver takes a room's events one at a time, so the flood is
	// spread over several direct chats to reach its rate.
	floodRooms   = 10
	floodSenders = 64
)

// flood sends n report requests from cli across rooms, floodSenders at a
// time, and returns how many the homeserver accepted.
func flood(ctx context.Context, cli *mautrix.Client, rooms []id.RoomID, n int, sent *atomic.Int64) int64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range floodSenders {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				if _, err := cli.SendText(ctx, rooms[int(i)%len(rooms)], fmt.Sprintf("I want to report a security issue (%d)", i)); err == nil {
					sent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return sent.Load()
}

// rawRound is the homeserver's own latency for what intake does: Alice
// creates an encrypted room inviting u and Bob, sends a message, until u
// sees the invite.
func rawRound(ctx context.Context, u *matrixtest.User) (time.Duration, error) {
	t0 := time.Now()
	resp, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: "raw", Invite: []id.UserID{u.ID(), bed.Bob.ID()},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		return 0, err
	}
	if _, err := bed.Alice.Say(ctx, resp.RoomID, "raw"); err != nil {
		return 0, err
	}
	if _, err := u.WaitInvite(ctx, 2*time.Minute, bed.Alice.ID(), func(evt *event.Event) bool { return evt.RoomID == resp.RoomID }); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// One client sends the bot 10,000 report requests as fast as the
// homeserver takes them. secbot keeps running, other reporters still get
// their case rooms while it lasts, the flooder gets one case and a
// polite limit message rather than a flood back, and nothing is left
// undone afterwards.
func TestFloodNeitherCrashesTheBotNorStallsIntake(t *testing.T) {
	// A bound for a stuck test, not a speed target: the flood takes as
	// long as this machine's homeserver needs for it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bot := startBot(t, ctx, "floodbot", servedOptions(t, testbed.BotOptions{}))
	flooder, err := matrixtest.NewPlain(ctx, bed.Server, "flooder")
	if err != nil {
		t.Fatal(err)
	}
	var rooms []id.RoomID
	for range floodRooms {
		room, err := matrixtest.PlainDM(ctx, flooder, bot.UserID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, room)
	}
	const calm = 3
	var reporters []*matrixtest.User
	var dms []id.RoomID
	for i := range calm {
		u := newUser(t, ctx, fmt.Sprintf("calm%d-", i))
		reporters = append(reporters, u)
		dms = append(dms, openDM(t, ctx, u, bot.UserID))
	}

	// The flood is bounded by its count, not by a time: how fast the
	// homeserver takes it depends on the machine, not on secbot.
	floodCtx, stopFlood := context.WithCancel(ctx)
	defer stopFlood()
	var sent atomic.Int64
	start := time.Now()
	done := make(chan int64)
	go func() { done <- flood(floodCtx, flooder, rooms, floodMessages, &sent) }()

	// While the flood runs, calm reporters ask (and the raw calls run) one
	// after another.
	for sent.Load() < floodMessages/10 {
		// Not a quiet-period wait: polls the flood's own counter.
		time.Sleep(50 * time.Millisecond)
	}
	var intake, raw []string
	for i, u := range reporters {
		t0 := time.Now()
		say(t, ctx, u, dms[i], "I want to report a security issue")
		caseInvite(t, ctx, u, bot.UserID)
		intake = append(intake, time.Since(t0).Round(time.Millisecond).String())
		d, err := rawRound(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, d.Round(time.Millisecond).String())
	}
	during := sent.Load()
	accepted := <-done
	elapsed := time.Since(start)
	t.Logf("flood: %d of %d messages over %d rooms accepted by the homeserver in %s (%.0f/s); %d had been sent when the last calm reporter was invited",
		accepted, floodMessages, floodRooms, elapsed.Round(time.Millisecond), float64(accepted)/elapsed.Seconds(), during)
	t.Logf("during the flood: intake (DM → invite) %s; raw calls %s", strings.Join(intake, ", "), strings.Join(raw, ", "))
	if accepted < floodMessages {
		t.Fatalf("the flood stopped after %d of its %d messages", accepted, floodMessages)
	}

	// secbot read the whole flood, made everything it recorded, and is healthy.
	if err := bot.WaitOutboxEmpty(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	caughtUp := time.Since(start)
	if !bot.Running() {
		t.Fatalf("secbot died under the flood:\n%s", tail(bot.Log(), 30))
	}
	if code := bot.Healthz(); code != http.StatusOK {
		t.Fatalf("/healthz answers %d after the flood", code)
	}
	// It answers again once the flood is over.
	say(t, ctx, reporters[0], dms[0], "status")
	waitMessage(t, ctx, reporters[0], dms[0], bot.UserID, "SR-")
	t.Logf("secbot had made every effect %s after the flood began", caughtUp.Round(time.Millisecond))

	// The flooder: one case, one room, and answers bounded by the limit.
	caseRooms, err := matrixtest.PlainInvites(ctx, flooder, bot.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if caseRooms != 1 {
		t.Errorf("the flooder was invited to %d case rooms, want 1", caseRooms)
	}
	var answers []string
	for _, room := range rooms {
		some, err := matrixtest.PlainMessages(ctx, flooder, room, bot.UserID)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, some...)
	}
	limits := 0
	for _, a := range answers {
		if strings.Contains(a, "many messages at once") {
			limits++
		}
	}
	// Each minute of the flood as secbot read it gives at most the burst of
	// answers and one limit message; the first minute adds the case's answer.
	windows := int(caughtUp/handlers.ChatterWindow) + 1
	if limits < 1 || limits > windows || len(answers) > 1+windows*(handlers.ChatterBurst+1) {
		t.Errorf("the flooder got %d answers (%d limit messages) over about %d minute(s), want at most %d per minute with one limit message each:\n%s",
			len(answers), limits, windows, handlers.ChatterBurst+1, strings.Join(answers, "\n"))
	}
	t.Logf("the flooder got %d answers, %d of them the limit message", len(answers), limits)
}
