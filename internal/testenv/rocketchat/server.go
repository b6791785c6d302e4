// Package rctest is a stand-in Rocket.Chat 8.x server for tests: the REST
// API under /api/v1 and the realtime API (DDP over /websocket), for what a
// bot and its users do — users, DMs, private groups with owners and
// moderators, public channels, threads, history, subscriptions, system
// messages, rate limits and forced encryption.
//
// Rocket.Chat's own request validators judge every request: the JSON
// schemas of @rocket.chat/rest-typings 8.8.1 (testdata/validators.json,
// exported by scripts/rocketchat/export.mjs) check each body, and each
// query where the server checks one, after AJV's type coercion. A request
// that fails gets the 400 the server sends and is kept in Invalid(), so a
// test can assert that its client sent none. Every request is kept in
// Requests().
//
// Answers follow the server's code (apps/meteor/app/api/server: ApiClass.ts,
// v1/*.ts, and the methods they call). Where the stand-in simplifies, its
// doc comments say so; error texts of schema failures come from the Go
// validator, not AJV, but the status, errorType and shape are the server's.
//
// Not part of the stand-in: end-to-end encryption itself (keys, e2e
// message content; only the refusal of plain messages in an encrypted
// group), edits and deletions, uploads (SendFileAs posts the message an
// upload makes, without the upload), group DMs, teams and discussions,
// the md (parsed markdown) field of messages, DDP methods other than login
// and logout, and streams other than stream-room-messages. A route it
// does not serve answers 404 and is recorded in Invalid().
package rctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// Options configure a Server.
type Options struct {
	// Clock drives timestamps and rate-limit windows; the real clock by default.
	Clock clockwork.Clock
	// ForceEncryptedPrivateGroups is the server with E2E enabled,
	// E2E_Force_Encryption_For_Private_Room on and unencrypted messages
	// refused in encrypted rooms: every private group is created with
	// encrypted: true, and a message without t: "e2e" is refused in it.
	ForceEncryptedPrivateGroups bool
	// MaxMessageSize is Message_MaxAllowedSize (5000 by default).
	MaxMessageSize int
	// DuplicateKeyError makes a chat.sendMessage with a taken _id fail as
	// an insert does: with MongoDB's E11000 duplicate-key error, as on a
	// server older than sendMessage's lookup of the _id, or on 8.x when
	// two sends of one _id race past that lookup. By default the answer is
	// 8.x's to a repeated _id (see send).
	DuplicateKeyError bool
}

// Server is a running stand-in. All methods are safe for concurrent use.
type Server struct {
	opts  Options
	clock clockwork.Clock
	vs    *validators
	http  *httptest.Server
	base  string

	mu       sync.Mutex
	users    map[string]*user // by ID
	byName   map[string]*user // by username
	byToken  map[string]*user
	rooms    map[string]*room // by ID
	msgs     map[string]*msg  // by ID
	order    []*msg           // insertion order
	removed  []removedSub
	limits   map[string]*limiter // "POST chat.sendMessage"
	allLimit *limiter            // the default for every other route, if set
	requests []Request
	invalid  []string
	conns    map[*ddpConn]bool
	changed  chan struct{} // closed and replaced on every DDP state change
}

// Request is one request as the stand-in received it: a REST call, or a
// frame a client sent over the realtime API (Method "DDP", Route the
// frame's msg and its method or subscription name, Body the frame).
type Request struct {
	Method string
	Route  string // "chat.sendMessage"; for DDP e.g. "method login", "sub stream-room-messages", "ping"
	Query  string // raw query string
	Body   []byte
	Header http.Header
	UserID string // the authenticated caller, "" if none
	Status int    // 0 for DDP frames
}

type user struct {
	id, username, name, token string
	roles                     []string
}

type room struct {
	id, t, name, fname string
	creator            string
	members            []string            // user IDs in joining order
	roles              map[string][]string // user ID → room roles (owner, moderator)
	subs               map[string]*sub     // user ID → subscription
	ro, encrypted      bool
	customFields       map[string]any
	ts, updated, lm    time.Time
	msgCount           int
}

type sub struct {
	id      string
	ts      time.Time
	updated time.Time
	unread  int
	open    bool
}

type removedSub struct {
	id  string
	uid string
	at  time.Time
}

type msg struct {
	id, rid, text, t string
	tmid             string
	tshow            bool
	uid              string
	ts, updated      time.Time
	tcount           int
	tlm              time.Time
	replies          []string
	reactions        map[string][]string // ":emoji:" → usernames
	extra            map[string]any      // other fields the client sent (alias, attachments, …)
}

type limiter struct {
	n           int
	window      time.Duration
	counts      map[string]*rateWindow // by client IP
	fromDefault bool
}

type rateWindow struct {
	start time.Time
	count int
}

// Start starts a stand-in on a loopback port and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.http = httptest.NewServer(s)
	s.base = s.http.URL
	t.Cleanup(s.Close)
	return s
}

// Serve serves the stand-in on a listener until it is closed (for a demo
// outside tests; tests use Start). URL is http:// and the listener's address.
func (s *Server) Serve(ln net.Listener) error {
	s.base = "http://" + ln.Addr().String()
	return http.Serve(ln, s)
}

// New returns a stand-in that is not listening; serve it with ServeHTTP
// (Start does both).
func New(opts Options) (*Server, error) {
	vs, err := loadValidators()
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 5000
	}
	return &Server{
		opts: opts, clock: opts.Clock, vs: vs,
		users: map[string]*user{}, byName: map[string]*user{}, byToken: map[string]*user{},
		rooms: map[string]*room{}, msgs: map[string]*msg{}, limits: map[string]*limiter{},
		conns: map[*ddpConn]bool{}, changed: make(chan struct{}),
	}, nil
}

// URL is the server's base URL (no trailing slash), as a bot's
// [rocketchat] server setting would be.
func (s *Server) URL() string { return s.base }

// Close drops every realtime connection and stops the server.
func (s *Server) Close() {
	s.DropConnections()
	if s.http != nil {
		s.http.Close()
	}
}

// AddUser creates a user with the role "user" and a personal access
// token, and returns its ID and token (for X-User-Id / X-Auth-Token and
// the realtime login's resume).
func (s *Server) AddUser(username string) (id, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byName[username]; ok {
		panic("rctest: user " + username + " exists")
	}
	u := &user{id: randomID(), username: username, name: username, token: randomToken(), roles: []string{"user"}}
	s.users[u.id] = u
	s.byName[username] = u
	s.byToken[u.token] = u
	return u.id, u.token
}

// SetRoles replaces a user's global roles: "user", "bot" (which holds
// api-bypass-rate-limit, as on a real server), "admin".
func (s *Server) SetRoles(userID string, roles ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[userID].roles = append([]string(nil), roles...)
}

// RenameUser changes a username, as an admin can on a real server; the ID
// stays. The old username is free for another user afterwards.
func (s *Server) RenameUser(userID, username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	delete(s.byName, u.username)
	u.username = username
	s.byName[username] = u
}

// EncryptRoom turns end-to-end encryption on in a room, as a room owner
// can (e2e.setRoomKeyID and the room's "encrypted" setting) once E2E is
// enabled on the server: from then on a plain message is refused in it.
func (s *Server) EncryptRoom(roomID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rooms[roomID].encrypted = true
}

// CreateChannel creates a public channel owned by the given user, with the
// given members (user IDs), as an admin would set it up.
func (s *Server) CreateChannel(name, ownerID string, memberIDs ...string) (roomID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.newRoom("c", name, ownerID, append([]string{ownerID}, memberIDs...))
	return r.id
}

// SetRateLimit limits a route ("POST", "chat.sendMessage") to n calls per
// window per client IP, as API_Enable_Rate_Limiter does; n = 0 lifts it.
// Callers with api-bypass-rate-limit (roles admin, bot) are not limited.
func (s *Server) SetRateLimit(method, route string, n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := method + " " + route
	if n == 0 {
		delete(s.limits, key)
		return
	}
	s.limits[key] = &limiter{n: n, window: window, counts: map[string]*rateWindow{}}
}

// SetDefaultRateLimit limits every route without a limit of its own to n
// calls per window per client IP, as the server's default
// (API_Enable_Rate_Limiter_Limit_Calls_Default: 10 per 60 s) does;
// n = 0 lifts it. Each route counts on its own.
func (s *Server) SetDefaultRateLimit(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allLimit = nil
	if n > 0 {
		s.allLimit = &limiter{n: n, window: window}
	}
	for k, l := range s.limits {
		if l.fromDefault {
			delete(s.limits, k)
		}
	}
}

// Requests returns every request received so far, REST and realtime, in
// the order they arrived.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Invalid returns one line for every request that Rocket.Chat's validators
// refused, or that named a route the stand-in does not know.
func (s *Server) Invalid() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.invalid...)
}

// Message is a message as tests inspect it.
type Message struct {
	ID, RoomID, Text, Type, ThreadID, UserID, Username string
	Encrypted                                          bool
}

// Messages returns a room's messages, oldest first, system messages included.
func (s *Server) Messages(roomID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.order {
		if m.rid == roomID {
			out = append(out, Message{ID: m.id, RoomID: m.rid, Text: m.text, Type: m.t, ThreadID: m.tmid,
				UserID: m.uid, Username: s.users[m.uid].username, Encrypted: m.t == "e2e"})
		}
	}
	return out
}

// Room is a room as tests inspect it.
type Room struct {
	ID, Type, Name string
	Members        []string // user IDs
	Owners         []string
	Encrypted      bool
	ReadOnly       bool
}

// SetRoomRoles replaces a member's roles in a room ("owner", "moderator"),
// as groups.addOwner / groups.addModerator would.
func (s *Server) SetRoomRoles(roomID, userID string, roles ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[roomID]
	r.roles[userID] = append([]string(nil), roles...)
	if sb := r.subs[userID]; sb != nil {
		sb.updated = s.now()
	}
}

// Said is userID's messages in a room that contain every one of parts.
func (s *Server) Said(roomID, userID string, parts ...string) []Message {
	var out []Message
	for _, m := range s.Messages(roomID) {
		if m.UserID != userID {
			continue
		}
		all := true
		for _, part := range parts {
			all = all && strings.Contains(m.Text, part)
		}
		if all {
			out = append(out, m)
		}
	}
	return out
}

// RoomByName finds a group or channel by name.
func (s *Server) RoomByName(name string) (Room, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rooms {
		if r.name == name && r.t != "d" {
			return s.roomView(r), true
		}
	}
	return Room{}, false
}

// RoomByID finds any room by ID.
func (s *Server) RoomByID(id string) (Room, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[id]
	if !ok {
		return Room{}, false
	}
	return s.roomView(r), true
}

func (s *Server) roomView(r *room) Room {
	v := Room{ID: r.id, Type: r.t, Name: r.name, Members: append([]string(nil), r.members...), Encrypted: r.encrypted, ReadOnly: r.ro}
	for _, uid := range r.members {
		if hasString(r.roles[uid], "owner") {
			v.Owners = append(v.Owners, uid)
		}
	}
	return v
}

// SendAs posts a message into a room as a user through the same path as
// chat.sendMessage (checks, threads, the stream), without a request being
// recorded: for tests that need a user to speak without a REST client.
func (s *Server) SendAs(userID, roomID, text, tmid string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		return "", fmt.Errorf("no user %q", userID)
	}
	m, apiErr := s.send(u, map[string]any{"rid": roomID, "msg": text, "tmid": tmid})
	if apiErr != nil {
		return "", fmt.Errorf("%d %v", apiErr.status, apiErr.body)
	}
	return m.id, nil
}

// SendFileAs posts a file into a room as a user, as the server's
// rooms.upload / rooms.mediaConfirm do: a message with the file's
// description as msg, and file, files and attachments naming the upload.
// No request is recorded (uploads are not part of the REST stand-in).
func (s *Server) SendFileAs(userID, roomID, fileName, description string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		return "", fmt.Errorf("no user %q", userID)
	}
	fileID := randomID()
	file := map[string]any{"_id": fileID, "name": fileName, "type": "application/octet-stream"}
	m, apiErr := s.send(u, map[string]any{"rid": roomID, "msg": description,
		"file": file, "files": []any{file},
		"attachments": []any{map[string]any{"type": "file", "title": fileName, "title_link": "/file-upload/" + fileID + "/" + fileName, "title_link_download": true}}})
	if apiErr != nil {
		return "", fmt.Errorf("%d %v", apiErr.status, apiErr.body)
	}
	return m.id, nil
}

// ---- HTTP ----

// ServeHTTP serves /api/v1/* and /websocket.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/websocket":
		s.serveDDP(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/v1/"):
		s.serveREST(w, r)
	default:
		http.NotFound(w, r)
	}
}

// apiError is an answer other than 200.
type apiError struct {
	status int
	body   map[string]any
}

// meteorError is what API.v1.failure makes of a thrown Meteor.Error.
func meteorError(errType, reason string, details map[string]any) *apiError {
	body := map[string]any{"success": false, "error": reason + " [" + errType + "]", "errorType": errType}
	if details != nil {
		body["details"] = details
	}
	return &apiError{status: 400, body: body}
}

// plainError is what API.v1.failure makes of a thrown Error or a string.
func plainError(text string) *apiError {
	return &apiError{status: 400, body: map[string]any{"success": false, "error": text}}
}

func forbidden() *apiError {
	return &apiError{status: 403, body: map[string]any{"success": false, "error": "unauthorized"}}
}

type handler func(c *call) (map[string]any, *apiError)

type call struct {
	u      *user
	params map[string]any // coerced body (POST) or query (GET)
}

func (s *Server) routes() map[string]handler {
	return map[string]handler{
		"POST chat.sendMessage": s.chatSendMessage,
		"POST chat.postMessage": s.chatPostMessage,
		"GET chat.getMessage":   s.chatGetMessage,
		"POST chat.react":       s.chatReact,
		"POST im.create":        s.imCreate,
		"POST dm.create":        s.imCreate,
		"GET im.history":        s.imHistory,
		"GET dm.history":        s.imHistory,
		"GET im.list":           s.imList,
		"GET dm.list":           s.imList,
		"POST groups.create":    s.groupsCreate,
		"POST groups.invite":    s.groupsInvite,
		"POST groups.kick":      s.groupsKick,
		"POST groups.leave":     s.groupsLeave,
		"GET groups.history":    s.groupsHistory,
		"GET groups.info":       s.groupsInfo,
		"GET groups.members":    s.groupsMembers,
		"GET groups.list":       s.groupsList,
		"GET channels.history":  s.channelsHistory,
		"GET channels.list":     s.channelsList,
		"GET channels.info":     s.channelsInfo,
		"POST channels.join":    s.channelsJoin,
		"POST channels.leave":   s.channelsLeave,
		"GET rooms.info":        s.roomsInfo,
		"GET subscriptions.get": s.subscriptionsGet,
		"GET users.info":        s.usersInfo,
		"GET me":                s.me,
	}
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	route := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	key := r.Method + " " + route
	raw, _ := io.ReadAll(r.Body)

	s.mu.Lock()
	defer s.mu.Unlock()
	rec := Request{Method: r.Method, Route: route, Query: r.URL.RawQuery, Body: raw, Header: r.Header.Clone()}
	status, header, body := s.handle(r, key, raw, &rec)
	rec.Status = status
	s.requests = append(s.requests, rec)
	s.notify()

	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) handle(r *http.Request, key string, raw []byte, rec *Request) (int, map[string]string, map[string]any) {
	h, known := s.routes()[key]
	if !known {
		s.invalid = append(s.invalid, key+": no such route in the stand-in")
		return 404, nil, map[string]any{"success": false, "error": "Resource not found"}
	}
	var params map[string]any
	if r.Method == http.MethodGet {
		params = queryParams(r.URL.Query())
	} else {
		var err error
		params, err = parseBody(r.Header.Get("Content-Type"), raw)
		if err != nil {
			s.invalid = append(s.invalid, key+": "+err.Error())
			return 400, nil, map[string]any{"success": false, "error": err.Error()}
		}
	}
	v := s.vs.byRoute[key]
	validate := func() *apiError {
		if v == nil {
			return nil
		}
		coerced, msgs := v.check(params)
		if coerced != nil {
			params = coerced
		}
		if msgs == nil {
			return nil
		}
		text := strings.Join(msgs, "\n ")
		s.invalid = append(s.invalid, fmt.Sprintf("%s (%s): %s", key, v.name, text))
		if v.registered == "typed" {
			errType := "invalid-params"
			if v.checks == "query" {
				errType = "error-invalid-params"
			}
			return &apiError{status: 400, body: map[string]any{"success": false, "errorType": errType, "error": text}}
		}
		return meteorError("invalid-params", text, nil)
	}

	// Typed routes are checked by the HTTP router before anything else;
	// validateParams routes after authentication and the rate limiter.
	if v != nil && v.registered == "typed" {
		if e := validate(); e != nil {
			return e.status, nil, e.body
		}
	}
	u := s.authenticate(r)
	if u == nil {
		return 401, nil, map[string]any{"success": false, "error": "You must be logged in to do this.",
			"status": "error", "message": "You must be logged in to do this."}
	}
	rec.UserID = u.id
	header, e := s.rateLimit(key, r, u)
	if e != nil {
		return e.status, header, e.body
	}
	if v == nil || v.registered != "typed" {
		if e := validate(); e != nil {
			return e.status, header, e.body
		}
	}
	out, e := h(&call{u: u, params: params})
	if e != nil {
		return e.status, header, e.body
	}
	if out == nil {
		out = map[string]any{}
	}
	out["success"] = true
	return 200, header, out
}

func parseBody(contentType string, raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	switch {
	case strings.Contains(contentType, "application/json"):
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("body is not JSON: %v", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("body is not a JSON object")
		}
		return m, nil
	case strings.Contains(contentType, "application/x-www-form-urlencoded"):
		q, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		for k, vs := range q {
			m[k] = vs[len(vs)-1]
		}
		return m, nil
	}
	return nil, fmt.Errorf("body with Content-Type %q: the server would not parse it as JSON", contentType)
}

func (s *Server) authenticate(r *http.Request) *user {
	id, token := r.Header.Get("X-User-Id"), r.Header.Get("X-Auth-Token")
	if id == "" || token == "" {
		return nil
	}
	u := s.byToken[token]
	if u == nil || u.id != id {
		return nil
	}
	return u
}

func (s *Server) rateLimit(key string, r *http.Request, u *user) (map[string]string, *apiError) {
	l := s.limits[key]
	if l == nil && s.allLimit != nil {
		l = &limiter{n: s.allLimit.n, window: s.allLimit.window, counts: map[string]*rateWindow{}, fromDefault: true}
		s.limits[key] = l
	}
	if l == nil || s.can(u, "api-bypass-rate-limit") {
		return nil, nil
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := s.now()
	w := l.counts[ip]
	if w == nil || !now.Before(w.start.Add(l.window)) {
		w = &rateWindow{start: now}
		l.counts[ip] = w
	}
	w.count++
	reset := w.start.Add(l.window).Sub(now)
	left := l.n - w.count
	if left < 0 {
		left = 0
	}
	header := map[string]string{
		"X-RateLimit-Limit":     strconv.Itoa(l.n),
		"X-RateLimit-Remaining": strconv.Itoa(left),
		"X-RateLimit-Reset":     strconv.FormatInt(now.Add(reset).UnixMilli(), 10),
	}
	if w.count > l.n {
		secs := int((reset + time.Second - 1) / time.Second)
		text := fmt.Sprintf("Error, too many requests. Please slow down. You must wait %d seconds before trying this endpoint again. [error-too-many-requests]", secs)
		return header, &apiError{status: 429, body: map[string]any{"success": false, "error": text}}
	}
	return header, nil
}

// ---- permissions ----

var rolePermissions = map[string][]string{
	"user":      {"create-c", "create-p", "create-d", "view-c-room"},
	"bot":       {"create-c", "create-p", "create-d", "view-c-room", "api-bypass-rate-limit", "message-impersonate", "send-many-messages"},
	"owner":     {"add-user-to-joined-room", "remove-user"},
	"moderator": {"add-user-to-joined-room", "remove-user"},
}

// can is hasPermission: global roles, plus the room roles in r if given.
func (s *Server) can(u *user, perm string, in ...*room) bool {
	roles := append([]string(nil), u.roles...)
	for _, r := range in {
		roles = append(roles, r.roles[u.id]...)
	}
	for _, role := range roles {
		if role == "admin" || hasString(rolePermissions[role], perm) {
			return true
		}
	}
	return false
}

// canAccess is canAccessRoom: anyone may read a public channel; private
// groups and DMs only their members.
func (s *Server) canAccess(u *user, r *room) bool {
	if r.t == "c" {
		return s.can(u, "view-c-room")
	}
	return r.subs[u.id] != nil
}

// ---- rooms and messages ----

func (s *Server) newRoom(t, name, creator string, members []string) *room {
	now := s.now()
	r := &room{id: randomID(), t: t, name: name, fname: name, creator: creator,
		roles: map[string][]string{}, subs: map[string]*sub{}, ts: now, updated: now}
	if t == "d" {
		ids := append([]string(nil), members...)
		sort.Strings(ids)
		r.id = strings.Join(ids, "")
		r.name, r.fname = "", ""
	}
	for _, uid := range members {
		s.join(r, uid)
	}
	if creator != "" && t != "d" {
		r.roles[creator] = append(r.roles[creator], "owner")
	}
	s.rooms[r.id] = r
	return r
}

func (s *Server) join(r *room, uid string) {
	if r.subs[uid] != nil {
		return
	}
	now := s.now()
	r.members = append(r.members, uid)
	r.subs[uid] = &sub{id: randomID(), ts: now, updated: now, open: true}
	r.updated = now
}

func (s *Server) leave(r *room, uid string) {
	sb := r.subs[uid]
	if sb == nil {
		return
	}
	delete(r.subs, uid)
	delete(r.roles, uid)
	for i, m := range r.members {
		if m == uid {
			r.members = append(r.members[:i:i], r.members[i+1:]...)
			break
		}
	}
	s.removed = append(s.removed, removedSub{id: sb.id, uid: uid, at: s.now()})
}

// insert stores a new message, updates the room, the subscriptions and the
// thread, and hands it (and an updated thread parent) to the stream.
func (s *Server) insert(m *msg) {
	now := s.now()
	m.ts, m.updated = now, now
	s.msgs[m.id] = m
	s.order = append(s.order, m)
	r := s.rooms[m.rid]
	r.lm, r.updated = now, now
	r.msgCount++
	s.notify()
	for uid, sb := range r.subs {
		if uid != m.uid {
			sb.unread++
			sb.updated = now
			sb.open = true
		}
	}
	s.publish(m)
	if m.tmid != "" {
		if p := s.msgs[m.tmid]; p != nil {
			p.tcount++
			p.tlm = now
			p.updated = now
			if !hasString(p.replies, m.uid) {
				p.replies = append(p.replies, m.uid)
			}
			s.publish(p)
		}
	}
}

func (s *Server) systemMessage(t string, r *room, actor *user, text string) {
	s.insert(&msg{id: randomID(), rid: r.id, t: t, text: text, uid: actor.id})
}

var messageFields = map[string]bool{"_id": true, "rid": true, "msg": true, "tmid": true, "tshow": true, "t": true}

// systemTypes are the message types MessageTypes.isSystemMessage knows
// (the ones the stand-in itself writes, and a few more).
var systemTypes = map[string]bool{"au": true, "ru": true, "uj": true, "ul": true, "r": true, "room_changed_topic": true, "user-muted": true}

// send is executeSendMessage: its checks in its order, canSendMessage's,
// then an insert by _id.
func (s *Server) send(u *user, in map[string]any) (*msg, *apiError) {
	rid, _ := in["rid"].(string)
	text, _ := in["msg"].(string)
	t, _ := in["t"].(string)
	tmid, _ := in["tmid"].(string)
	tshow, _ := in["tshow"].(bool)
	if systemTypes[t] {
		return nil, plainError("Cannot send system messages using 'chat.sendMessage'")
	}
	if tshow && tmid == "" {
		return nil, meteorError("invalid-params", "tshow provided but missing tmid", map[string]any{"method": "sendMessage"})
	}
	if len(text) > s.opts.MaxMessageSize {
		return nil, meteorError("error-message-size-exceeded", "Message size exceeds the allowed limit", map[string]any{"method": "sendMessage"})
	}
	// No nested threads: a reply to a reply goes to the thread's root, and
	// the root decides the room.
	if tmid != "" {
		if p := s.msgs[tmid]; p != nil {
			if p.tmid != "" {
				tmid = p.tmid
			}
			rid = p.rid
		}
	}
	if rid == "" {
		return nil, plainError("The 'rid' property on the message object is missing.")
	}
	r := s.rooms[rid]
	if r == nil {
		return nil, meteorError("error-invalid-room", "Invalid room", map[string]any{"method": "canSendMessage"})
	}
	if !s.canAccess(u, r) {
		return nil, plainError("error-not-allowed")
	}
	if r.ro && !s.can(u, "post-readonly", r) {
		return nil, plainError("You can't send messages because the room is readonly.")
	}
	if r.encrypted && t != "e2e" {
		return nil, meteorError("error-not-allowed", "Not allowed to send un-encrypted messages in an encrypted room", map[string]any{"method": "sendMessage"})
	}
	id, _ := in["_id"].(string)
	if id == "" {
		id = randomID()
	}
	if _, dup := s.msgs[id]; dup {
		if s.opts.DuplicateKeyError {
			// MongoDB's answer to an insert of an existing _id; the route
			// passes the error's message on as a plain failure.
			return nil, plainError(fmt.Sprintf(`E11000 duplicate key error collection: rocketchat.rocketchat_message index: _id_ dup key: { _id: "%s" }`, id))
		}
		// sendMessage (functions/sendMessage.ts) finds the _id taken and
		// returns undefined without inserting; chat.sendMessage hands that
		// to normalizeMessagesForUser, whose filterStarred throws reading
		// message.starred, and ApiClass answers the TypeError's message.
		return nil, plainError("Cannot read properties of undefined (reading 'starred')")
	}
	if r.t == "c" && r.subs[u.id] == nil {
		s.join(r, u.id)
		s.systemMessage("uj", r, u, u.username)
	}
	m := &msg{id: id, rid: rid, text: text, t: t, tmid: tmid, tshow: tshow, uid: u.id, extra: map[string]any{}}
	for k, v := range in {
		if !messageFields[k] && v != nil {
			m.extra[k] = v
		}
	}
	s.insert(m)
	return m, nil
}

// ---- JSON shapes ----

// restTime is how the REST API writes a Date.
func restTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ejsonTime is how DDP writes a Date.
func ejsonTime(t time.Time) map[string]any { return map[string]any{"$date": t.UnixMilli()} }

func (s *Server) messageJSON(m *msg, ts func(time.Time) any) map[string]any {
	u := s.users[m.uid]
	out := map[string]any{
		"_id": m.id, "rid": m.rid, "msg": m.text, "ts": ts(m.ts), "_updatedAt": ts(m.updated),
		"u":    map[string]any{"_id": u.id, "username": u.username, "name": u.name},
		"urls": []any{}, "mentions": []any{}, "channels": []any{},
	}
	for k, v := range m.extra {
		out[k] = v
	}
	if m.t != "" {
		out["t"] = m.t
		out["groupable"] = false
	}
	if m.tmid != "" {
		out["tmid"] = m.tmid
		if m.tshow {
			out["tshow"] = true
		}
	}
	if m.tcount > 0 {
		out["tcount"] = m.tcount
		out["tlm"] = ts(m.tlm)
		out["replies"] = append([]string(nil), m.replies...)
	}
	if len(m.reactions) > 0 {
		rs := map[string]any{}
		for e, names := range m.reactions {
			rs[e] = map[string]any{"usernames": append([]string(nil), names...)}
		}
		out["reactions"] = rs
	}
	return out
}

func restTS(t time.Time) any  { return restTime(t) }
func ejsonTS(t time.Time) any { return ejsonTime(t) }

func (s *Server) roomJSON(r *room) map[string]any {
	out := map[string]any{
		"_id": r.id, "t": r.t, "ts": restTime(r.ts), "_updatedAt": restTime(r.updated),
		"msgs": r.msgCount, "usersCount": len(r.members), "default": false, "ro": r.ro, "sysMes": true,
	}
	if r.t == "d" {
		var names []string
		for _, uid := range r.members {
			names = append(names, s.users[uid].username)
		}
		out["usernames"] = names
		out["uids"] = append([]string(nil), r.members...)
	} else {
		out["name"] = r.name
		out["fname"] = r.fname
		if c := s.users[r.creator]; c != nil {
			out["u"] = map[string]any{"_id": c.id, "username": c.username}
		}
		cf := map[string]any{}
		for k, v := range r.customFields {
			cf[k] = v
		}
		out["customFields"] = cf
	}
	if r.t == "p" {
		out["encrypted"] = r.encrypted
	}
	if !r.lm.IsZero() {
		out["lm"] = restTime(r.lm)
	}
	return out
}

func (s *Server) subJSON(r *room, uid string) map[string]any {
	sb := r.subs[uid]
	u := s.users[uid]
	name, fname := r.name, r.fname
	if r.t == "d" {
		for _, other := range r.members {
			if other != uid || len(r.members) == 1 {
				name, fname = s.users[other].username, s.users[other].name
			}
		}
	}
	out := map[string]any{
		"_id": sb.id, "rid": r.id, "t": r.t, "name": name, "fname": fname,
		"u":  map[string]any{"_id": u.id, "username": u.username, "name": u.name},
		"ts": restTime(sb.ts), "_updatedAt": restTime(sb.updated), "ls": restTime(sb.ts),
		"open": sb.open, "alert": sb.unread > 0, "unread": sb.unread, "userMentions": 0, "groupMentions": 0,
	}
	if roles := r.roles[uid]; len(roles) > 0 {
		out["roles"] = append([]string(nil), roles...)
	}
	return out
}

func (s *Server) userJSON(u *user, self bool) map[string]any {
	typ := "user"
	if hasString(u.roles, "bot") {
		typ = "bot"
	}
	out := map[string]any{"_id": u.id, "username": u.username, "name": u.name, "type": typ, "status": "online", "active": true}
	if self {
		out["roles"] = append([]string(nil), u.roles...)
		out["statusConnection"] = "online"
		out["utcOffset"] = 0
	}
	return out
}

// ---- helpers ----

func str(params map[string]any, k string) string {
	s, _ := params[k].(string)
	return s
}

func num(params map[string]any, k string, def int) int {
	switch v := params[k].(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return int(f)
		}
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func hasString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

const idChars = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"

// randomID is Meteor's Random.id(): 17 characters.
func randomID() string {
	b := make([]byte, 17)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idChars[int(b[i])%len(idChars)]
	}
	return string(b)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	out := make([]byte, 43)
	for i := range out {
		out[i] = chars[int(b[i%32]+byte(i))%len(chars)]
	}
	return string(out)
}

var roomNameRE = regexp.MustCompile(`^[0-9a-zA-Z-_.]+$`)

// now is the server's time at MongoDB's precision: dates are stored in
// milliseconds, so a client that asks for what came after a message's ts
// does not get that message again.
func (s *Server) now() time.Time { return s.clock.Now().Truncate(time.Millisecond) }

// notify wakes everything waiting on a change of the realtime state.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitSubscribed waits until the user has at least n live subscriptions to
// __my_messages__ (for a test that dropped connections and waits for the
// client to be back).
func (s *Server) WaitSubscribed(ctx context.Context, userID string, n int) error {
	for {
		s.mu.Lock()
		count := 0
		for c := range s.conns {
			if c.uid == userID && c.mySubs() > 0 {
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
			return fmt.Errorf("%s has %d of %d __my_messages__ subscriptions: %w", userID, count, n, ctx.Err())
		}
	}
}

// Wait waits until cond, asked again after every change the stand-in
// sees (a request, a new message), holds.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
