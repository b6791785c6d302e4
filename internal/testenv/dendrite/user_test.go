package matrixtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	globallog "github.com/rs/zerolog/log"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/mockserver"
)

// laggingHS is mautrix's mock homeserver with a /sync of its own that, like
// a busy Dendrite, delivers to-device messages (room keys) a while after
// the room events sent after them: each stream in order, the two apart.
type laggingHS struct {
	*mockserver.MockServer
	user   id.UserID
	lag    time.Duration
	mu     sync.Mutex // every request but /sync's wait
	sentAt []time.Time
	// The rooms' timelines and how much of them and of the user's inbox
	// its syncs delivered.
	timeline  []map[string]any
	delivered int
	inboxSent int
	batch     int
}

func newLaggingHS(t *testing.T, user id.UserID, lag time.Duration) *laggingHS {
	h := &laggingHS{MockServer: mockserver.Create(t), user: user, lag: lag}
	r := h.Router
	r.HandleFunc("POST /_matrix/client/v3/user/{user}/filter", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"filter_id": "1"})
	})
	r.HandleFunc("POST /_matrix/client/v3/createRoom", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"room_id": "!own:x"})
	})
	r.HandleFunc("PUT /_matrix/client/v3/rooms/{room}/send/{type}/{txn}", func(w http.ResponseWriter, r *http.Request) {
		var content map[string]any
		if err := json.NewDecoder(r.Body).Decode(&content); err != nil {
			t.Error(err)
		}
		evtID := fmt.Sprintf("$sent%d", len(h.timeline)+1)
		h.timeline = append(h.timeline, map[string]any{"room_id": r.PathValue("room"), "type": r.PathValue("type"), "event_id": evtID,
			"sender": h.user, "origin_server_ts": time.Now().UnixMilli(), "content": content})
		writeJSON(w, map[string]any{"event_id": evtID})
	})
	r.HandleFunc("GET /_matrix/client/v3/sync", h.sync)
	h.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_matrix/client/v3/sync" {
			h.Router.ServeHTTP(w, r)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.Router.ServeHTTP(w, r)
		// Stamp what reached the user's inbox.
		for _, inbox := range h.DeviceInbox[h.user] {
			for len(h.sentAt) < len(inbox) {
				h.sentAt = append(h.sentAt, time.Now())
			}
		}
	})
	return h
}

func (h *laggingHS) sync(w http.ResponseWriter, r *http.Request) {
	deadline := time.Now().Add(200 * time.Millisecond)
	first := r.URL.Query().Get("since") == ""
	for {
		batch, rooms, toDevice := h.next(first)
		if first || len(rooms) > 0 || len(toDevice) > 0 || time.Now().After(deadline) {
			writeJSON(w, map[string]any{"next_batch": fmt.Sprint(batch), "rooms": map[string]any{"join": rooms}, "to_device": map[string]any{"events": toDevice}})
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// next is what a sync delivers now: the timeline events not delivered yet
// by room, and the to-device messages sent at least h.lag ago.
func (h *laggingHS) next(first bool) (batch int, rooms map[string]any, toDevice []event.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.batch++
	rooms, toDevice = map[string]any{}, []event.Event{}
	if first {
		return h.batch, rooms, toDevice
	}
	timelines := map[string][]map[string]any{}
	for _, evt := range h.timeline[h.delivered:] {
		room := fmt.Sprint(evt["room_id"])
		timelines[room] = append(timelines[room], evt)
	}
	for room, events := range timelines {
		rooms[room] = map[string]any{"timeline": map[string]any{"events": events}}
	}
	h.delivered = len(h.timeline)
	for _, inbox := range h.DeviceInbox[h.user] {
		for h.inboxSent < len(inbox) && h.inboxSent < len(h.sentAt) && time.Since(h.sentAt[h.inboxSent]) >= h.lag {
			toDevice = append(toDevice, inbox[h.inboxSent])
			h.inboxSent++
		}
	}
	return h.batch, rooms, toDevice
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// A message whose key Dendrite delivers after the message (its to-device
// stream lagging behind the timeline, as seen under load) is read by the
// time CatchUp returns: a test that counts what the user read after it
// counts that message too (seen in CI: a reporter "got none" of the bot's
// five answers, all sent, whose new room key came a second late).
func TestCatchUpWaitsForTheKeysOfWhatItDelivered(t *testing.T) {
	oldLog := globallog.Logger
	globallog.Logger = zerolog.Nop()
	t.Cleanup(func() { globallog.Logger = oldLog })
	const user, sender, room = id.UserID("@reader:x"), id.UserID("@writer:x"), id.RoomID("!room:x")
	h := newLaggingHS(t, user, time.Second)
	ctx := context.Background()
	u, err := Login(ctx, &Server{URL: h.Server.URL}, user.String(), "password", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	writer, _ := h.Login(t, ctx, sender, "WRITERDEV")
	if err := writer.StateStore.SetEncryptionEvent(ctx, room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
		t.Fatal(err)
	}
	mach := writer.Crypto.(*cryptohelper.CryptoHelper).Machine()
	// (Its requests go through the mock's lock.)
	if err := mach.ShareGroupSession(ctx, room, []id.UserID{sender, user}); err != nil {
		t.Fatal(err)
	}
	content := event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: "only the team can use that"}}
	encrypted, err := mach.EncryptMegolmEvent(ctx, room, event.EventMessage, &content)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	if len(h.sentAt) == 0 {
		t.Fatal("the writer sent the reader no key")
	}
	h.timeline = append(h.timeline, map[string]any{"room_id": room, "type": "m.room.encrypted", "event_id": "$answer", "sender": sender,
		"origin_server_ts": time.Now().UnixMilli(), "content": encrypted})
	h.mu.Unlock()

	if err := u.CatchUp(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	read := false
	for _, evt := range u.Events() {
		if body, err := Body(evt); err == nil && evt.ID == "$answer" && body == "only the team can use that" {
			read = true
		}
	}
	if !read {
		t.Error("CatchUp returned before the user read the message whose key came late")
	}
}
