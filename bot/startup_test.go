package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// A first start that syncs from scratch again (the first was cut short)
// handles what followed the bot's own join, and nothing from before it.
func TestAFirstSyncHandlesWhatFollowsTheBotsJoin(t *testing.T) {
	const self = id.UserID("@bot:x")
	parse := func(raw string) *event.Event {
		var evt event.Event
		if err := json.Unmarshal([]byte(raw), &evt); err != nil {
			t.Fatal(err)
		}
		return &evt
	}
	before := parse(`{"type":"m.room.message","event_id":"$before","sender":"@alice:x","content":{"body":"old"}}`)
	invite := parse(`{"type":"m.room.member","event_id":"$invite","sender":"@alice:x","state_key":"@bot:x","content":{"membership":"invite"}}`)
	join := parse(`{"type":"m.room.member","event_id":"$join","sender":"@bot:x","state_key":"@bot:x","content":{"membership":"join"},"unsigned":{"prev_content":{"membership":"invite"}}}`)
	rename := parse(`{"type":"m.room.member","event_id":"$rename","sender":"@bot:x","state_key":"@bot:x","content":{"membership":"join","displayname":"secbot"},"unsigned":{"prev_content":{"membership":"join"}}}`)
	after := parse(`{"type":"m.room.message","event_id":"$after","sender":"@alice:x","content":{"body":"!sec help"}}`)
	other := parse(`{"type":"m.room.member","event_id":"$other","sender":"@bob:x","state_key":"@bob:x","content":{"membership":"join"}}`)

	history, rest := splitAtOwnJoin([]*event.Event{before, invite, join, rename, after}, self)
	if len(history) != 2 || len(rest) != 3 || rest[0].ID != "$join" || rest[2].ID != "$after" {
		t.Errorf("split at the join: got %v and %v, want [$before $invite] and [$join $rename $after]", ids(history), ids(rest))
	}
	// Joined before the first start: all of it is history.
	if history, rest := splitAtOwnJoin([]*event.Event{before, other, rename, after}, self); len(history) != 4 || len(rest) != 0 {
		t.Errorf("without the bot's join: got %v and %v, want all history", ids(history), ids(rest))
	}
}
func ids(events []*event.Event) []id.EventID {
	out := make([]id.EventID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// inviteRecorder records the invites of the bot it is handed.
type inviteRecorder struct {
	mu    sync.Mutex
	rooms []id.RoomID
}

func (h *inviteRecorder) HandleEvent(_ context.Context, evt *event.Event) error {
	if evt.Type == event.StateMember && evt.Content.AsMember().Membership == event.MembershipInvite {
		h.mu.Lock()
		h.rooms = append(h.rooms, evt.RoomID)
		h.mu.Unlock()
	}
	return nil
}

func (h *inviteRecorder) HandleUndecryptable(context.Context, *event.Event) {}

// An invite whose batch went by unanswered (the sync position moved past
// it) is still answered: every start looks for invites still pending.
func TestAStartAnswersInvitesStillPending(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_matrix/client/v3/user/{user}/filter", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"filter_id": "f"})
	})
	mux.HandleFunc("GET /_matrix/client/v3/sync", func(w http.ResponseWriter, r *http.Request) {
		resp := map[string]any{"next_batch": "s9"}
		if r.URL.Query().Get("since") == "" {
			resp["rooms"] = map[string]any{"invite": map[string]any{"!team:x": map[string]any{"invite_state": map[string]any{"events": []any{
				map[string]any{"type": "m.room.name", "state_key": "", "sender": "@alice:x", "content": map[string]any{"name": "Security team"}},
				map[string]any{"type": "m.room.member", "state_key": "@bot:x", "sender": "@alice:x", "content": map[string]any{"membership": "invite"}},
			}}}}}
		} else {
			cancel()
		}
		_ = json.NewEncoder(w).Encode(resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b, _ := newTestBot(t, srv) // its sync position is past the invite's batch
	h := &inviteRecorder{}
	runUntilStopped(t, b, ctx, h)
	if len(h.rooms) != 1 || h.rooms[0] != "!team:x" {
		t.Errorf("invites answered: %v, want the team room's", h.rooms)
	}
}

// eventRecorder records the IDs of the messages it is handed.
type eventRecorder struct {
	mu  sync.Mutex
	ids []id.EventID
}

func (h *eventRecorder) HandleEvent(_ context.Context, evt *event.Event) error {
	if evt.Type == event.EventMessage {
		h.mu.Lock()
		h.ids = append(h.ids, evt.ID)
		h.mu.Unlock()
	}
	return nil
}

func (h *eventRecorder) HandleUndecryptable(context.Context, *event.Event) {}

// A first sync handles nothing old (a lost database too); a first sync
// repeated after a start cut short handles what followed the bot's join.
func TestAFirstSyncRepeatedHandlesWhatFollowedTheJoin(t *testing.T) {
	for _, again := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		mux := http.NewServeMux()
		mux.HandleFunc("POST /_matrix/client/v3/user/{user}/filter", func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"filter_id": "f"})
		})
		mux.HandleFunc("GET /_matrix/client/v3/sync", func(w http.ResponseWriter, r *http.Request) {
			resp := map[string]any{"next_batch": "s1"}
			if r.URL.Query().Get("since") == "" {
				msg := func(evtID string) map[string]any {
					return map[string]any{"type": "m.room.message", "event_id": evtID, "sender": "@alice:x", "origin_server_ts": 1, "content": map[string]any{"msgtype": "m.text", "body": "!sec help"}}
				}
				join := map[string]any{"type": "m.room.member", "event_id": "$join", "sender": "@bot:x", "state_key": "@bot:x", "origin_server_ts": 1,
					"content": map[string]any{"membership": "join"}, "unsigned": map[string]any{"prev_content": map[string]any{"membership": "invite"}}}
				resp["rooms"] = map[string]any{"join": map[string]any{"!team:x": map[string]any{"timeline": map[string]any{"events": []any{msg("$before"), join, msg("$after")}}}}}
			} else {
				cancel()
			}
			_ = json.NewEncoder(w).Encode(resp)
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		b, st := newTestBot(t, srv)
		if err := st.SetSyncPosition(ctx, ""); err != nil { // the start cut short
			t.Fatal(err)
		}
		if !again {
			// A database that never synced (a first start, a lost database).
			if _, err := st.DB.Exec(ctx, `DELETE FROM sync_position`); err != nil {
				t.Fatal(err)
			}
		}
		h := &eventRecorder{}
		runUntilStopped(t, b, ctx, h)
		want := []id.EventID(nil)
		if again {
			want = []id.EventID{"$after"}
		}
		if len(h.ids) != len(want) || (len(want) > 0 && h.ids[0] != want[0]) {
			t.Errorf("first sync (again: %v) handled %v, want %v", again, h.ids, want)
		}
	}
}
