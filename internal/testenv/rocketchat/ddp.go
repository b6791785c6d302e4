package rctest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// The realtime API: DDP over /websocket, as Meteor and Rocket.Chat's
// Streamer speak it, for what clients use to get messages: connect, ping,
// the login method with a resume token, and subscriptions to
// stream-room-messages ("__my_messages__" or one room's ID).

type ddpConn struct {
	ws      *websocket.Conn
	out     chan []byte
	done    chan struct{}
	uid     string            // after login
	subs    map[string]string // sub ID → stream key ("__my_messages__" or a room ID)
	dropped bool
	started bool // connect was answered
	silent  bool // SilenceConnections: nothing goes out, what comes in is lost
}

func (c *ddpConn) mySubs() int {
	n := 0
	for _, key := range c.subs {
		if key == "__my_messages__" {
			n++
		}
	}
	return n
}

// DropConnections closes every realtime connection at once, without a
// close handshake, as a network outage or a server restart would; it
// returns how many there were. Clients are expected to reconnect, log in
// again and resubscribe (and catch up by REST).
func (s *Server) DropConnections() int {
	s.mu.Lock()
	conns := make([]*ddpConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
		s.dropLocked(c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.CloseNow()
	}
	return len(conns)
}

// SilenceConnections makes every open realtime connection go quiet
// without closing it, as a network path that died while the TCP
// connection stayed open (a NAT or a proxy that forgot it): the stand-in
// sends them nothing more and drops what they send, pings included.
// Connections made later are not affected. It returns how many there were.
func (s *Server) SilenceConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.silent = true
	}
	return len(s.conns)
}

// PingConnections sends every open realtime connection a ping, as
// Meteor's heartbeat does ({"msg": "ping"}, no id); a client answers with
// a pong, recorded in Requests() as the route "pong".
func (s *Server) PingConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		s.sendLocked(c, map[string]any{"msg": "ping"})
	}
	return len(s.conns)
}

// WaitRequests waits until at least n requests of a route (as Request.Route
// has it: "chat.sendMessage", "pong", "method login") have arrived.
func (s *Server) WaitRequests(ctx context.Context, route string, n int) error {
	for {
		s.mu.Lock()
		count := 0
		for _, r := range s.requests {
			if r.Route == route {
				count++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if count >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d requests %q: %w", count, n, route, ctx.Err())
		}
	}
}

// Connections is the number of open realtime connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) dropLocked(c *ddpConn) {
	if c.dropped {
		return
	}
	c.dropped = true
	delete(s.conns, c)
	close(c.done)
	s.notify()
}

func (s *Server) serveDDP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c := &ddpConn{ws: ws, out: make(chan []byte, 1024), done: make(chan struct{}), subs: map[string]string{}}
	s.mu.Lock()
	s.conns[c] = true
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.dropLocked(c)
		s.mu.Unlock()
		_ = ws.CloseNow()
	}()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() { // the writer: frames leave in the order they were queued
		for {
			select {
			case b := <-c.out:
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				err := ws.Write(wctx, websocket.MessageText, b)
				wcancel()
				if err != nil {
					cancel()
					return
				}
			case <-c.done:
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()

	s.mu.Lock()
	s.sendLocked(c, map[string]any{"server_id": "0"})
	s.mu.Unlock()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			s.mu.Lock()
			s.ddpInvalid("a frame that is not a JSON object: %q", data)
			s.sendLocked(c, map[string]any{"msg": "error", "reason": "Bad request"})
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		if c.silent {
			s.mu.Unlock()
			continue
		}
		route, _ := m["msg"].(string)
		if name, ok := m["method"].(string); ok {
			route += " " + name
		} else if name, ok := m["name"].(string); ok {
			route += " " + name
		}
		s.requests = append(s.requests, Request{Method: "DDP", Route: route, Body: data, UserID: c.uid})
		s.notify()
		s.ddpMessage(c, m)
		s.mu.Unlock()
	}
}

// sendLocked queues a frame; a client too slow to take 1024 frames is cut
// off, as a real server drops a connection whose buffer overflows.
func (s *Server) sendLocked(c *ddpConn, v any) {
	if c.dropped || c.silent {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	select {
	case c.out <- b:
	default:
		s.dropLocked(c)
	}
}

func meteorDDPError(code any, reason string) map[string]any {
	msg := reason
	switch c := code.(type) {
	case int:
		msg = reason + " [" + strconv.Itoa(c) + "]"
	case string:
		msg = reason + " [" + c + "]"
	}
	return map[string]any{"isClientSafe": true, "error": code, "reason": reason, "message": msg, "errorType": "Meteor.Error"}
}

// ddpInvalid records a frame the server would not serve.
func (s *Server) ddpInvalid(format string, args ...any) {
	s.invalid = append(s.invalid, "DDP: "+fmt.Sprintf(format, args...))
}

func (s *Server) ddpMessage(c *ddpConn, m map[string]any) {
	id, _ := m["id"].(string)
	if m["msg"] != "connect" && !c.started {
		// Meteor: the first frame must be connect.
		s.ddpInvalid("%v before connect", m["msg"])
		s.sendLocked(c, map[string]any{"msg": "error", "reason": "Must connect first", "offendingMessage": m})
		return
	}
	switch m["msg"] {
	case "connect":
		if v, _ := m["version"].(string); v != "1" && v != "pre2" && v != "pre1" {
			s.ddpInvalid("connect with version %q", v)
			s.sendLocked(c, map[string]any{"msg": "failed", "version": "1"})
			return
		}
		c.started = true
		s.sendLocked(c, map[string]any{"msg": "connected", "session": randomID()})
	case "ping":
		if id != "" {
			s.sendLocked(c, map[string]any{"msg": "pong", "id": id})
		} else {
			s.sendLocked(c, map[string]any{"msg": "pong"})
		}
	case "pong":
	case "method":
		s.ddpMethod(c, id, m)
	case "sub":
		s.ddpSub(c, id, m)
	case "unsub":
		if _, ok := c.subs[id]; ok {
			delete(c.subs, id)
			s.notify()
		}
		s.sendLocked(c, map[string]any{"msg": "nosub", "id": id})
	default:
		s.ddpInvalid("unknown frame %v", m["msg"])
		s.sendLocked(c, map[string]any{"msg": "error", "reason": "Bad request", "offendingMessage": m})
	}
}

func (s *Server) ddpMethod(c *ddpConn, id string, m map[string]any) {
	name, _ := m["method"].(string)
	params, _ := m["params"].([]any)
	result := func(v any) {
		s.sendLocked(c, map[string]any{"msg": "result", "id": id, "result": v})
		s.sendLocked(c, map[string]any{"msg": "updated", "methods": []string{id}})
	}
	fail := func(e map[string]any) {
		s.sendLocked(c, map[string]any{"msg": "result", "id": id, "error": e})
		s.sendLocked(c, map[string]any{"msg": "updated", "methods": []string{id}})
	}
	switch name {
	case "login":
		var arg map[string]any
		if len(params) > 0 {
			arg, _ = params[0].(map[string]any)
		}
		token, _ := arg["resume"].(string)
		if token == "" {
			// Password and other login services are not part of the stand-in.
			s.ddpInvalid("login without a resume token")
			fail(meteorDDPError(400, "Unrecognized options for login request"))
			return
		}
		u := s.byToken[token]
		if u == nil {
			fail(meteorDDPError(403, "You've been logged out by the server. Please log in again."))
			return
		}
		c.uid = u.id
		s.notify()
		s.sendLocked(c, map[string]any{"msg": "added", "collection": "users", "id": u.id,
			"fields": map[string]any{"username": u.username, "name": u.name, "status": "online"}})
		result(map[string]any{"id": u.id, "token": token, "tokenExpires": ejsonTime(s.now().Add(90 * 24 * time.Hour)), "type": "resume"})
	case "logout":
		// Meteor reruns the subscriptions without a user: they stay, and
		// carry nothing until the next login.
		c.uid = ""
		s.notify()
		result(nil)
	default:
		s.ddpInvalid("method %q is not served by the stand-in", name)
		fail(meteorDDPError(404, "Method '"+name+"' not found"))
	}
}

func (s *Server) ddpSub(c *ddpConn, id string, m map[string]any) {
	name, _ := m["name"].(string)
	params, _ := m["params"].([]any)
	if name != "stream-room-messages" {
		s.ddpInvalid("subscription %q is not served by the stand-in", name)
		s.sendLocked(c, map[string]any{"msg": "nosub", "id": id, "error": meteorDDPError(404, "Subscription '"+name+"' not found")})
		return
	}
	key := ""
	if len(params) > 0 {
		key, _ = params[0].(string)
	}
	// params[1] is useCollection (old clients) or {useCollection, args}
	// (new); events as collection documents are not part of the stand-in.
	if len(params) > 1 {
		useCollection := false
		switch p := params[1].(type) {
		case bool:
			useCollection = p
		case map[string]any:
			useCollection, _ = p["useCollection"].(bool)
		default:
			s.sendLocked(c, map[string]any{"msg": "nosub", "id": id, "error": meteorDDPError("invalid-params", "Invalid params")})
			return
		}
		if useCollection {
			s.sendLocked(c, map[string]any{"msg": "nosub", "id": id, "error": meteorDDPError("not-allowed", "useCollection is not served by the stand-in")})
			return
		}
	}
	// __my_messages__ is open to every connection (allowRead "all"): a
	// client may subscribe before its login is answered, as ddp-client
	// does on a reconnect, and messages flow once it is logged in. One
	// room's stream needs a user who may read the room.
	allowed := key == "__my_messages__"
	if u := s.users[c.uid]; !allowed && u != nil && key != "" {
		r := s.rooms[key]
		allowed = r != nil && s.canAccess(u, r)
	}
	if !allowed {
		// Streamer: a subscription the user may not read is stopped.
		s.sendLocked(c, map[string]any{"msg": "nosub", "id": id, "error": meteorDDPError("not-allowed", "Not allowed")})
		return
	}
	c.subs[id] = key
	s.notify()
	s.sendLocked(c, map[string]any{"msg": "ready", "subs": []string{id}})
}

// publish hands a new or changed message to every subscriber who may read
// its room: on "__my_messages__" with the room's details, on the room's ID
// with the message alone.
func (s *Server) publish(m *msg) {
	r := s.rooms[m.rid]
	var payload map[string]any
	for c := range s.conns {
		u := s.users[c.uid]
		if u == nil || len(c.subs) == 0 || !s.canAccess(u, r) {
			continue
		}
		for _, key := range c.subs {
			if payload == nil {
				payload = s.messageJSON(m, ejsonTS)
			}
			var args []any
			switch key {
			case "__my_messages__":
				extra := map[string]any{"roomParticipant": r.subs[u.id] != nil, "roomType": r.t}
				if r.t != "d" {
					extra["roomName"] = r.name
				}
				args = []any{payload, extra}
			case r.id:
				args = []any{payload}
			default:
				continue
			}
			s.sendLocked(c, map[string]any{"msg": "changed", "collection": "stream-room-messages", "id": "id",
				"fields": map[string]any{"eventName": key, "args": args}})
		}
	}
}
