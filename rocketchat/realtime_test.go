package rocketchat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// collector records what a Realtime hands its caller.
type collector struct {
	mu       sync.Mutex
	inHook   bool
	overlap  bool
	connects int
	msgs     chan IncomingMessage
	hooks    chan int
}

func newCollector() *collector {
	return &collector{msgs: make(chan IncomingMessage, 100), hooks: make(chan int, 10)}
}

func (col *collector) onMessage(_ context.Context, m IncomingMessage) {
	col.mu.Lock()
	if col.inHook {
		col.overlap = true
	}
	col.mu.Unlock()
	col.msgs <- m
}

func (col *collector) next(t *testing.T, ctx context.Context) IncomingMessage {
	t.Helper()
	select {
	case m := <-col.msgs:
		return m
	case <-ctx.Done():
		t.Fatal("no message delivered")
		return IncomingMessage{}
	}
}

func (col *collector) waitHook(t *testing.T, ctx context.Context) int {
	t.Helper()
	select {
	case n := <-col.hooks:
		return n
	case <-ctx.Done():
		t.Fatal("the catch-up hook was not called")
		return 0
	}
}

func runRealtime(t *testing.T, ctx context.Context, rt *Realtime) <-chan error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	fin := make(chan struct{})
	go func() {
		defer close(fin)
		done <- rt.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-fin
	})
	return done
}

func TestRealtimeDeliversMessagesAndCatchesUpAfterADrop(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	aliceID, _ := e.s.AddUser("alice")
	dm, err := e.c.CreateDM(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	var caughtUp []string
	var since time.Time
	rt := e.c.Realtime(RealtimeOptions{
		OnMessage:  col.onMessage,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnConnect: func(ctx context.Context) error {
			col.mu.Lock()
			col.inHook = true
			col.connects++
			n := col.connects
			col.mu.Unlock()
			defer func() {
				col.mu.Lock()
				col.inHook = false
				col.mu.Unlock()
				col.hooks <- n
			}()
			// The caller's catch-up: what the DM holds since the last message seen.
			col.mu.Lock()
			from := since
			col.mu.Unlock()
			hist, err := e.c.History(ctx, dm.ID, DirectMessage, from)
			if err != nil {
				return err
			}
			for _, m := range hist {
				caughtUp = append(caughtUp, m.Text)
			}
			if n == 1 {
				// Said while the hook runs: held until it returns.
				if _, err := e.s.SendAs(aliceID, dm.ID, "during the first catch-up", ""); err != nil {
					return err
				}
				// A client that delivered it now would run OnMessage while
				// this hook runs (caught in onMessage): give it the time to.
				// Correct code passes however long this is.
				t := time.NewTimer(200 * time.Millisecond)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
				}
			}
			return nil
		},
	})
	runRealtime(t, ctx, rt)
	if n := col.waitHook(t, ctx); n != 1 {
		t.Fatalf("hook %d", n)
	}
	m := col.next(t, ctx)
	if m.Text != "during the first catch-up" || m.User.ID != aliceID || m.RoomID != dm.ID || m.RoomType != DirectMessage || !m.RoomParticipant || m.TS.IsZero() {
		t.Fatalf("delivered %+v", m)
	}
	col.mu.Lock()
	if col.overlap {
		t.Fatal("OnMessage ran while OnConnect did")
	}
	since = m.TS
	col.mu.Unlock()

	// The server drops the socket; alice speaks while the bot may be away.
	if n := e.s.DropConnections(); n != 1 {
		t.Fatalf("dropped %d connections", n)
	}
	if _, err := e.s.SendAs(aliceID, dm.ID, "while you were away", ""); err != nil {
		t.Fatal(err)
	}
	if n := col.waitHook(t, ctx); n != 2 {
		t.Fatalf("hook %d", n)
	}
	if err := e.s.WaitSubscribed(ctx, e.botID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(aliceID, dm.ID, "after the reconnect", ""); err != nil {
		t.Fatal(err)
	}
	// The message said during the outage came by the catch-up or (if the
	// client was back before it) by the stream; the next one by the stream.
	var streamed []string
	for {
		m := col.next(t, ctx)
		streamed = append(streamed, m.Text)
		if m.Text == "after the reconnect" {
			break
		}
	}
	all := strings.Join(append(caughtUp, streamed...), "|")
	if !strings.Contains(all, "while you were away") {
		t.Fatalf("the message said during the outage is lost: caught up %q, streamed %q", caughtUp, streamed)
	}
	if e.s.Connections() != 1 {
		t.Fatalf("%d connections, want 1", e.s.Connections())
	}
	// Every frame the client sent was one the server serves.
	var logins int
	for _, r := range e.s.Requests() {
		if r.Method == "DDP" && r.Route == "method login" {
			logins++
		}
	}
	if logins != 2 {
		t.Fatalf("%d logins, want 2", logins)
	}
}

func TestRealtimeDeliversChannelAndGroupMessagesWithTheirRoom(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	aliceID, _ := e.s.AddUser("alice")
	g, err := e.c.CreatePrivateGroup(ctx, "team", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	chanID := e.s.CreateChannel("general", aliceID)
	col := newCollector()
	rt := e.c.Realtime(RealtimeOptions{OnMessage: col.onMessage, OnConnect: func(context.Context) error { col.hooks <- 1; return nil }})
	runRealtime(t, ctx, rt)
	col.waitHook(t, ctx)
	if _, err := e.s.SendAs(aliceID, g.ID, "!sec status", ""); err != nil {
		t.Fatal(err)
	}
	m := col.next(t, ctx)
	if m.RoomType != PrivateGroup || m.RoomName != "team" || !m.RoomParticipant || m.Text != "!sec status" {
		t.Fatalf("group message %+v", m)
	}
	// A public channel the bot is not in still reaches it.
	if _, err := e.s.SendAs(aliceID, chanID, "how do I report a vulnerability?", ""); err != nil {
		t.Fatal(err)
	}
	m = col.next(t, ctx)
	if m.RoomType != Channel || m.RoomName != "general" || m.RoomParticipant || m.RoomID != chanID {
		t.Fatalf("channel message %+v", m)
	}
	// The bot's own message comes back on the stream too, as the caller's
	// handled IDs expect; a system message is marked as one.
	if _, err := e.c.SendMessage(ctx, Message{ID: "outbox-3-0", RoomID: chanID, Text: "answered in a thread", ThreadID: m.ID}); err != nil {
		t.Fatal(err)
	}
	var sawOwn, sawSystem bool
	for !sawOwn {
		m := col.next(t, ctx)
		switch {
		case m.ID == "outbox-3-0":
			sawOwn = m.ThreadID != "" && m.User.ID == e.botID
		case m.System():
			sawSystem = true
		}
	}
	if !sawSystem {
		t.Fatal("posting into the channel joined it, but no system message came")
	}
}

func TestRealtimeStopsOnARefusedLoginWithoutTheToken(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	bad, err := New(e.s.URL(), e.botID, "not-"+e.token, Options{Log: e.options.Log})
	if err != nil {
		t.Fatal(err)
	}
	rt := bad.Realtime(RealtimeOptions{OnMessage: func(context.Context, IncomingMessage) {}})
	err = rt.Run(ctx)
	if !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("got %v, want ErrLoginRefused", err)
	}
	if strings.Contains(err.Error(), e.token) || strings.Contains(e.logs.String(), "not-"+e.token) {
		t.Fatalf("the token is in the error or the log: %v", err)
	}
}

func TestRealtimeRetriesAFailedCatchUp(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	col := newCollector()
	calls := 0
	rt := e.c.Realtime(RealtimeOptions{
		OnMessage:  col.onMessage,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnConnect: func(context.Context) error {
			calls++
			col.hooks <- calls
			if calls == 1 {
				return errors.New("the database is away")
			}
			return nil
		},
	})
	runRealtime(t, ctx, rt)
	col.waitHook(t, ctx)
	if n := col.waitHook(t, ctx); n != 2 {
		t.Fatalf("hook %d", n)
	}
	if err := e.s.WaitSubscribed(ctx, e.botID, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "the database is away") {
		t.Fatalf("the failed catch-up is not in the log:\n%s", e.logs.String())
	}
}

func TestRealtimeAnswersTheServersPings(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	col := newCollector()
	rt := e.c.Realtime(RealtimeOptions{OnMessage: col.onMessage, OnConnect: func(context.Context) error { col.hooks <- 1; return nil }})
	runRealtime(t, ctx, rt)
	col.waitHook(t, ctx)
	if n := e.s.PingConnections(); n != 1 {
		t.Fatalf("%d connections", n)
	}
	if err := e.s.WaitRequests(ctx, "pong", 1); err != nil {
		t.Fatal(err)
	}
}

func TestRealtimeDropsASilentConnectionAndComesBack(t *testing.T) {
	e := newEnv(t, rctest.Options{}, Options{})
	ctx := ctxT(t)
	aliceID, _ := e.s.AddUser("alice")
	dm, err := e.c.CreateDM(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	n := 0
	rt := e.c.Realtime(RealtimeOptions{
		OnMessage:    col.onMessage,
		OnConnect:    func(context.Context) error { n++; col.hooks <- n; return nil },
		PingInterval: 20 * time.Millisecond,
		MinBackoff:   10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	})
	runRealtime(t, ctx, rt)
	col.waitHook(t, ctx)
	// The path dies without a close: the client's pings go unanswered.
	if n := e.s.SilenceConnections(); n != 1 {
		t.Fatalf("%d connections", n)
	}
	if got := col.waitHook(t, ctx); got != 2 {
		t.Fatalf("hook %d", got)
	}
	if err := e.s.WaitSubscribed(ctx, e.botID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(aliceID, dm.ID, "still there?", ""); err != nil {
		t.Fatal(err)
	}
	if m := col.next(t, ctx); m.Text != "still there?" {
		t.Fatalf("delivered %+v", m)
	}
	if !strings.Contains(e.logs.String(), "no answer to pings") {
		t.Fatalf("the reason is not in the log:\n%s", e.logs.String())
	}
}

// fakeDDP is a DDP server that sends a stream message before its ready,
// which a real server's publication may do: the stand-in never does.
// The first throttled logins are answered with the DDP rate limiter's error.
func fakeDDP(t *testing.T, userID string, throttled int) *httptest.Server {
	var mu sync.Mutex
	logins := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		write := func(v map[string]any) {
			b, _ := json.Marshal(v)
			_ = ws.Write(ctx, websocket.MessageText, b)
		}
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var f map[string]any
			_ = json.Unmarshal(b, &f)
			switch f["msg"] {
			case "connect":
				write(map[string]any{"msg": "connected", "session": "s"})
			case "method":
				mu.Lock()
				logins++
				n := logins
				mu.Unlock()
				if n <= throttled {
					write(map[string]any{"msg": "result", "id": f["id"], "error": map[string]any{"isClientSafe": true, "error": "too-many-requests",
						"reason": "Error, too many requests. Please slow down. You must wait 1 seconds before trying again.", "errorType": "Meteor.Error"}})
					continue
				}
				write(map[string]any{"msg": "result", "id": f["id"], "result": map[string]any{"id": userID, "token": "x"}})
			case "sub":
				write(map[string]any{"msg": "changed", "collection": "stream-room-messages", "id": "id", "fields": map[string]any{
					"eventName": "__my_messages__",
					"args": []any{
						map[string]any{"_id": "early", "rid": "R", "msg": "before ready", "ts": map[string]any{"$date": 1764583200000},
							"u": map[string]any{"_id": "A", "username": "alice"}},
						map[string]any{"roomParticipant": true, "roomType": "d"},
					},
				}})
				write(map[string]any{"msg": "ready", "subs": []any{f["id"]}})
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAMessageStreamedBeforeTheSubscriptionIsReadyIsDelivered(t *testing.T) {
	srv := fakeDDP(t, "bot", 0)
	c, err := New(srv.URL, "bot", "tok", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	col := newCollector()
	runRealtime(t, ctx, c.Realtime(RealtimeOptions{OnMessage: col.onMessage}))
	m := col.next(t, ctx)
	if m.ID != "early" || m.Text != "before ready" || m.RoomType != DirectMessage || m.User.Username != "alice" ||
		!m.TS.Equal(time.UnixMilli(1764583200000)) {
		t.Fatalf("delivered %+v", m)
	}
}

func TestAThrottledLoginIsRetriedNotTakenForARefusal(t *testing.T) {
	srv := fakeDDP(t, "bot", 2)
	c, err := New(srv.URL, "bot", "tok", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	col := newCollector()
	done := runRealtime(t, ctx, c.Realtime(RealtimeOptions{OnMessage: col.onMessage, MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}))
	select {
	case m := <-col.msgs:
		if m.ID != "early" {
			t.Fatalf("delivered %+v", m)
		}
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-ctx.Done():
		t.Fatal("no message delivered")
	}
}
