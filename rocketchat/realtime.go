package rocketchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/enarx/secbot/internal/backoff"
)

// IncomingMessage is a message the realtime API delivered: what the server
// stores, and what it says of the room to this user.
type IncomingMessage struct {
	ChatMessage
	RoomType RoomType
	RoomName string // "" for a DM
	// RoomParticipant is false for a public channel the bot is not in: the
	// server streams those to every user who may read the channel.
	RoomParticipant bool
}

// RealtimeOptions configure a Realtime connection.
type RealtimeOptions struct {
	// OnMessage gets every message of the bot's rooms (the stream
	// stream-room-messages on __my_messages__), one at a time in arrival
	// order: new messages, and messages again when they change (an edit, a
	// reaction, a thread root when its thread gets a reply). Handle each
	// ID once. Required.
	OnMessage func(ctx context.Context, m IncomingMessage)
	// OnConnect runs after every connect and reconnect, once the
	// subscription is live: the caller reads over REST what was said while
	// it was away (Subscriptions, History). Messages the stream delivers
	// meanwhile are held and handed to OnMessage after it returns, so the
	// two never run at once. An error drops the connection, which is then
	// made again (and OnConnect run again) after a backoff.
	OnConnect func(ctx context.Context) error
	// OnDrop, if set, is told each time a connection ends (or a dial or
	// handshake fails), before the wait for the next.
	OnDrop func(err error)
	// PingInterval is how often the client pings; a connection on which
	// nothing arrives for two intervals is dropped. 25 s by default.
	PingInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a reconnect
	// (exponential, jittered): 1 s and 1 min by default.
	MinBackoff, MaxBackoff time.Duration
}

// Realtime is the realtime API connection of a Client: DDP over the
// server's /websocket, logged in with the client's token (resume), subscribed
// to the bot's messages.
type Realtime struct {
	c    *Client
	opts RealtimeOptions
}

// ErrLoginRefused is a realtime login the server refused: the token is
// not (or no longer) valid. Run returns it rather than retrying forever.
var ErrLoginRefused = errors.New("rocketchat: realtime login refused")

// Realtime returns the client's realtime connection; Run makes it.
func (c *Client) Realtime(opts RealtimeOptions) *Realtime {
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(time.Minute, opts.MinBackoff)
	}
	return &Realtime{c: c, opts: opts}
}

// Run connects, and reconnects after every drop, until ctx ends (it then
// returns ctx's error) or the server refuses the login (ErrLoginRefused).
// One Run at a time per Realtime. Messages read while OnMessage or
// OnConnect is busy wait in memory, so a slow handler delays but loses
// nothing; a message the stream never delivered (the connection was down)
// is the catch-up's to find.
func (r *Realtime) Run(ctx context.Context) error {
	if r.opts.OnMessage == nil {
		return errors.New("rocketchat: realtime without OnMessage")
	}
	failures := 0
	for {
		live, err := r.session(ctx)
		if r.opts.OnDrop != nil {
			r.opts.OnDrop(err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrLoginRefused) {
			return err
		}
		if live {
			failures = 0
		}
		failures++
		wait := backoff.Jitter(backoff.Exponential(failures, r.opts.MinBackoff, r.opts.MaxBackoff))
		r.c.log.Warn().Err(err).Dur("retry_in", wait).Msg("Rocket.Chat realtime connection lost; reconnecting")
		if err := r.c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// frame is one DDP message from the server, the fields the client reads.
type frame struct {
	Msg        string          `json:"msg"`
	ID         string          `json:"id"`
	Subs       []string        `json:"subs"`
	Collection string          `json:"collection"`
	Fields     json.RawMessage `json:"fields"`
	Result     json.RawMessage `json:"result"`
	Error      *ddpError       `json:"error"`
	Reason     string          `json:"reason"`
}

type ddpError struct {
	Error   any    `json:"error"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (e *ddpError) String() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("%v %s", e.Error, e.Reason)
}

// inbox holds the frames the reader has read and the session not yet
// taken: unbounded, so that a long OnConnect never stops the reader (which
// answers the server's pings).
type inbox struct {
	mu     sync.Mutex
	frames []frame
	err    error
	signal chan struct{}
}

func (q *inbox) push(f frame) {
	q.mu.Lock()
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// unshift puts frames back at the front, in order.
func (q *inbox) unshift(fs []frame) {
	if len(fs) == 0 {
		return
	}
	q.mu.Lock()
	q.frames = append(append([]frame(nil), fs...), q.frames...)
	q.mu.Unlock()
}

func (q *inbox) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *inbox) next(ctx context.Context) (frame, error) {
	for {
		q.mu.Lock()
		if len(q.frames) > 0 {
			f := q.frames[0]
			q.frames = q.frames[1:]
			q.mu.Unlock()
			return f, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return frame{}, err
		}
		select {
		case <-q.signal:
		case <-ctx.Done():
			return frame{}, context.Cause(ctx)
		}
	}
}

// conn is one websocket connection.
type conn struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	lastSeen atomic.Int64 // unix nanoseconds on the client's clock
}

func (c *conn) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

func (r *Realtime) websocketURL() string {
	u := r.c.base
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + "/websocket"
}

var errSilent = errors.New("no answer to pings")

// session is one connection, from dial to drop. live says whether it got
// as far as a ready subscription and a done catch-up (a reconnect after it
// starts the backoff afresh).
func (r *Realtime) session(outer context.Context) (live bool, err error) {
	ctx, cancel := context.WithCancelCause(outer)
	defer cancel(nil)

	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	ws, _, err := websocket.Dial(dctx, r.websocketURL(), &websocket.DialOptions{HTTPClient: r.c.http})
	dcancel()
	if err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(32 << 20)
	c := &conn{ws: ws}
	c.lastSeen.Store(r.c.clock.Now().UnixNano())
	in := &inbox{signal: make(chan struct{}, 1)}

	// The reader: answers pings at once, queues everything else.
	go func() {
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				in.fail(fmt.Errorf("read: %w", err))
				cancel(err)
				return
			}
			c.lastSeen.Store(r.c.clock.Now().UnixNano())
			var f frame
			if json.Unmarshal(data, &f) != nil {
				continue
			}
			switch f.Msg {
			case "ping":
				pong := map[string]any{"msg": "pong"}
				if f.ID != "" {
					pong["id"] = f.ID
				}
				if err := c.send(ctx, pong); err != nil {
					in.fail(fmt.Errorf("pong: %w", err))
					cancel(err)
					return
				}
			case "pong", "":
			default:
				in.push(f)
			}
		}
	}()

	// The pinger: a ping every interval; silence for two drops the connection.
	go func() {
		t := r.c.clock.NewTicker(r.opts.PingInterval)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.Chan():
				if r.c.clock.Since(time.Unix(0, c.lastSeen.Load())) >= 2*r.opts.PingInterval {
					in.fail(errSilent)
					cancel(errSilent)
					return
				}
				n++
				if err := c.send(ctx, map[string]any{"msg": "ping", "id": "ping-" + strconv.Itoa(n)}); err != nil {
					in.fail(fmt.Errorf("ping: %w", err))
					cancel(err)
					return
				}
			}
		}
	}()

	if err := r.handshake(ctx, c, in); err != nil {
		return false, err
	}
	r.c.log.Info().Msg("Rocket.Chat realtime connection ready")

	// Catch up while the stream's messages wait in the inbox.
	if r.opts.OnConnect != nil {
		if err := r.opts.OnConnect(ctx); err != nil {
			// Not live: a catch-up that keeps failing backs off further.
			return false, fmt.Errorf("catch-up after connect: %w", err)
		}
	}
	for {
		if outer.Err() != nil {
			return true, outer.Err()
		}
		// After a drop the messages already read are handed on first.
		f, err := in.next(ctx)
		if err != nil {
			return true, err
		}
		switch f.Msg {
		case "changed":
			if f.Collection != "stream-room-messages" {
				continue
			}
			if m, ok := parseStreamed(f.Fields); ok {
				// The caller's handling of a message it got is not cut
				// short by a drop of the connection that brought it.
				r.opts.OnMessage(outer, m)
			}
		case "nosub":
			if f.ID == mySub {
				return true, fmt.Errorf("subscription stopped by the server: %v", f.Error)
			}
		case "error":
			return true, fmt.Errorf("server: %s", f.Reason)
		}
	}
}

const (
	loginID = "login"
	mySub   = "my-messages"
)

// handshake is connect, login by resume token, and the subscription to
// __my_messages__, each waiting for its answer.
func (r *Realtime) handshake(ctx context.Context, c *conn, in *inbox) error {
	if err := c.send(ctx, map[string]any{"msg": "connect", "version": "1", "support": []string{"1", "pre2", "pre1"}}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if _, err := waitFor(ctx, in, func(f frame) (bool, error) {
		switch f.Msg {
		case "connected":
			return true, nil
		case "failed":
			return false, errors.New("connect: the server speaks no DDP version the client does")
		}
		return false, nil
	}); err != nil {
		return err
	}

	// The token is sent here and nowhere else on the socket; it is in no
	// error and no log line.
	login := map[string]any{"msg": "method", "method": "login", "id": loginID, "params": []any{map[string]any{"resume": r.c.token}}}
	if err := c.send(ctx, login); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	res, err := waitFor(ctx, in, func(f frame) (bool, error) {
		if f.Msg != "result" || f.ID != loginID {
			return false, nil
		}
		if f.Error != nil {
			text := strings.ReplaceAll(f.Error.String(), r.c.token, "[token]")
			// Meteor refuses a bad token with 403 (400 for a malformed
			// request); anything else (its DDP rate limiter's
			// too-many-requests, a server error) may pass on a later try.
			if code, ok := f.Error.Error.(float64); ok && (code == 403 || code == 400) {
				return false, fmt.Errorf("%w: %s", ErrLoginRefused, text)
			}
			return false, fmt.Errorf("login: %s", text)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	var who struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(res.Result, &who) != nil || who.ID != r.c.userID {
		return fmt.Errorf("%w: logged in as %q, not the configured user", ErrLoginRefused, who.ID)
	}

	sub := map[string]any{"msg": "sub", "id": mySub, "name": "stream-room-messages", "params": []any{"__my_messages__", false}}
	if err := c.send(ctx, sub); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	_, err = waitFor(ctx, in, func(f frame) (bool, error) {
		switch {
		case f.Msg == "ready" && contains(f.Subs, mySub):
			return true, nil
		case f.Msg == "nosub" && f.ID == mySub:
			return false, fmt.Errorf("subscribe: refused: %v", f.Error)
		}
		return false, nil
	})
	return err
}

// waitFor takes frames until done says so. Stream messages it passes over
// (a server may send one before its ready) go back to the inbox's front,
// in order, for the delivery loop.
func waitFor(ctx context.Context, in *inbox, done func(frame) (bool, error)) (frame, error) {
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var held []frame
	defer func() { in.unshift(held) }()
	for {
		f, err := in.next(hctx)
		if err != nil {
			return frame{}, err
		}
		if f.Msg == "error" {
			return frame{}, fmt.Errorf("server: %s", f.Reason)
		}
		ok, err := done(f)
		if err != nil {
			return frame{}, err
		}
		if ok {
			return f, nil
		}
		if f.Msg == "changed" {
			held = append(held, f)
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// parseStreamed reads a changed frame's fields: {eventName:
// "__my_messages__", args: [message, {roomParticipant, roomType, roomName}]}.
func parseStreamed(raw json.RawMessage) (IncomingMessage, bool) {
	var fields struct {
		EventName string            `json:"eventName"`
		Args      []json.RawMessage `json:"args"`
	}
	if json.Unmarshal(raw, &fields) != nil || fields.EventName != "__my_messages__" || len(fields.Args) == 0 {
		return IncomingMessage{}, false
	}
	var w wireMessage
	if json.Unmarshal(fields.Args[0], &w) != nil || w.ID == "" || w.RID == "" {
		return IncomingMessage{}, false
	}
	m := IncomingMessage{ChatMessage: w.message()}
	if len(fields.Args) > 1 {
		var extra struct {
			RoomParticipant bool     `json:"roomParticipant"`
			RoomType        RoomType `json:"roomType"`
			RoomName        string   `json:"roomName"`
		}
		if json.Unmarshal(fields.Args[1], &extra) == nil {
			m.RoomParticipant, m.RoomType, m.RoomName = extra.RoomParticipant, extra.RoomType, extra.RoomName
		}
	}
	return m, true
}
