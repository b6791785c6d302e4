package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/mockserver"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// hs is mautrix's in-process mock homeserver with the room endpoints the
// effects use added: it records every request and answers as scripted.
type hs struct {
	*mockserver.MockServer
	t  *testing.T
	mu sync.Mutex
	// What it was asked.
	created []map[string]any
	sends   []sent
	invites []roomUser
	kicks   []roomUser
	// What it answers: a status (and M_ code, message) per endpoint
	// ("create", "send", "invite", "kick"), members per room, the bot's rooms.
	fail    map[string]failure
	members map[id.RoomID]map[id.UserID]event.Membership
	joined  []id.RoomID
	nextID  int
	// forgetTxns makes it take a repeated transaction ID for a new
	// message, as Dendrite does when the first request was cut off.
	forgetTxns bool
	// Rooms' state events by type and state key (createRoom's and PUT's),
	// the room directory, and what was asked of them.
	state          map[id.RoomID]map[string]map[string]map[string]any
	aliases        map[id.RoomAlias]id.RoomID
	stateSends     []sent
	deletedAliases []id.RoomAlias
	// What a busy homeserver does: rooms made but not yet listed in the
	// bot's joined rooms; createRoom answers lost (the room made, the
	// client cut off: a crash); alias lookups answered "not found" for a
	// while although the alias is set.
	unlisted     map[id.RoomID]bool
	noAliases    bool // the homeserver's rules let the bot make no alias
	loseCreates  int
	aliasLookups int
	aliasLag     int
}

type sent struct {
	Room id.RoomID
	Type string
	Txn  string
	Body map[string]any
	ID   id.EventID
}

type roomUser struct {
	Room   id.RoomID
	User   id.UserID
	Reason string
}

type failure struct {
	Status  int
	ErrCode string
	Err     string
}

const botID = id.UserID("@bot:x")

func newHS(t *testing.T) *hs {
	h := &hs{MockServer: mockserver.Create(t), t: t, fail: map[string]failure{}, members: map[id.RoomID]map[id.UserID]event.Membership{},
		state: map[id.RoomID]map[string]map[string]map[string]any{}, aliases: map[id.RoomAlias]id.RoomID{}, unlisted: map[id.RoomID]bool{}}
	r := h.Router
	r.HandleFunc("POST /_matrix/client/v3/createRoom", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		h.decode(r, &body)
		if h.failed(w, "create") {
			return
		}
		h.mu.Lock()
		var alias id.RoomAlias
		if name, _ := body["room_alias_name"].(string); name != "" {
			if h.noAliases {
				h.mu.Unlock()
				h.error(w, failure{http.StatusForbidden, "M_FORBIDDEN", "Not allowed to create alias"})
				return
			}
			alias = id.NewRoomAlias(name, "x")
			if _, taken := h.aliases[alias]; taken {
				h.mu.Unlock()
				h.error(w, failure{http.StatusBadRequest, "M_ROOM_IN_USE", "Room alias already exists."})
				return
			}
		}
		h.created = append(h.created, body)
		roomID := id.RoomID(fmt.Sprintf("!room%d:x", len(h.created)))
		h.joined = append(h.joined, roomID)
		m := map[id.UserID]event.Membership{botID: event.MembershipJoin}
		if inv, ok := body["invite"].([]any); ok {
			for _, u := range inv {
				m[id.UserID(u.(string))] = event.MembershipInvite
			}
		}
		h.members[roomID] = m
		// The state as a homeserver makes it: the creator's create event,
		// the initial state, and the alias in the directory and the state.
		h.setState(roomID, "m.room.create", "", botID, map[string]any{"room_version": "10"})
		list, _ := body["initial_state"].([]any)
		for _, e := range list {
			evt := e.(map[string]any)
			sk, _ := evt["state_key"].(string)
			content, _ := evt["content"].(map[string]any)
			h.setState(roomID, evt["type"].(string), sk, botID, content)
		}
		if alias != "" {
			h.aliases[alias] = roomID
			h.setState(roomID, "m.room.canonical_alias", "", botID, map[string]any{"alias": alias})
		}
		lose := h.loseCreates > 0
		if lose {
			h.loseCreates--
		}
		h.mu.Unlock()
		if lose {
			h.error(w, failure{http.StatusBadGateway, "M_UNKNOWN", "the client went away"})
			return
		}
		h.json(w, map[string]any{"room_id": roomID})
	})
	r.HandleFunc("GET /_matrix/client/v3/directory/room/{alias}", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.aliasLookups++
		roomID, ok := h.aliases[id.RoomAlias(r.PathValue("alias"))]
		if h.aliasLag > 0 {
			h.aliasLag--
			ok = false
		}
		h.mu.Unlock()
		if !ok {
			h.error(w, failure{http.StatusNotFound, "M_NOT_FOUND", "Room alias not found"})
			return
		}
		h.json(w, map[string]any{"room_id": roomID, "servers": []string{"x"}})
	})
	r.HandleFunc("DELETE /_matrix/client/v3/directory/room/{alias}", func(w http.ResponseWriter, r *http.Request) {
		alias := id.RoomAlias(r.PathValue("alias"))
		h.mu.Lock()
		_, ok := h.aliases[alias]
		delete(h.aliases, alias)
		h.deletedAliases = append(h.deletedAliases, alias)
		h.mu.Unlock()
		if !ok {
			h.error(w, failure{http.StatusNotFound, "M_NOT_FOUND", "Room alias not found"})
			return
		}
		h.json(w, map[string]any{})
	})
	r.HandleFunc("GET /_matrix/client/v3/rooms/{room}/state", func(w http.ResponseWriter, r *http.Request) {
		roomID := id.RoomID(r.PathValue("room"))
		h.mu.Lock()
		events := []map[string]any{}
		for _, byKey := range h.state[roomID] {
			for _, evt := range byKey {
				events = append(events, evt)
			}
		}
		_, ok := h.state[roomID]
		h.mu.Unlock()
		if !ok {
			h.error(w, failure{http.StatusForbidden, "M_FORBIDDEN", "not in room"})
			return
		}
		h.json(w, events)
	})
	r.HandleFunc("GET /_matrix/client/v3/rooms/{room}/state/{type}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		evt, ok := h.state[id.RoomID(r.PathValue("room"))][r.PathValue("type")][r.PathValue("key")]
		h.mu.Unlock()
		if !ok {
			h.error(w, failure{http.StatusNotFound, "M_NOT_FOUND", "no such state"})
			return
		}
		h.json(w, evt["content"])
	})
	r.HandleFunc("PUT /_matrix/client/v3/rooms/{room}/state/{type}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		h.decode(r, &body)
		if h.failed(w, "state") {
			return
		}
		roomID := id.RoomID(r.PathValue("room"))
		h.mu.Lock()
		h.nextID++
		s := sent{Room: roomID, Type: r.PathValue("type"), Body: body, ID: id.EventID(fmt.Sprintf("$ev%d", h.nextID))}
		h.stateSends = append(h.stateSends, s)
		h.setState(roomID, s.Type, r.PathValue("key"), botID, body)
		h.mu.Unlock()
		h.json(w, map[string]any{"event_id": s.ID})
	})
	r.HandleFunc("PUT /_matrix/client/v3/rooms/{room}/send/{type}/{txn}", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		h.decode(r, &body)
		if h.failed(w, "send") {
			return
		}
		h.mu.Lock()
		s := sent{Room: id.RoomID(r.PathValue("room")), Type: r.PathValue("type"), Txn: r.PathValue("txn"), Body: body}
		// A repeated transaction ID is the same event, as a homeserver has it.
		for _, old := range h.sends {
			if old.Txn == s.Txn && !h.forgetTxns {
				h.mu.Unlock()
				h.json(w, map[string]any{"event_id": old.ID})
				return
			}
		}
		h.nextID++
		s.ID = id.EventID(fmt.Sprintf("$ev%d", h.nextID))
		h.sends = append(h.sends, s)
		h.mu.Unlock()
		h.json(w, map[string]any{"event_id": s.ID})
	})
	r.HandleFunc("GET /_matrix/client/v3/rooms/{room}/messages", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		chunk := []map[string]any{}
		for i := len(h.sends) - 1; i >= 0; i-- {
			if s := h.sends[i]; s.Room == id.RoomID(r.PathValue("room")) {
				chunk = append(chunk, map[string]any{"event_id": s.ID, "type": s.Type, "sender": botID, "room_id": s.Room, "origin_server_ts": 1, "content": s.Body})
			}
		}
		h.mu.Unlock()
		h.json(w, map[string]any{"start": "s", "chunk": chunk})
	})
	for _, what := range []string{"invite", "kick"} {
		r.HandleFunc("POST /_matrix/client/v3/rooms/{room}/"+what, func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				UserID id.UserID `json:"user_id"`
				Reason string    `json:"reason"`
			}
			h.decode(r, &body)
			if h.failed(w, what) {
				return
			}
			h.mu.Lock()
			ru := roomUser{Room: id.RoomID(r.PathValue("room")), User: body.UserID, Reason: body.Reason}
			if what == "invite" {
				h.invites = append(h.invites, ru)
			} else {
				h.kicks = append(h.kicks, ru)
			}
			h.mu.Unlock()
			h.json(w, map[string]any{})
		})
	}
	r.HandleFunc("GET /_matrix/client/v3/rooms/{room}/members", func(w http.ResponseWriter, r *http.Request) {
		roomID := id.RoomID(r.PathValue("room"))
		h.mu.Lock()
		m, ok := h.members[roomID]
		chunk := []map[string]any{}
		for u, ms := range m {
			chunk = append(chunk, map[string]any{"type": "m.room.member", "state_key": u, "sender": u, "room_id": roomID, "event_id": "$m" + string(u), "origin_server_ts": 1, "content": map[string]any{"membership": ms}})
		}
		h.mu.Unlock()
		if !ok {
			h.error(w, failure{http.StatusForbidden, "M_FORBIDDEN", "not in room"})
			return
		}
		h.json(w, map[string]any{"chunk": chunk})
	})
	r.HandleFunc("GET /_matrix/client/v3/joined_rooms", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		listed := []id.RoomID{}
		for _, roomID := range h.joined {
			if !h.unlisted[roomID] {
				listed = append(listed, roomID)
			}
		}
		h.json(w, map[string]any{"joined_rooms": listed})
	})
	r.HandleFunc("GET /_matrix/client/v3/user/{user}/account_data/{type}", func(w http.ResponseWriter, r *http.Request) {
		data, ok := h.AccountData[id.UserID(r.PathValue("user"))][event.Type{Type: r.PathValue("type"), Class: event.AccountDataEventType}]
		if !ok {
			h.error(w, failure{http.StatusNotFound, "M_NOT_FOUND", "no account data"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	})
	return h
}

// setState sets a room's state event (h.mu held).
func (h *hs) setState(roomID id.RoomID, typ, key string, sender id.UserID, content map[string]any) {
	if h.state[roomID] == nil {
		h.state[roomID] = map[string]map[string]map[string]any{}
	}
	if h.state[roomID][typ] == nil {
		h.state[roomID][typ] = map[string]map[string]any{}
	}
	h.nextID++
	h.state[roomID][typ][key] = map[string]any{"type": typ, "state_key": key, "sender": sender, "room_id": roomID,
		"event_id": fmt.Sprintf("$state%d", h.nextID), "origin_server_ts": 1, "content": content}
}

func (h *hs) decode(r *http.Request, v any) {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		h.t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
	}
}

func (h *hs) json(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *hs) error(w http.ResponseWriter, f failure) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errcode": f.ErrCode, "error": f.Err})
}

// failed answers with the endpoint's scripted failure, if it has one.
func (h *hs) failed(w http.ResponseWriter, endpoint string) bool {
	h.mu.Lock()
	f, ok := h.fail[endpoint]
	h.mu.Unlock()
	if ok {
		h.error(w, f)
	}
	return ok
}

// newMockBot is a bot without end-to-end encryption on the mock homeserver
// and a fresh store.
func newMockBot(t *testing.T) (*Bot, *hs, *store.Store) {
	t.Helper()
	h := newHS(t)
	h.AccessTokenToUserID["bot-token"] = struct {
		UserID   id.UserID
		DeviceID id.DeviceID
	}{botID, "BOTDEV"}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cli, err := mautrix.NewClient(h.Server.URL, botID, "bot-token")
	if err != nil {
		t.Fatal(err)
	}
	cli.Client = h.Server.Client()
	cli.StateStore = mautrix.NewMemoryStateStore()
	return &Bot{Client: cli, store: st, log: zerolog.Nop(), synced: make(chan struct{})}, h, st
}

func effect(t *testing.T, id int64, attempts int, kind string, payload any) store.Effect {
	t.Helper()
	data, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return store.Effect{ID: id, Kind: kind, Payload: data, Attempts: attempts}
}

// path walks nested JSON objects.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestASendIsANoticeMarkedWithItsEffectAndTransactionID(t *testing.T) {
	b, h, _ := newMockBot(t)
	res, err := b.execSend(context.Background(), effect(t, 7, 1, outbox.KindSend, outbox.SendEffect{
		To: outbox.Target{Room: "!r:x"}, Markdown: "**SR-2026-0001** opened", Mentions: []disclosure.Person{"@alice:x"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.sends) != 1 {
		t.Fatalf("%d messages sent, want 1", len(h.sends))
	}
	s := h.sends[0]
	if s.Room != "!r:x" || s.Type != "m.room.message" || s.Txn != "secbot.7" {
		t.Errorf("sent %s to %s with transaction %q, want m.room.message to !r:x with secbot.7", s.Type, s.Room, s.Txn)
	}
	if res != (SendResult{Event: string(s.ID)}) {
		t.Errorf("result %#v, want the sent event %s", res, s.ID)
	}
	if s.Body["msgtype"] != "m.notice" || s.Body["body"] != "**SR-2026-0001** opened" || s.Body["formatted_body"] != "<strong>SR-2026-0001</strong> opened" {
		t.Errorf("content %v, want a notice rendered from Markdown", s.Body)
	}
	if s.Body[effectMarker] != float64(7) {
		t.Errorf("marker %v, want the effect's ID 7", s.Body[effectMarker])
	}
	if users := path(s.Body, "m.mentions", "user_ids"); fmt.Sprint(users) != "[@alice:x]" {
		t.Errorf("mentions %v, want [@alice:x]", users)
	}
	if rel := s.Body["m.relates_to"]; rel != nil {
		t.Errorf("a plain message relates to %v", rel)
	}
}

func TestASendGoesIntoItsThreadOrAnswersItsMessage(t *testing.T) {
	b, h, _ := newMockBot(t)
	ctx := context.Background()
	if _, err := b.execSend(ctx, effect(t, 1, 1, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!r:x"}, Markdown: "in thread", ThreadRoot: "$root"})); err != nil {
		t.Fatal(err)
	}
	if _, err := b.execSend(ctx, effect(t, 2, 1, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!r:x"}, Markdown: "a reply", ReplyTo: "$question"})); err != nil {
		t.Fatal(err)
	}
	thread := h.sends[0].Body["m.relates_to"]
	if path(thread, "rel_type") != "m.thread" || path(thread, "event_id") != "$root" || path(thread, "m.in_reply_to", "event_id") != "$root" || path(thread, "is_falling_back") != true {
		t.Errorf("threaded message relates to %v, want the thread of $root", thread)
	}
	reply := h.sends[1].Body["m.relates_to"]
	if path(reply, "m.in_reply_to", "event_id") != "$question" || path(reply, "rel_type") != nil {
		t.Errorf("reply relates to %v, want a reply to $question outside any thread", reply)
	}
}

// A retry (after a crash that may have cut off the first attempt) finds
// the message already sent and sends nothing; when none went out, it
// sends with the same transaction ID.
func TestARetriedSendFindsItsMessageOrReusesItsTransactionID(t *testing.T) {
	old := retrySettle
	retrySettle = 0
	t.Cleanup(func() { retrySettle = old })
	b, h, _ := newMockBot(t)
	ctx := context.Background()
	first := effect(t, 3, 1, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!r:x"}, Markdown: "once"})
	res, err := b.execSend(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	// Another message in the room, which the retry must not take for its own.
	if _, err := b.execSend(ctx, effect(t, 4, 1, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!r:x"}, Markdown: "other"})); err != nil {
		t.Fatal(err)
	}
	// The homeserver does not recognise the transaction ID again: only
	// the marker tells that the message went out.
	h.forgetTxns = true
	retry := first
	retry.Attempts = 2
	again, err := b.execSend(ctx, retry)
	if err != nil {
		t.Fatal(err)
	}
	if again != res || len(h.sends) != 2 {
		t.Errorf("the retry returned %v after %d sends, want %v and no new send", again, len(h.sends), res)
	}
	// A retry of a send that never reached the room.
	lost := effect(t, 5, 2, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!other:x"}, Markdown: "lost"})
	if _, err := b.execSend(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if len(h.sends) != 3 || h.sends[2].Txn != "secbot.5" || h.sends[2].Room != "!other:x" {
		t.Errorf("sends %+v, want a third with transaction secbot.5", h.sends)
	}
}

func TestASendThatTheHomeserverRefusesIsPermanentAndTold(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	h.fail["send"] = failure{http.StatusForbidden, "M_FORBIDDEN", "not allowed to post"}
	_, err := b.execSend(ctx, effect(t, 9, 1, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!announce:x"}, Markdown: "published", IfRefused: "!team:x"}))
	if !errors.Is(err, ErrPermanent) {
		t.Fatalf("a refused send: %v, want permanent", err)
	}
	rows, err := st.DueEffects(ctx, time.Now().Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Kind != outbox.KindSend {
		t.Fatalf("queued %+v, want one notice", rows)
	}
	var notice outbox.SendEffect
	if err := rows[0].Decode(&notice); err != nil {
		t.Fatal(err)
	}
	if notice.To.Room != "!team:x" || !containsAll(notice.Markdown, "!announce:x", "M_FORBIDDEN") {
		t.Errorf("notice %+v, want one to !team:x naming the room and the refusal", notice)
	}
	h.fail["send"] = failure{http.StatusBadGateway, "M_UNKNOWN", "upstream"}
	if _, err := b.execSend(ctx, effect(t, 10, 1, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!r:x"}, Markdown: "x"})); err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("a send that met a 502: %v, want an error to retry", err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
