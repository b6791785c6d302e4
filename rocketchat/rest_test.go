package rocketchat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// env is a stand-in with a bot user and a client acting as it.
type env struct {
	s       *rctest.Server
	c       *Client
	botID   string
	token   string
	logs    *bytes.Buffer
	clock   clockwork.Clock
	options Options
}

// newEnv starts a stand-in and a client as its user "secbot". When the
// test ends it fails the test if Rocket.Chat's validators refused any
// request the client sent, or if the token is in the client's log.
func newEnv(t *testing.T, srv rctest.Options, opts Options) *env {
	t.Helper()
	if srv.Clock == nil {
		srv.Clock = opts.Clock
	}
	s := rctest.Start(t, srv)
	id, token := s.AddUser("secbot")
	logs := &bytes.Buffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	opts.Log = &log
	c, err := New(s.URL(), id, token, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{s: s, c: c, botID: id, token: token, logs: logs, clock: opts.Clock, options: opts}
	t.Cleanup(func() {
		for _, line := range s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
		if strings.Contains(logs.String(), token) {
			t.Errorf("the token is in the client's log:\n%s", logs.String())
		}
	})
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// noToken fails the test if err's text holds the token.
func (e *env) noToken(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), e.token) {
		t.Fatalf("the token is in an error: %v", err)
	}
}

func TestMeChecksTheCredentialsAndEveryRequestCarriesThem(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	me, err := e.c.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.ID != e.botID || me.Username != "secbot" {
		t.Fatalf("me = %+v", me)
	}
	for _, r := range e.s.Requests() {
		if r.Header.Get("X-User-Id") != e.botID || r.Header.Get("X-Auth-Token") != e.token {
			t.Errorf("%s %s without the bot's credentials", r.Method, r.Route)
		}
		if strings.Contains(r.Query, e.token) {
			t.Errorf("%s %s has the token in its URL", r.Method, r.Route)
		}
	}

	// A wrong token: the server's 401, permanent, and the token in no error.
	bad, err := New(e.s.URL(), e.botID, "wrong-"+e.token, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Me(ctx)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || !IsPermanent(err) || IsRetryable(err) {
		t.Fatalf("a wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-"+e.token) || strings.Contains(err.Error(), e.token) {
		t.Fatalf("the token is in the error: %v", err)
	}
}

func TestNewRefusesWhatCannotWork(t *testing.T) {
	for _, tc := range []struct{ name, url, id, token string }{
		{"no scheme", "chat.example.org", "u", "t"},
		{"the token in the clear over the network", "http://chat.example.org", "u", "t"},
		{"a user in the URL", "https://bot:pw@chat.example.org", "u", "t"},
		{"no user ID", "https://chat.example.org", "", "t"},
		{"no token", "https://chat.example.org", "u", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.url, tc.id, tc.token, Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "pw") {
				t.Fatalf("the password is in the error: %v", err)
			}
		})
	}
}

func TestSendMessageWithTheSameIDPostsOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  rctest.Options
	}{
		{"8.x answers a taken _id with a TypeError", rctest.Options{}},
		{"an insert answers MongoDB's duplicate key", rctest.Options{DuplicateKeyError: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.srv, Options{})
			ctx := ctxT(t)
			e.s.AddUser("alice")
			dm, err := e.c.CreateDM(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			m := Message{ID: "outbox-7-0", RoomID: dm.ID, Text: "Thanks, **we got it**."}
			first, err := e.c.SendMessage(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if first.Duplicate || first.Message.ID != m.ID || first.Message.Text != m.Text || first.Message.User.ID != e.botID {
				t.Fatalf("first send: %+v", first)
			}
			// The retry after a crash: the same row, the same ID.
			again, err := e.c.SendMessage(ctx, m)
			if err != nil {
				t.Fatalf("a retry of a posted message: %v", err)
			}
			if !again.Duplicate || again.Message.ID != m.ID {
				t.Fatalf("retry: %+v", again)
			}
			if got := e.s.Messages(dm.ID); len(got) != 1 || got[0].ID != m.ID {
				t.Fatalf("the room holds %+v, want the message once", got)
			}
		})
	}
}

func TestSendMessageRefusesAnIDSomeoneElsePosted(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	aliceID, aliceToken := e.s.AddUser("alice")
	dm, err := e.c.CreateDM(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	// Alice guesses the ID of the bot's next message and posts it first.
	alice, err := New(e.s.URL(), aliceID, aliceToken, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendMessage(ctx, Message{ID: "outbox-8-0", RoomID: dm.ID, Text: "squatted"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.SendMessage(ctx, Message{ID: "outbox-8-0", RoomID: dm.ID, Text: "the real answer"})
	if !errors.Is(err, ErrIDTaken) || !IsPermanent(err) {
		t.Fatalf("got %v, want ErrIDTaken (permanent)", err)
	}
	e.noToken(t, err)
}

func TestSendMessageFailuresSayWhetherARetryCanHelp(t *testing.T) {
	e := newEnv(t, rctest.Options{ForceEncryptedPrivateGroups: true}, Options{})
	ctx := ctxT(t)
	// No such room: permanent, and no lookup turns it into a success.
	_, err := e.c.SendMessage(ctx, Message{ID: "outbox-9-0", RoomID: "nosuchroom", Text: "x"})
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Type != "error-invalid-room" || !IsPermanent(err) {
		t.Fatalf("no such room: %v", err)
	}
	// A forced-encryption group refuses the bot's plain text.
	g, err := e.c.CreatePrivateGroup(ctx, "security-report-sr-2026-0001", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Encrypted {
		t.Fatalf("the group is not encrypted: %+v", g)
	}
	info, err := e.c.RoomInfo(ctx, g.ID)
	if err != nil || !info.Encrypted || info.Type != PrivateGroup {
		t.Fatalf("room info: %+v %v", info, err)
	}
	_, err = e.c.SendMessage(ctx, Message{ID: "outbox-9-1", RoomID: g.ID, Text: "welcome"})
	if !errors.As(err, &apiErr) || apiErr.Type != "error-not-allowed" || !IsPermanent(err) {
		t.Fatalf("plain text in an encrypted group: %v", err)
	}
	// Without an ID the client refuses before sending anything.
	before := len(e.s.Requests())
	if _, err := e.c.SendMessage(ctx, Message{RoomID: g.ID, Text: "x"}); err == nil {
		t.Fatal("a message without an ID was sent")
	}
	if len(e.s.Requests()) != before {
		t.Fatal("a message without an ID reached the server")
	}

	// The server gone: retryable.
	e.s.Close()
	_, err = e.c.SendMessage(ctx, Message{ID: "outbox-9-2", RoomID: g.ID, Text: "x"})
	if !IsRetryable(err) || IsPermanent(err) {
		t.Fatalf("server down: %v", err)
	}
	e.noToken(t, err)
}

func TestPrivateGroupsMembersInvitesAndKicks(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	aliceID, _ := e.s.AddUser("alice")
	bobID, _ := e.s.AddUser("bob")
	g, err := e.c.CreatePrivateGroup(ctx, "security-report-sr-2026-0007", []string{"alice", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Type != PrivateGroup || g.Name != "security-report-sr-2026-0007" || g.ReadOnly || g.Encrypted || g.Creator.ID != e.botID {
		t.Fatalf("group: %+v", g)
	}
	if room, _ := e.s.RoomByID(g.ID); len(room.Owners) != 1 || room.Owners[0] != e.botID {
		t.Fatalf("owners: %+v", room)
	}
	members := func() []string {
		t.Helper()
		us, err := e.c.GroupMembers(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range us {
			names = append(names, u.Username)
		}
		return names
	}
	if got := strings.Join(members(), ","); got != "secbot,alice" {
		t.Fatalf("members %s", got)
	}
	if err := e.c.InviteToGroup(ctx, g.ID, bobID); err != nil {
		t.Fatal(err)
	}
	if err := e.c.InviteToGroup(ctx, g.ID, bobID); err != nil {
		t.Fatalf("inviting a member again: %v", err)
	}
	if err := e.c.KickFromGroup(ctx, g.ID, aliceID); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(members(), ","); got != "secbot,bob" {
		t.Fatalf("members %s", got)
	}
	// The same name twice: the server's refusal, permanent.
	_, err = e.c.CreatePrivateGroup(ctx, "security-report-sr-2026-0007", nil)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Type != "error-duplicate-channel-name" || !IsPermanent(err) {
		t.Fatalf("a taken name: %v", err)
	}
}

func TestGroupMembersReadsEveryPage(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	var names []string
	for i := range pageSize + 5 {
		name := "user" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + strings.Repeat("0", i/26)
		e.s.AddUser(name)
		names = append(names, name)
	}
	g, err := e.c.CreatePrivateGroup(ctx, "big-group", names)
	if err != nil {
		t.Fatal(err)
	}
	us, err := e.c.GroupMembers(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != len(names)+1 {
		t.Fatalf("%d members, want %d", len(us), len(names)+1)
	}
}

func TestSubscriptionsHistoryAndUsers(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, rctest.Options{}, Options{Clock: clock})
	ctx := ctxT(t)
	aliceID, _ := e.s.AddUser("alice")
	alice, err := e.c.UserInfo(ctx, "alice")
	if err != nil || alice.ID != aliceID || alice.Username != "alice" {
		t.Fatalf("users.info: %+v %v", alice, err)
	}
	if _, err := e.c.UserInfo(ctx, "nobody"); !IsPermanent(err) {
		t.Fatalf("an unknown user: %v", err)
	}

	dm, err := e.c.CreateDM(ctx, "alice")
	if err != nil || dm.Type != DirectMessage || dm.ID == "" {
		t.Fatalf("im.create: %+v %v", dm, err)
	}
	group, err := e.c.CreatePrivateGroup(ctx, "team", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	chanID := e.s.CreateChannel("announcements", aliceID)

	all, err := e.c.Subscriptions(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Update) != 2 {
		t.Fatalf("subscriptions %+v, want the DM and the group", all.Update)
	}
	mark := clock.Now()
	clock.Advance(time.Second)

	root, err := e.s.SendAs(aliceID, dm.ID, "I found a bug", "")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Millisecond)
	if _, err := e.s.SendAs(aliceID, dm.ID, "details in the thread", root); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Millisecond)
	if _, err := e.s.SendAs(aliceID, chanID, "public hello", ""); err != nil {
		t.Fatal(err)
	}

	changed, err := e.c.Subscriptions(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed.Update) != 1 || changed.Update[0].RoomID != dm.ID || changed.Update[0].Type != DirectMessage || changed.Update[0].Name != "alice" {
		t.Fatalf("changed since the mark: %+v", changed.Update)
	}

	hist, err := e.c.History(ctx, dm.ID, DirectMessage, mark)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].ID != root || hist[1].ThreadID != root || hist[0].User.ID != aliceID || hist[0].TS.IsZero() {
		t.Fatalf("DM history (thread replies included, oldest first): %+v", hist)
	}
	// Inclusive: from the first message's own time, it is there again.
	again, err := e.c.History(ctx, dm.ID, DirectMessage, hist[0].TS)
	if err != nil || len(again) != 2 {
		t.Fatalf("history from the first message's time: %+v %v", again, err)
	}
	later, err := e.c.History(ctx, dm.ID, DirectMessage, hist[1].TS.Add(time.Millisecond))
	if err != nil || len(later) != 0 {
		t.Fatalf("history after the last message: %+v %v", later, err)
	}
	ch, err := e.c.History(ctx, chanID, Channel, time.Time{})
	if err != nil || len(ch) != 1 || ch[0].Text != "public hello" {
		t.Fatalf("channel history: %+v %v", ch, err)
	}
	gh, err := e.c.History(ctx, group.ID, PrivateGroup, time.Time{})
	if err != nil || len(gh) != 0 {
		t.Fatalf("group history: %+v %v", gh, err)
	}
	if _, err := e.c.History(ctx, dm.ID, "x", time.Time{}); err == nil {
		t.Fatal("an unknown room type was accepted")
	}
}

func TestHistoryReadsEveryPageOnce(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, rctest.Options{}, Options{Clock: clock})
	ctx := ctxT(t)
	aliceID, _ := e.s.AddUser("alice")
	g, err := e.c.CreatePrivateGroup(ctx, "team", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	// 250 messages, several in each millisecond, so that pages end inside one.
	var want []string
	for i := range 250 {
		id, err := e.s.SendAs(aliceID, g.ID, "m", "")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
		if i%7 == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	got, err := e.c.History(ctx, g.ID, PrivateGroup, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for i, m := range got {
		if seen[m.ID] {
			t.Fatalf("%s twice", m.ID)
		}
		seen[m.ID] = true
		if i > 0 && m.TS.Before(got[i-1].TS) {
			t.Fatalf("not oldest first at %d", i)
		}
	}
	for _, id := range want {
		if !seen[id] {
			t.Fatalf("%s missing", id)
		}
	}
}

func TestARedirectIsNotFollowedSoTheTokenStaysWithTheServer(t *testing.T) {
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("X-Auth-Token"))
		_, _ = w.Write([]byte(`{"_id":"u","success":true}`))
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	c, err := New(srv.URL, "u", "secret-token", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(ctxT(t))
	if !IsPermanent(err) || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("got %v, want a permanent error about the redirect", err)
	}
	if len(leaked) != 0 {
		t.Fatalf("the redirect was followed, with the token: %q", leaked)
	}
	// The realtime API's dial goes the same way.
	rt := c.Realtime(RealtimeOptions{OnMessage: func(context.Context, IncomingMessage) {}})
	if _, err := rt.session(ctxT(t)); err == nil || len(leaked) != 0 {
		t.Fatalf("dial: %v, leaked %q", err, leaked)
	}
}

func TestASendWhoseCheckFailsStaysRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/chat.sendMessage":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"success":false,"error":"Cannot read properties of undefined (reading 'starred')"}`))
		default: // chat.getMessage: the server is failing
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"success":false,"error":"Service Unavailable"}`))
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, "u", "tok", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SendMessage(ctxT(t), Message{ID: "outbox-1-0", RoomID: "r", Text: "x"})
	if !IsRetryable(err) {
		t.Fatalf("got %v: whether it was posted is unknown, so a retry must decide", err)
	}
}

// The harness's own check: a request Rocket.Chat's validators refuse is
// recorded, so newEnv's cleanup would fail the test that sent it.
func TestARequestTheValidatorsRefuseIsCaught(t *testing.T) {
	s := rctest.Start(t, rctest.Options{})
	id, token := s.AddUser("secbot")
	c, err := New(s.URL(), id, token, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.post(ctxT(t), "groups.create", map[string]any{"name": "g", "readOnly": false, "topic": "not a groups.create field"}, nil)
	if !IsPermanent(err) {
		t.Fatalf("got %v, want the server's 400", err)
	}
	if len(s.Invalid()) != 1 || !strings.Contains(s.Invalid()[0], "isGroupsCreateProps") {
		t.Fatalf("invalid: %q", s.Invalid())
	}
}

func TestChannelsChangedSinceReadsOnlyThePagesWithNews(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, rctest.Options{Clock: clock}, Options{Clock: clock})
	ctx := ctxT(t)
	adminID, _ := e.s.AddUser("admin")
	aliceID, _ := e.s.AddUser("alice")
	var all []string
	for i := range pageSize + 20 {
		all = append(all, e.s.CreateChannel(fmt.Sprintf("chan-%03d", i), adminID, aliceID))
	}
	clock.Advance(time.Minute)
	since := clock.Now()
	clock.Advance(time.Second)
	news := []string{all[3], all[pageSize+7], all[50]}
	for _, id := range news {
		if _, err := e.s.SendAs(aliceID, id, "news", ""); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	lists := func() int {
		n := 0
		for _, r := range e.s.Requests() {
			if r.Route == "channels.list" {
				n++
			}
		}
		return n
	}
	got, err := e.c.ChannelsChangedSince(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
		if r.Type != Channel || r.Name == "" || r.LastMessage.Before(since) {
			t.Errorf("a channel with news: %+v", r)
		}
	}
	// Newest first.
	if want := []string{news[2], news[1], news[0]}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("channels with news: %v, want %v", ids, want)
	}
	if n := lists(); n != 1 {
		t.Errorf("%d pages read for three channels with news, want 1", n)
	}
	// Since the beginning: every channel, every page.
	got, err = e.c.ChannelsChangedSince(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("%d channels since the beginning, want %d", len(got), len(all))
	}
	if n := lists(); n != 1+2 {
		t.Errorf("%d pages read in all, want 3", n)
	}
}
