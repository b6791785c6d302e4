package rocketchat

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// lockedLog is a log buffer the platform's goroutines may write to.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// countText is how often a text was handed over so far.
func (r *recorder) countText(text string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m.Text == text {
			n++
		}
	}
	return n
}

// The stream hands the bot the messages of public channels it is not in;
// what is said in one while the socket is down is found by the catch-up
// after the reconnect (channels.list, then that channel's history), once,
// beside what is said in a channel it is in. (That channels without news
// are not read is TestChannelsChangedSinceReadsOnlyThePagesWithNews.)
func TestAReconnectCatchesUpInAPublicChannelTheBotIsNotIn(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	adminID, _ := e.s.AddUser("admin")
	ritaID, _ := e.user(t, "rita")
	lobby := e.s.CreateChannel("lobby", adminID, ritaID)              // without the bot
	general := e.s.CreateChannel("general", adminID, ritaID, e.botID) // with the bot
	rec := newRecorder()
	e.run(t, e.p, rec)
	if _, err := e.s.SendAs(ritaID, lobby, "streamed", ""); err != nil {
		t.Fatal(err)
	}
	rec.waitText(t, ctx, "streamed")

	if n := e.s.DropConnections(); n != 1 {
		t.Fatalf("%d realtime connections dropped", n)
	}
	if _, err := e.s.SendAs(ritaID, lobby, "in the lobby during the outage", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(ritaID, general, "in general during the outage", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.s.WaitSubscribed(ctx, e.botID, 1); err != nil {
		t.Fatal(err)
	}
	msgs := rec.waitText(t, ctx, "in the lobby during the outage")
	rec.waitText(t, ctx, "in general during the outage")
	for _, m := range msgs {
		if m.Text == "in the lobby during the outage" && m.Room != "rocketchat:"+lobby {
			t.Errorf("handed over from room %q, want the lobby", m.Room)
		}
	}
	if _, err := e.s.SendAs(ritaID, lobby, "after the outage", ""); err != nil {
		t.Fatal(err)
	}
	rec.waitText(t, ctx, "after the outage")
	for _, text := range []string{"streamed", "in the lobby during the outage", "in general during the outage", "after the outage"} {
		if n := rec.countText(text); n != 1 {
			t.Errorf("%q handed over %d times", text, n)
		}
	}
	if n := countRequests(e.s, "channels.list"); n != 2 {
		t.Errorf("channels.list called %d times for two catch-ups, want 2 (one page each)", n)
	}
}

// A bot that may not list the public channels (no view-c-room nor
// view-joined-room: 403) still catches up in its own rooms: the refusal is
// logged, not a catch-up that fails for ever.
func TestABotThatMayNotListChannelsStillCatchesUpItsOwnRooms(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, rita := e.user(t, "rita")
	e.s.SetRoles(e.botID) // no role: no view-c-room
	var logs lockedLog
	p, err := NewPlatform(ctx, PlatformConfig{Client: e.c, Store: e.st, Secret: []byte("installation secret for tests"),
		Log: zerolog.New(&logs), MinBackoff: 500 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	e.run(t, p, rec)
	dm, err := rita.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if n := e.s.DropConnections(); n != 1 {
		t.Fatalf("%d realtime connections dropped", n)
	}
	if _, err := e.s.SendAs(ritaID, dm.ID, "during the outage", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.s.WaitSubscribed(ctx, e.botID, 1); err != nil {
		t.Fatal(err)
	}
	rec.waitText(t, ctx, "during the outage")
	if !strings.Contains(logs.String(), "Could not list the public channels") {
		t.Errorf("the refusal is not in the log:\n%s", logs.String())
	}
}
