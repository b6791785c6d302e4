package rctest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ddpClient is a bare DDP client for the stand-in's own tests.
type ddpClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialDDP(t *testing.T, s *Server) *ddpClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(s.URL(), "http://", "ws://", 1)+"/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &ddpClient{t: t, ws: ws}
}

func (c *ddpClient) send(v map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// next reads frames until one has the given msg (others are skipped).
func (c *ddpClient) next(msg string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", msg, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatal(err)
		}
		if m["msg"] == msg {
			return m
		}
	}
}

func (c *ddpClient) connect() {
	c.t.Helper()
	c.send(map[string]any{"msg": "connect", "version": "1", "support": []string{"1", "pre2", "pre1"}})
	if m := c.next("connected"); m["session"] == "" {
		c.t.Fatalf("connected: %v", m)
	}
}

func (c *ddpClient) login(token string) map[string]any {
	c.t.Helper()
	c.send(map[string]any{"msg": "method", "method": "login", "id": "login-1", "params": []any{map[string]any{"resume": token}}})
	return c.next("result")
}

func (c *ddpClient) sub(id string, params ...any) map[string]any {
	c.t.Helper()
	c.send(map[string]any{"msg": "sub", "id": id, "name": "stream-room-messages", "params": params})
	for {
		m := c.next2("ready", "nosub")
		if m["msg"] == "nosub" && m["id"] == id {
			return m
		}
		if m["msg"] == "ready" {
			return m
		}
	}
}

func (c *ddpClient) next2(a, b string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, raw, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %q or %q: %v", a, b, err)
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		if m["msg"] == a || m["msg"] == b {
			return m
		}
	}
}

func TestRealtimeLoginSubscribeAndReceiveMyMessages(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	newUser(t, s, "carol")
	admin := newUser(t, s, "admin")

	c := dialDDP(t, s)
	c.connect()
	c.send(map[string]any{"msg": "ping", "id": "p1"})
	if m := c.next("pong"); m["id"] != "p1" {
		t.Fatalf("pong: %v", m)
	}
	// Subscribing before the login is answered is allowed (ddp-client does
	// it on a reconnect); nothing arrives until the login.
	if m := c.sub("s0", "__my_messages__", false); m["msg"] != "ready" {
		t.Fatalf("sub before login: %v", m)
	}
	c.send(map[string]any{"msg": "unsub", "id": "s0"})
	c.next("nosub")
	if bad := c.login("not-a-token"); bad["error"].(map[string]any)["error"] != float64(403) {
		t.Fatalf("a wrong token logs in: %v", bad)
	}
	res := c.login(bot.token)
	result := res["result"].(map[string]any)
	if result["id"] != bot.id || result["token"] != bot.token || result["tokenExpires"].(map[string]any)["$date"] == nil {
		t.Fatalf("login result: %v", res)
	}
	if m := c.sub("s1", "__my_messages__", false); m["msg"] != "ready" {
		t.Fatalf("sub (old params): %v", m)
	}

	// A DM from alice reaches the bot with the room's details.
	rid := alice.ok(alice.post("im.create", map[string]any{"username": "bot"})).body["room"].(map[string]any)["_id"].(string)
	alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"_id": "m1", "rid": rid, "msg": "I found a bug"}}))
	ch := c.next("changed")
	fields := ch["fields"].(map[string]any)
	args := fields["args"].([]any)
	msg, extra := args[0].(map[string]any), args[1].(map[string]any)
	if ch["collection"] != "stream-room-messages" || fields["eventName"] != "__my_messages__" ||
		msg["_id"] != "m1" || msg["msg"] != "I found a bug" || msg["u"].(map[string]any)["username"] != "alice" ||
		msg["ts"].(map[string]any)["$date"] == nil ||
		extra["roomParticipant"] != true || extra["roomType"] != "d" {
		t.Fatalf("changed: %v", ch)
	}

	// A group the bot is not in stays silent; a public channel it is not
	// in arrives with roomParticipant false.
	g := alice.ok(alice.post("groups.create", map[string]any{"name": "private", "members": []string{"carol"}})).body["group"].(map[string]any)["_id"].(string)
	alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"rid": g, "msg": "not for the bot"}}))
	cid := s.CreateChannel("general", admin.id, alice.id)
	alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"_id": "m3", "rid": cid, "msg": "public"}}))
	ch = c.next("changed")
	args = ch["fields"].(map[string]any)["args"].([]any)
	if args[0].(map[string]any)["_id"] != "m3" || args[1].(map[string]any)["roomParticipant"] != false ||
		args[1].(map[string]any)["roomType"] != "c" || args[1].(map[string]any)["roomName"] != "general" {
		t.Fatalf("the channel message (and not the group's): %v", ch)
	}

	// Newer clients' params, and a subscription to one room's ID.
	c2 := dialDDP(t, s)
	c2.connect()
	c2.login(bot.token)
	if m := c2.sub("s2", "__my_messages__", map[string]any{"useCollection": false, "args": []any{nil}}); m["msg"] != "ready" {
		t.Fatalf("sub (new params): %v", m)
	}
	if m := c2.sub("s3", rid, false); m["msg"] != "ready" {
		t.Fatalf("sub to a room: %v", m)
	}
	if m := c2.sub("s4", g, false); m["msg"] != "nosub" || m["error"] == nil {
		t.Fatalf("sub to a group one is not in: %v", m)
	}
	alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"_id": "m4", "rid": rid, "msg": "again"}}))
	got := map[string]int{}
	for i := 0; i < 2; i++ {
		f := c2.next("changed")["fields"].(map[string]any)
		got[f["eventName"].(string)] = len(f["args"].([]any))
	}
	if got["__my_messages__"] != 2 || got[rid] != 1 {
		t.Fatalf("events: %v", got)
	}
	// What clients sent over the realtime API is on the record too.
	subs, logins := 0, 0
	for _, r := range s.Requests() {
		if r.Method != "DDP" {
			continue
		}
		if r.Route == "sub stream-room-messages" && r.UserID == bot.id {
			subs++
		}
		if r.Route == "method login" && strings.Contains(string(r.Body), bot.token) {
			logins++
		}
	}
	if subs != 4 || logins != 2 {
		t.Fatalf("recorded %d subscriptions and %d logins of the bot, want 4 and 2", subs, logins)
	}
}

func TestRealtimeFramesTheServerWouldNotServeAreRecordedAsInvalid(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	c := dialDDP(t, s)
	c.send(map[string]any{"msg": "sub", "id": "early", "name": "stream-room-messages", "params": []any{"__my_messages__", false}})
	if m := c.next("error"); m["reason"] != "Must connect first" {
		t.Fatalf("sub before connect: %v", m)
	}
	c.connect()
	c.login(bot.token)
	c.send(map[string]any{"msg": "method", "id": "m1", "method": "sendMessage", "params": []any{map[string]any{"rid": "x", "msg": "y"}}})
	if m := c.next("result"); m["error"].(map[string]any)["error"] != float64(404) {
		t.Fatalf("unknown method: %v", m)
	}
	c.send(map[string]any{"msg": "sub", "id": "s1", "name": "stream-notify-user", "params": []any{bot.id + "/message", false}})
	if m := c.next("nosub"); m["id"] != "s1" || m["error"] == nil {
		t.Fatalf("unknown stream: %v", m)
	}
	if inv := s.Invalid(); len(inv) != 3 {
		t.Fatalf("Invalid(): %v", inv)
	}
}

func TestDroppedConnectionsComeBack(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	c := dialDDP(t, s)
	c.connect()
	c.login(bot.token)
	c.sub("s1", "__my_messages__", false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitSubscribed(ctx, bot.id, 1); err != nil {
		t.Fatal(err)
	}
	if n := s.DropConnections(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	if _, _, err := c.ws.Read(ctx); err == nil {
		t.Fatal("the connection still reads")
	}
	if s.Connections() != 0 {
		t.Fatalf("%d connections after the drop", s.Connections())
	}
	c = dialDDP(t, s)
	c.connect()
	c.login(bot.token)
	c.sub("s1", "__my_messages__", false)
	if err := s.WaitSubscribed(ctx, bot.id, 1); err != nil {
		t.Fatal(err)
	}
}

func TestAThreadReplyAlsoStreamsItsUpdatedParent(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	alice := newUser(t, s, "alice")
	rid := bot.ok(bot.post("im.create", map[string]any{"username": "alice"})).body["room"].(map[string]any)["_id"].(string)
	root := alice.ok(alice.post("chat.sendMessage", map[string]any{"message": map[string]any{"_id": "root", "rid": rid, "msg": "q"}}))
	_ = root
	c := dialDDP(t, s)
	c.connect()
	c.login(bot.token)
	c.sub("s1", "__my_messages__", false)
	if _, err := s.SendAs(bot.id, rid, "a", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendAs("nobody", rid, "a", ""); err == nil {
		t.Fatal("SendAs as an unknown user")
	}
	first := c.next("changed")["fields"].(map[string]any)["args"].([]any)[0].(map[string]any)
	second := c.next("changed")["fields"].(map[string]any)["args"].([]any)[0].(map[string]any)
	if first["tmid"] != "root" || first["msg"] != "a" || second["_id"] != "root" || second["tcount"] != float64(1) {
		t.Fatalf("reply %v, then parent %v", first, second)
	}
}

func TestTheHeartbeatPingsAndASilencedConnectionGoesQuiet(t *testing.T) {
	s := Start(t, Options{})
	bot := newUser(t, s, "bot")
	c := dialDDP(t, s)
	c.connect()
	c.login(bot.token)
	c.sub("s1", "__my_messages__", false)
	if n := s.PingConnections(); n != 1 {
		t.Fatalf("pinged %d", n)
	}
	if m := c.next("ping"); m["id"] != nil {
		t.Fatalf("Meteor's heartbeat ping has no id: %v", m)
	}
	c.send(map[string]any{"msg": "pong"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitRequests(ctx, "pong", 1); err != nil {
		t.Fatal(err)
	}

	// Silencing closes nothing (rocketchat's client test proves the
	// silence: its pings go unanswered and it reconnects).
	if n := s.SilenceConnections(); n != 1 {
		t.Fatalf("silenced %d", n)
	}
	if s.Connections() != 1 {
		t.Fatalf("%d connections after silencing", s.Connections())
	}
}
