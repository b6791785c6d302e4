package rctest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// rest is a minimal REST client of the stand-in, for its own tests.
type rest struct {
	t         *testing.T
	base      string
	id, token string
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

func (c rest) do(method, route string, query url.Values, body any) answer {
	c.t.Helper()
	u := c.base + "/api/v1/" + route
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.id != "" {
		req.Header.Set("X-User-Id", c.id)
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatalf("%s %s: answer is not JSON: %v", method, route, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: out}
}

func (c rest) post(route string, body any) answer {
	c.t.Helper()
	return c.do("POST", route, nil, body)
}
func (c rest) get(route string, q url.Values) answer {
	c.t.Helper()
	return c.do("GET", route, q, nil)
}

func (c rest) ok(a answer) answer {
	c.t.Helper()
	if a.status != 200 || a.body["success"] != true {
		c.t.Fatalf("want success, got %d %v", a.status, a.body)
	}
	return a
}

func newUser(t *testing.T, s *Server, name string) rest {
	id, token := s.AddUser(name)
	return rest{t: t, base: s.URL(), id: id, token: token}
}

func messagesOf(t *testing.T, a answer) []map[string]any {
	t.Helper()
	list, ok := a.body["messages"].([]any)
	if !ok {
		t.Fatalf("no messages in %v", a.body)
	}
	var out []map[string]any
	for _, m := range list {
		out = append(out, m.(map[string]any))
	}
	return out
}

func texts(ms []map[string]any) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m["msg"].(string))
	}
	return out
}

func noInvalid(t *testing.T, s *Server) {
	t.Helper()
	if inv := s.Invalid(); len(inv) > 0 {
		t.Fatalf("requests refused by Rocket.Chat's validators: %v", inv)
	}
}

func TestTheFixtureHoldsRocketChatsValidatorsForTheRoutesSecbotUses(t *testing.T) {
	vs, err := loadValidators()
	if err != nil {
		t.Fatal(err)
	}
	if vs.source != "@rocket.chat/rest-typings@8.8.1" {
		t.Errorf("fixture from %q", vs.source)
	}
	want := map[string]string{
		"POST chat.sendMessage": "isChatSendMessageProps",
		"POST chat.postMessage": "isChatPostMessageProps",
		"POST im.create":        "isDmCreateProps",
		"GET im.history":        "isDmHistoryProps",
		"POST groups.create":    "isGroupsCreateProps",
		"POST groups.invite":    "isGroupsInviteProps",
		"POST groups.kick":      "isGroupsKickProps",
		"GET groups.history":    "isGroupsHistoryProps",
		"GET subscriptions.get": "isSubscriptionsGetProps",
		"GET rooms.info":        "isRoomsInfoProps",
		"GET channels.list":     "isChannelsListProps",
	}
	for route, name := range want {
		v := vs.byRoute[route]
		if v == nil || v.name != name {
			t.Errorf("%s: want validator %s, got %+v", route, name, v)
		}
	}
	// Every route the stand-in serves is either validated or listed as
	// having no validator on the server: none is silently unchecked.
	s, _ := New(Options{})
	for route := range s.routes() {
		if vs.byRoute[route] == nil && !vs.none[route] {
			t.Errorf("%s is neither in the fixture's routes nor in withoutValidator", route)
		}
	}
}

func TestARequestRocketChatsValidatorRefusesGetsTheServers400AndIsRecorded(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	dm := bot.ok(bot.post("im.create", map[string]any{"username": "alice"}))
	rid := dm.body["room"].(map[string]any)["_id"].(string)

	cases := []struct {
		name       string
		do         func() answer
		errType    string
		meteor     bool // a validateParams route: the Meteor error's text ends in its type
		wantStatus int
	}{
		{"chat.sendMessage without its message", func() answer {
			return bot.post("chat.sendMessage", map[string]any{"msg": "hi", "rid": rid})
		}, "invalid-params", true, 400},
		{"a message with a number for its text", func() answer {
			return bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": rid, "msg": map[string]any{"x": 1}}})
		}, "invalid-params", true, 400},
		{"a private group with a topic (not a property of groups.create)", func() answer {
			return bot.post("groups.create", map[string]any{"name": "x", "topic": "secret"})
		}, "invalid-params", true, 400},
		{"im.create with both username and usernames", func() answer {
			return bot.post("im.create", map[string]any{"username": "alice", "usernames": "alice"})
		}, "invalid-params", false, 400},
		{"im.history with a query parameter it does not know", func() answer {
			return bot.get("im.history", url.Values{"roomId": {rid}, "limit": {"5"}})
		}, "error-invalid-params", false, 400},
		{"im.history with a count that is not a number", func() answer {
			return bot.get("im.history", url.Values{"roomId": {rid}, "count": {"many"}})
		}, "error-invalid-params", false, 400},
		{"im.history checked before authentication (typed route)", func() answer {
			anon := rest{t: t, base: s.URL()}
			return anon.get("im.history", url.Values{})
		}, "error-invalid-params", false, 400},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.do()
			if a.status != tc.wantStatus || a.body["success"] != false || a.str("errorType") != tc.errType {
				t.Fatalf("got %d %v", a.status, a.body)
			}
			if tc.meteor && !strings.HasSuffix(a.str("error"), " [invalid-params]") {
				t.Errorf("a Meteor error's text ends in its type: %q", a.str("error"))
			}
			if got := len(s.Invalid()); got != i+1 {
				t.Fatalf("Invalid() has %d entries, want %d: %v", got, i+1, s.Invalid())
			}
		})
	}
	// Coercion as AJV does it: a query's "5" is the number the schema wants.
	s2 := Start(t, Options{})
	b2 := newUser(t, s2, "bot")
	newUser(t, s2, "alice")
	rid2 := b2.ok(b2.post("im.create", map[string]any{"username": "alice"})).body["room"].(map[string]any)["_id"].(string)
	b2.ok(b2.get("im.history", url.Values{"roomId": {rid2}, "count": {"5"}, "showThreadMessages": {"true"}}))
	g := b2.ok(b2.post("groups.create", map[string]any{"name": "g1", "members": []string{"alice"}}))
	gid := g.body["group"].(map[string]any)["_id"].(string)
	b2.ok(b2.get("groups.history", url.Values{"roomId": {gid}, "count": {"5"}}))
	noInvalid(t, s2)
	_ = alice
}

func TestWithoutCredentialsTheAnswerIsTheServers401(t *testing.T) {
	s := Start(t, Options{})
	newUser(t, s, "bot")
	for _, c := range []rest{{t: t, base: s.URL()}, {t: t, base: s.URL(), id: "nobody", token: "wrong"}} {
		a := c.get("me", nil)
		want := map[string]any{"success": false, "error": "You must be logged in to do this.", "status": "error", "message": "You must be logged in to do this."}
		if a.status != 401 || !equalJSON(a.body, want) {
			t.Fatalf("got %d %v", a.status, a.body)
		}
	}
	// A right token under another user's ID is no login either.
	bob := newUser(t, s, "bob")
	mallory := newUser(t, s, "mallory")
	if a := (rest{t: t, base: s.URL(), id: bob.id, token: mallory.token}).get("me", nil); a.status != 401 {
		t.Fatalf("got %d %v", a.status, a.body)
	}
	if reqs := s.Requests(); len(reqs) != 3 || reqs[0].Status != 401 || reqs[0].Route != "me" {
		t.Fatalf("requests: %+v", reqs)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestARepeatedMessageIDIsRefusedAndPostsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		text string
	}{
		{"8.x: sendMessage finds the _id taken", Options{}, "Cannot read properties of undefined (reading 'starred')"},
		{"an insert of a taken _id", Options{DuplicateKeyError: true}, "E11000 duplicate key error"},
	} {
		t.Run(tc.name, func(t *testing.T) { testRepeatedMessageID(t, tc.opts, tc.text) })
	}
}

func testRepeatedMessageID(t *testing.T, opts Options, text string) {
	s := Start(t, opts)
	bot := newUser(t, s, "bot")
	newUser(t, s, "alice")
	rid := bot.ok(bot.post("im.create", map[string]any{"username": "alice"})).body["room"].(map[string]any)["_id"].(string)
	send := func() answer {
		return bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"_id": "outbox-42", "rid": rid, "msg": "hello"}})
	}
	first := bot.ok(send())
	if got := first.body["message"].(map[string]any)["_id"]; got != "outbox-42" {
		t.Fatalf("the message has _id %v", got)
	}
	again := send()
	if again.status != 400 || !strings.HasPrefix(again.str("error"), text) || again.body["errorType"] != nil {
		t.Fatalf("got %d %v", again.status, again.body)
	}
	if n := len(s.Messages(rid)); n != 1 {
		t.Fatalf("%d messages in the room, want 1", n)
	}
	noInvalid(t, s)
}

func TestPrivateGroupsOnlyOwnersAndModeratorsInviteAndKick(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	newUser(t, s, "carol")
	outsider := newUser(t, s, "eve")

	g := bot.ok(bot.post("groups.create", map[string]any{"name": "security-report-sr-2026-0001", "members": []string{"alice", "nosuchuser"}, "readOnly": false}))
	gid := g.body["group"].(map[string]any)["_id"].(string)
	room, _ := s.RoomByID(gid)
	if len(room.Members) != 2 || room.Owners[0] != bot.id || len(room.Owners) != 1 {
		t.Fatalf("room %+v: want bot (owner) and alice, the unknown member skipped", room)
	}
	if n := len(s.Messages(gid)); n != 0 {
		t.Fatalf("initial members get no system message, got %d", n)
	}
	dup := bot.post("groups.create", map[string]any{"name": "security-report-sr-2026-0001"})
	if dup.str("errorType") != "error-duplicate-channel-name" {
		t.Fatalf("a second group of the same name: %v", dup.body)
	}

	// A member who is not an owner may not invite or kick.
	a := alice.post("groups.invite", map[string]any{"roomId": gid, "username": "carol"})
	if a.status != 400 || a.str("errorType") != "error-not-allowed" {
		t.Fatalf("member invites: %d %v", a.status, a.body)
	}
	a = alice.post("groups.kick", map[string]any{"roomId": gid, "username": "bot"})
	if a.status != 400 || a.str("errorType") != "error-not-allowed" {
		t.Fatalf("member kicks: %d %v", a.status, a.body)
	}
	// Someone outside the group does not even see it.
	a = outsider.get("groups.history", url.Values{"roomId": {gid}})
	if a.status != 400 || a.str("errorType") != "error-room-not-found" {
		t.Fatalf("outsider reads: %d %v", a.status, a.body)
	}
	a = outsider.get("rooms.info", url.Values{"roomId": {gid}})
	if a.status != 400 || a.str("error") != "not-allowed" || a.str("errorType") != "Not Allowed" {
		t.Fatalf("outsider rooms.info: %d %v", a.status, a.body)
	}
	// The owner does, and each leaves a system message.
	bot.ok(bot.post("groups.invite", map[string]any{"roomId": gid, "username": "carol"}))
	bot.ok(bot.post("groups.kick", map[string]any{"roomId": gid, "username": "carol"}))
	ms := s.Messages(gid)
	if len(ms) != 2 || ms[0].Type != "au" || ms[0].Text != "carol" || ms[0].UserID != bot.id || ms[1].Type != "ru" {
		t.Fatalf("system messages: %+v", ms)
	}
	h := messagesOf(t, bot.ok(bot.get("groups.history", url.Values{"roomId": {gid}})))
	if len(h) != 2 || h[0]["t"] != "ru" || h[1]["t"] != "au" {
		t.Fatalf("history, newest first with t: %v", h)
	}
	members := bot.ok(bot.get("groups.members", url.Values{"roomId": {gid}}))
	if members.body["total"] != float64(2) {
		t.Fatalf("members: %v", members.body)
	}
	// A moderator may invite too; someone without create-p may not create.
	s.SetRoomRoles(gid, alice.id, "moderator")
	alice.ok(alice.post("groups.invite", map[string]any{"roomId": gid, "username": "carol"}))
	s.SetRoles(outsider.id)
	if a := outsider.post("groups.create", map[string]any{"name": "mine"}); a.status != 403 || a.str("error") != "unauthorized" {
		t.Fatalf("create without create-p: %d %v", a.status, a.body)
	}
	// Posting needs membership.
	if a := outsider.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": gid, "msg": "hi"}}); a.status != 400 || a.str("error") != "error-not-allowed" {
		t.Fatalf("outsider posts: %d %v", a.status, a.body)
	}
	noInvalid(t, s)
}

func TestRateLimitsAnswer429WithTheHeadersUnlessTheCallerMayBypass(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	s := Start(t, Options{Clock: clock})
	user := newUser(t, s, "alice")
	bot := newUser(t, s, "bot")
	s.SetRoles(bot.id, "bot")
	s.SetRateLimit("GET", "me", 2, time.Minute)

	for i := 1; i <= 2; i++ {
		a := user.ok(user.get("me", nil))
		if a.header.Get("X-RateLimit-Limit") != "2" || a.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("call %d headers: %v", i, a.header)
		}
	}
	clock.Advance(10 * time.Second)
	a := user.get("me", nil)
	reset := strconv.FormatInt(time.Date(2026, 12, 1, 12, 1, 0, 0, time.UTC).UnixMilli(), 10)
	if a.status != 429 || a.header.Get("X-RateLimit-Remaining") != "0" || a.header.Get("X-RateLimit-Reset") != reset ||
		!strings.Contains(a.str("error"), "You must wait 50 seconds") {
		t.Fatalf("got %d %v %v", a.status, a.header, a.body)
	}
	// The bot role holds api-bypass-rate-limit: no limit and no headers.
	for i := 0; i < 5; i++ {
		b := bot.ok(bot.get("me", nil))
		if b.header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("a caller who bypasses gets headers: %v", b.header)
		}
	}
	clock.Advance(50 * time.Second)
	user.ok(user.get("me", nil))

	// The server's default limit counts each route on its own.
	s.SetDefaultRateLimit(1, time.Minute)
	user.ok(user.get("subscriptions.get", nil))
	if a := user.get("subscriptions.get", nil); a.status != 429 {
		t.Fatalf("second call under a default limit of 1: %d", a.status)
	}
	user.ok(user.get("im.list", nil))
	s.SetDefaultRateLimit(0, 0)
	user.ok(user.get("subscriptions.get", nil))
}

func TestDirectMessagesThreadsAndHistory(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	eve := newUser(t, s, "eve")
	dm := bot.ok(bot.post("im.create", map[string]any{"username": "alice"})).body["room"].(map[string]any)
	rid := dm["_id"].(string)
	if dm["t"] != "d" || dm["rid"] != rid {
		t.Fatalf("dm: %v", dm)
	}
	if again := alice.ok(alice.post("im.create", map[string]any{"username": "bot"})); again.body["room"].(map[string]any)["_id"] != rid {
		t.Fatal("the same two users got a second DM")
	}
	root := alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": rid, "msg": "report"}}))
	rootID := root.body["message"].(map[string]any)["_id"].(string)
	bot.ok(bot.post("chat.postMessage", map[string]any{"roomId": rid, "text": "thread answer", "tmid": rootID}))
	bot.ok(bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": rid, "msg": "later"}}))

	got := texts(messagesOf(t, bot.ok(bot.get("im.history", url.Values{"roomId": {rid}}))))
	if strings.Join(got, "|") != "later|report" {
		t.Fatalf("im.history hides thread replies, newest first: %v", got)
	}
	all := messagesOf(t, bot.ok(bot.get("im.history", url.Values{"roomId": {rid}, "showThreadMessages": {"true"}})))
	if strings.Join(texts(all), "|") != "later|thread answer|report" || all[1]["tmid"] != rootID || all[2]["tcount"] != float64(1) {
		t.Fatalf("with showThreadMessages=true: %v", all)
	}
	if a := eve.get("im.history", url.Values{"roomId": {rid}}); a.status != 403 || a.str("error") != "unauthorized" {
		t.Fatalf("someone else's DM: %d %v", a.status, a.body)
	}
	// executeSendMessage's own checks.
	if a := bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"msg": "where?"}}); a.status != 400 ||
		a.str("error") != "The 'rid' property on the message object is missing." {
		t.Fatalf("no rid: %d %v", a.status, a.body)
	}
	if a := bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": rid, "msg": "x", "tshow": true}}); a.str("errorType") != "invalid-params" {
		t.Fatalf("tshow without tmid: %v", a.body)
	}
	replyID := all[1]["_id"].(string)
	nested := bot.ok(bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": rid, "msg": "nested", "tmid": replyID}}))
	if nested.body["message"].(map[string]any)["tmid"] != rootID {
		t.Fatalf("a reply to a reply belongs to the thread's root: %v", nested.body)
	}
	ims := bot.ok(bot.get("im.list", nil))
	if ims.body["total"] != float64(1) {
		t.Fatalf("im.list: %v", ims.body)
	}
	noInvalid(t, s)
}

func TestPublicChannelsThreadsAndJoining(t *testing.T) {
	s := Start(t, Options{})
	admin := newUser(t, s, "admin")
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	cid := s.CreateChannel("general", admin.id, bot.id)
	q := alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": cid, "msg": "how do I report?"}}))
	qid := q.body["message"].(map[string]any)["_id"].(string)
	bot.ok(bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": cid, "msg": "see DM", "tmid": qid}}))
	h := messagesOf(t, bot.ok(bot.get("channels.history", url.Values{"roomId": {cid}})))
	if strings.Join(texts(h), "|") != "see DM|how do I report?|alice" || h[2]["t"] != "uj" {
		t.Fatalf("channel history shows thread replies and alice's join: %v", h)
	}
	h = messagesOf(t, bot.ok(bot.get("channels.history", url.Values{"roomId": {cid}, "showThreadMessages": {"false"}})))
	if len(h) != 2 {
		t.Fatalf("showThreadMessages=false: %v", texts(h))
	}
	info := bot.ok(bot.get("channels.info", url.Values{"roomName": {"general"}}))
	if info.body["channel"].(map[string]any)["_id"] != cid {
		t.Fatalf("channels.info: %v", info.body)
	}
	noInvalid(t, s)
}

func TestForcedEncryptionMakesPrivateGroupsRefusePlainMessages(t *testing.T) {
	s := Start(t, Options{ForceEncryptedPrivateGroups: true})
	bot := newUser(t, s, "bot")
	newUser(t, s, "alice")
	g := bot.ok(bot.post("groups.create", map[string]any{"name": "case-room", "members": []string{"alice"}}))
	group := g.body["group"].(map[string]any)
	if group["encrypted"] != true {
		t.Fatalf("group: %v", group)
	}
	a := bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": group["_id"], "msg": "welcome"}})
	if a.status != 400 || a.str("errorType") != "error-not-allowed" || !strings.Contains(a.str("error"), "un-encrypted") {
		t.Fatalf("got %d %v", a.status, a.body)
	}
	// DMs are not private groups: they stay usable.
	rid := bot.ok(bot.post("im.create", map[string]any{"username": "alice"})).body["room"].(map[string]any)["_id"]
	bot.ok(bot.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": rid, "msg": "use the advisory"}}))
	noInvalid(t, s)
}

func TestSubscriptionsGetUpdatedSinceNamesTheRoomsWithNews(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	s := Start(t, Options{Clock: clock})
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	newUser(t, s, "bob")
	dmA := bot.ok(bot.post("im.create", map[string]any{"username": "alice"})).body["room"].(map[string]any)["_id"].(string)
	bot.ok(bot.post("im.create", map[string]any{"username": "bob"}))
	g := bot.ok(bot.post("groups.create", map[string]any{"name": "g", "members": []string{"alice"}})).body["group"].(map[string]any)["_id"].(string)

	all := bot.ok(bot.get("subscriptions.get", nil))
	if n := len(all.body["update"].([]any)); n != 3 {
		t.Fatalf("all subscriptions: %d", n)
	}
	clock.Advance(time.Minute)
	since := restTime(clock.Now())
	clock.Advance(time.Minute)
	alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": dmA, "msg": "while you were away"}}))
	bot.ok(bot.post("groups.kick", map[string]any{"roomId": g, "username": "alice"}))

	news := bot.ok(bot.get("subscriptions.get", url.Values{"updatedSince": {since}}))
	update := news.body["update"].([]any)
	if len(update) != 1 || update[0].(map[string]any)["rid"] != dmA || update[0].(map[string]any)["name"] != "alice" {
		t.Fatalf("updated since: %v", update)
	}
	gone := alice.ok(alice.get("subscriptions.get", url.Values{"updatedSince": {since}}))
	if len(gone.body["remove"].([]any)) != 1 {
		t.Fatalf("alice's removed subscription: %v", gone.body)
	}
	u := bot.ok(bot.get("users.info", url.Values{"username": {"alice"}}))
	if u.body["user"].(map[string]any)["_id"] != alice.id {
		t.Fatalf("users.info: %v", u.body)
	}
	noInvalid(t, s)
}

func TestUnknownRoutesAreRecordedAsInvalid(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	if a := bot.post("chat.delete", map[string]any{"msgId": "x", "roomId": "y"}); a.status != 404 {
		t.Fatalf("got %d", a.status)
	}
	if inv := s.Invalid(); len(inv) != 1 || !strings.HasPrefix(inv[0], "POST chat.delete") {
		t.Fatalf("Invalid(): %v", inv)
	}
}

func TestHistorySinceAMessagesTimestampDoesNotRepeatIt(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	s := Start(t, Options{Clock: clock})
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	rid := bot.ok(bot.post("im.create", map[string]any{"username": "alice"})).body["room"].(map[string]any)["_id"].(string)
	var ts []string
	for _, text := range []string{"one", "two", "three"} {
		clock.Advance(1500 * time.Microsecond) // timestamps are kept in milliseconds, as MongoDB keeps them
		m := alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": rid, "msg": text}}))
		ts = append(ts, m.body["message"].(map[string]any)["ts"].(string))
	}
	// A fake clock that stands still still sees every message.
	if got := texts(messagesOf(t, bot.ok(bot.get("im.history", url.Values{"roomId": {rid}})))); strings.Join(got, "|") != "three|two|one" {
		t.Fatalf("history: %v", got)
	}
	after := texts(messagesOf(t, bot.ok(bot.get("im.history", url.Values{"roomId": {rid}, "oldest": {ts[0]}}))))
	if strings.Join(after, "|") != "three|two" {
		t.Fatalf("after %s: %v", ts[0], after)
	}
	incl := texts(messagesOf(t, bot.ok(bot.get("im.history", url.Values{"roomId": {rid}, "oldest": {ts[0]}, "latest": {ts[1]}, "inclusive": {"true"}}))))
	if strings.Join(incl, "|") != "two|one" {
		t.Fatalf("inclusive %s..%s: %v", ts[0], ts[1], incl)
	}
	page := texts(messagesOf(t, bot.ok(bot.get("im.history", url.Values{"roomId": {rid}, "count": {"1"}, "offset": {"1"}}))))
	if strings.Join(page, "|") != "two" {
		t.Fatalf("count 1 offset 1: %v", page)
	}
	noInvalid(t, s)
}

func TestChannelsListShowsEveryPublicChannelSortedAndPagedToWhoMaySeeThem(t *testing.T) {
	clock := clockwork.NewFakeClock()
	s := Start(t, Options{Clock: clock})
	admin := newUser(t, s, "admin")
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	quiet := s.CreateChannel("a-quiet", admin.id) // no message after its creation
	clock.Advance(time.Second)
	busy := s.CreateChannel("b-busy", admin.id, alice.id)
	clock.Advance(time.Second)
	mine := s.CreateChannel("c-mine", admin.id, bot.id)
	clock.Advance(time.Second)
	alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": busy, "msg": "news"}}))
	other := s.CreateChannel("d-other", admin.id) // as new as busy's message: by name among equals
	ids := func(a answer) []string {
		var out []string
		for _, c := range a.body["channels"].([]any) {
			out = append(out, c.(map[string]any)["_id"].(string))
		}
		return out
	}
	// By name by default, every public channel to a user with view-c-room
	// (the bot role has it), member or not.
	a := bot.ok(bot.get("channels.list", nil))
	if got := ids(a); strings.Join(got, ",") != strings.Join([]string{quiet, busy, mine, other}, ",") || a.body["total"] != 4.0 {
		t.Fatalf("channels.list: %v (total %v)", got, a.body["total"])
	}
	// Newest change first, paged.
	a = bot.ok(bot.get("channels.list", url.Values{"sort": {`{"_updatedAt":-1}`}, "count": {"2"}}))
	if got := ids(a); strings.Join(got, ",") != busy+","+other || a.body["count"] != 2.0 || a.body["total"] != 4.0 {
		t.Fatalf("sorted by _updatedAt, first page: %v", a.body)
	}
	a = bot.ok(bot.get("channels.list", url.Values{"sort": {`{"_updatedAt":-1}`}, "count": {"2"}, "offset": {"2"}}))
	if got := ids(a); strings.Join(got, ",") != mine+","+quiet {
		t.Fatalf("sorted by _updatedAt, second page: %v", got)
	}
	ch := bot.ok(bot.get("channels.list", url.Values{"_id": {busy}})).body["channels"].([]any)[0].(map[string]any)
	if ch["lm"] == nil || ch["_updatedAt"] == nil || ch["name"] != "b-busy" || ch["t"] != "c" {
		t.Fatalf("a channel with a message: %v", ch)
	}
	// lm descending: channels without a message last, as in MongoDB.
	a = bot.ok(bot.get("channels.list", url.Values{"sort": {`{"lm":-1}`}}))
	if got := ids(a); got[0] != busy {
		t.Fatalf("sorted by lm: %v", got)
	}
	// parseJsonQuery refuses a sort that is not 1 or -1.
	if a := bot.get("channels.list", url.Values{"sort": {`{"name":2}`}}); a.status != 400 || a.str("errorType") != "error-invalid-sort" {
		t.Fatalf("a bad sort: %d %v", a.status, a.body)
	}
	noInvalid(t, s)
	// isChannelsListProps allows no other parameter.
	if a := bot.get("channels.list", url.Values{"roomId": {busy}}); a.status != 400 || len(s.Invalid()) != 1 {
		t.Fatalf("an unknown parameter: %d %v %v", a.status, a.body, s.Invalid())
	}
	// Without view-c-room and view-joined-room: 403.
	guest := newUser(t, s, "guest")
	s.SetRoles(guest.id, "guest")
	if a := guest.get("channels.list", nil); a.status != 403 {
		t.Fatalf("without the permissions: %d %v", a.status, a.body)
	}
}
