package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
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

	const unusable = "**The private room of SR-2026-0001 cannot be used**"
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
	if n := len(b.botSaid(dm, "cannot be used")); n != 1 {
		t.Errorf("the reporter was told %d times that the room cannot be used", n)
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
		t.Errorf("the team room was told %d times that the case room cannot be used", n)
	}
	// What the group refused ended in the outbox without its text.
	if strings.Contains(b.logs.String(), answer) {
		t.Error("the team's answer is in the log")
	}
}

// realtimeGate stands between secbot and the stand-in: REST passes, and
// the realtime endpoint (/websocket) answers 503 while it is down, as a
// proxy in front of a server whose realtime side went away.
type realtimeGate struct {
	proxy *httputil.ReverseProxy
	down  atomic.Bool
}

func (g *realtimeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.down.Load() && strings.HasPrefix(r.URL.Path, "/websocket") {
		http.Error(w, "realtime unavailable", http.StatusServiceUnavailable)
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// freeAddr is a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// healthz is /healthz's answer.
func healthz(addr string) (int, string, error) {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// /healthz says whether Rocket.Chat is in touch: ok while its realtime
// connection is up and caught up; degraded, naming Rocket.Chat and its
// last catch-up, while the server's realtime endpoint is gone; ok again
// once it is back.
func TestHealthzTellsTheRocketChatConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	newRCTeam(t, ctx, b)
	target, err := url.Parse(b.s.URL())
	if err != nil {
		t.Fatal(err)
	}
	gate := &realtimeGate{proxy: httputil.NewSingleHostReverseProxy(target)}
	front := httptest.NewServer(gate)
	t.Cleanup(front.Close)
	addr := freeAddr(t)
	path := b.config(rcTeamTOML)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	toml := strings.Replace(strings.Replace(string(raw), b.s.URL(), front.URL, 1), `listen = ""`, `listen = "`+addr+`"`, 1)
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	b.serve(ctx, path)

	// waitHealth polls /healthz until it answers code with every part.
	waitHealth := func(what string, code int, parts ...string) string {
		t.Helper()
		var got string
		for {
			c, body, err := healthz(addr)
			got = body
			if err == nil && c == code {
				ok := true
				for _, p := range parts {
					ok = ok && strings.Contains(body, p)
				}
				if ok {
					return body
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: /healthz answers %d %q (%v)\n%s", what, c, got, err, b.logs.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitHealth("up", http.StatusOK, "ok")

	gate.down.Store(true)
	if n := b.s.DropConnections(); n != 1 {
		t.Fatalf("%d realtime connections dropped, want secbot's one", n)
	}
	body := waitHealth("the realtime endpoint gone", http.StatusServiceUnavailable, "degraded", "rocketchat", "realtime", "last success 20")
	if strings.Contains(body, "matrix") {
		t.Errorf("/healthz names Matrix, which is not configured: %q", body)
	}

	gate.down.Store(false)
	waitHealth("the realtime endpoint back", http.StatusOK, "ok")
	if n := b.s.Connections(); n != 1 {
		t.Errorf("%d realtime connections after recovering, want 1", n)
	}
}

// A request to report posted in the public channel the config names
// ([announce] rooms), which the bot was not a member of, while secbot
// was down, is answered once it starts: secbot joins the channel at
// start, so the catch-up reads it. Answered once: another restart
// answers nothing again.
func TestARequestInAPublicChannelWhileSecbotWasDownIsAnsweredOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	team := newRCTeam(t, ctx, b)
	readerID, _ := b.s.AddUser("reader")
	announcements := b.s.CreateChannel("announcements", team.aliceID, readerID) // without the bot
	path := b.config(rcTeamTOML + `[announce]
rooms = ["rocketchat:announcements"]
`)
	stop := b.serve(ctx, path)
	b.command(ctx, team.aliceID, team.teamID, "!sec help")
	if r, _ := b.s.RoomByID(announcements); !slices.Contains(r.Members, b.botID) {
		t.Errorf("the bot is not a member of the channel it announces in: %+v", r)
	}
	stop()

	aPublicRequestWhileDownIsAnsweredOnce(t, ctx, b, team, announcements, path)
}

// A case group that was usable when it was made, and that the server (or
// its owner) encrypted since: the first post it refuses makes the case go
// on without it, as if it had been so from the start. The team room is
// told once, the reporter is told once in their DM and gets the refused
// answer there, and every later answer goes to the DM directly.
func TestACaseGroupEncryptedLaterIsToldOnceAndItsPostsReachTheDM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	team := newRCTeam(t, ctx, b)
	b.serve(ctx, b.config(rcTeamTOML))
	_, dm := rcReport(t, ctx, b, "rita")
	var group rctest.Room
	b.wait(ctx, "the case group's welcome", func() bool {
		var ok bool
		group, ok = b.s.RoomByName("security-report-sr-2026-0001")
		return ok && b.said(group.ID, "SR-2026-0001")
	})
	b.waitOutboxIdle(ctx)
	posted := len(b.botSaid(group.ID))

	b.s.EncryptRoom(group.ID)
	const first, second = "Thanks, we can reproduce it.", "A fix is under review."
	b.say(team.aliceID, team.teamID, "!sec respond SR-2026-0001 "+first)
	const unusable = "**The private room of SR-2026-0001 cannot be used**"
	b.wait(ctx, "the team told", func() bool { return b.said(team.teamID, unusable, "end-to-end encrypted") })
	b.wait(ctx, "the first answer in the DM", func() bool { return b.said(dm, first) })
	b.say(team.aliceID, team.teamID, "!sec respond SR-2026-0001 "+second)
	b.wait(ctx, "the second answer in the DM", func() bool { return b.said(dm, second) })
	b.waitOutboxIdle(ctx)

	for _, text := range []string{first, second, "cannot be used on this chat"} {
		if n := len(b.botSaid(dm, text)); n != 1 {
			t.Errorf("the reporter's DM holds %q %d times, want once", text, n)
		}
	}
	if n := len(b.botSaid(team.teamID, unusable)); n != 1 {
		t.Errorf("the team room was told %d times", n)
	}
	for _, text := range []string{first, second} {
		if ms := b.botSaid(team.teamID, text); len(ms) != 0 {
			t.Errorf("the team room got the answer meant for the reporter: %+v", ms)
		}
	}
	if n := len(b.botSaid(group.ID)); n != posted {
		t.Errorf("the bot posted %d messages in the group after it was encrypted", n-posted)
	}
}
