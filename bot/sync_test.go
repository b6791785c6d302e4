package bot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/store"
)

// fakeHomeserver serves one batch of timeline events after "s0", then
// stops the bot at the sync after it.
func fakeHomeserver(t *testing.T, stop context.CancelFunc, events ...id.EventID) *httptest.Server {
	t.Helper()
	var timeline []map[string]any
	for _, e := range events {
		timeline = append(timeline, map[string]any{
			"type": "m.room.message", "event_id": e, "sender": "@reporter:x", "origin_server_ts": 1,
			"content": map[string]any{"msgtype": "m.text", "body": "hello"},
		})
	}
	timeline = append(timeline, map[string]any{
		"type": "m.room.message", "event_id": "$echo", "sender": "@bot:x", "origin_server_ts": 1,
		"content": map[string]any{"msgtype": "m.text", "body": "an echo"},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_matrix/client/v3/user/{user}/filter", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"filter_id": "f"})
	})
	// Noted events cannot be fetched for now, so they stay noted.
	mux.HandleFunc("GET /_matrix/client/v3/rooms/{room}/event/{event}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /_matrix/client/v3/sync", func(w http.ResponseWriter, r *http.Request) {
		resp := map[string]any{"next_batch": "s1"}
		switch r.URL.Query().Get("since") {
		case "": // the start's look for pending invites: none
		case "s0":
			resp["rooms"] = map[string]any{"join": map[string]any{"!room:x": map[string]any{"timeline": map[string]any{"events": timeline}}}}
		default:
			stop()
			resp["next_batch"] = "s2"
		}
		_ = json.NewEncoder(w).Encode(resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// scriptedHandler fails, panics or succeeds by event ID, and counts calls.
type scriptedHandler struct {
	mu    sync.Mutex
	calls map[id.EventID]int
}

func (h *scriptedHandler) HandleEvent(_ context.Context, evt *event.Event) error {
	h.mu.Lock()
	h.calls[evt.ID]++
	h.mu.Unlock()
	switch evt.ID {
	case "$fails":
		return errors.New("a message text that must not reach the store")
	case "$panics":
		panic("a message text that must not reach the store")
	}
	return nil
}

func (h *scriptedHandler) HandleUndecryptable(context.Context, *event.Event) {}

func newTestBot(t *testing.T, srv *httptest.Server) (*Bot, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.SetSyncPosition(ctx, "s0"); err != nil {
		t.Fatal(err)
	}
	cli, err := mautrix.NewClient(srv.URL, "@bot:x", "token")
	if err != nil {
		t.Fatal(err)
	}
	return &Bot{Client: cli, store: st, log: zerolog.Nop(), syncBackoff: func(int) time.Duration { return time.Millisecond }}, st
}

func runUntilStopped(t *testing.T, b *Bot, ctx context.Context, h Handler) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, h) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal("Run:", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bot did not get past the batch")
	}
}

func TestEventsThatKeepFailingAreParkedAndTheSyncGoesOn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, st := newTestBot(t, fakeHomeserver(t, cancel, "$fails", "$ok", "$panics"))
	h := &scriptedHandler{calls: map[id.EventID]int{}}
	runUntilStopped(t, b, ctx, h)

	if pos, err := st.SyncPosition(context.Background()); err != nil || pos != "s1" {
		t.Errorf("sync position = %q, %v; want s1, past the failing batch", pos, err)
	}
	for _, e := range []id.EventID{"$fails", "$panics"} {
		if got := h.calls[e]; got != maxBatchRetries {
			t.Errorf("%s handled %d times, want %d", e, got, maxBatchRetries)
		}
	}
	if h.calls["$ok"] == 0 || h.calls["$echo"] != 0 {
		t.Errorf("calls = %v: want $ok handled and the bot's echo not", h.calls)
	}
	dead, err := st.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.DeadLetter{}
	for _, d := range dead {
		got[d.Event] = d
	}
	if len(got) != 2 {
		t.Fatalf("dead letters = %+v, want $fails and $panics only", dead)
	}
	for e, category := range map[string]string{"$fails": categoryHandler, "$panics": categoryPanic} {
		d := got[e]
		if d.Room != "!room:x" || d.Attempts != maxBatchRetries || d.Category != category {
			t.Errorf("dead letter %s = %+v, want room !room:x, %d attempts, category %q", e, d, maxBatchRetries, category)
		}
	}
}

// A batch that fails for no one event (here the sync machinery itself)
// parks the events it could not hand over, and the sync goes on.
func TestABatchThatKeepsFailingParksItsEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, st := newTestBot(t, fakeHomeserver(t, cancel, "$a", "$b", "$noted"))
	// Noted as an encrypted event awaiting its key: tried again at the next
	// start, so not a dead letter (and still noted).
	if err := st.NoteEncrypted(ctx, "!room:x", "$noted", time.Now()); err != nil {
		t.Fatal(err)
	}
	tries := 0
	b.Client.Syncer.(*mautrix.DefaultSyncer).OnSync(func(_ context.Context, resp *mautrix.RespSync, _ string) bool {
		if len(resp.Rooms.Join) > 0 {
			tries++
			panic("the crypto machinery broke")
		}
		return true
	})
	h := &scriptedHandler{calls: map[id.EventID]int{}}
	runUntilStopped(t, b, ctx, h)

	if tries != maxBatchRetries {
		t.Errorf("batch tried %d times, want %d", tries, maxBatchRetries)
	}
	if pos, err := st.SyncPosition(context.Background()); err != nil || pos != "s1" {
		t.Errorf("sync position = %q, %v; want s1, past the failing batch", pos, err)
	}
	dead, err := st.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 {
		t.Fatalf("dead letters = %+v, want $a and $b (not the bot's echo, nor the noted event)", dead)
	}
	if noted, err := st.AwaitingEvents(context.Background()); err != nil || len(noted) != 1 || noted[0].Event != "$noted" {
		t.Errorf("noted events = %+v, %v; want $noted still noted", noted, err)
	}
	for _, d := range dead {
		if (d.Event != "$a" && d.Event != "$b") || d.Category != categoryBatch || d.Room != "!room:x" {
			t.Errorf("dead letter %+v, want $a or $b of !room:x in category %q", d, categoryBatch)
		}
	}
}

// The wait before a sync is tried again runs on the bot's clock, so the
// e2e tests can step through a homeserver outage's backoff.
func TestASyncRetryWaitsOnTheBotsClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	tries := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_matrix/client/v3/user/{user}/filter", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"filter_id": "f"})
	})
	mux.HandleFunc("GET /_matrix/client/v3/sync", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("since") == "s0" {
			mu.Lock()
			tries++
			first := tries == 1
			mu.Unlock()
			if first {
				w.WriteHeader(http.StatusBadGateway) // the homeserver is away
				return
			}
		}
		if r.URL.Query().Get("since") == "s1" {
			cancel()
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"next_batch": "s1"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b, _ := newTestBot(t, srv)
	b.syncBackoff = func(int) time.Duration { return time.Hour }
	clock := clockwork.NewFakeClock()
	b.Clock = clock

	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, &scriptedHandler{calls: map[id.EventID]int{}}) }()
	// The failed sync waits its hour on the clock, not in real time.
	waitCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := clock.BlockUntilContext(waitCtx, 1); err != nil {
		t.Fatal("the retry does not wait on the bot's clock:", err)
	}
	clock.Advance(time.Hour)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal("Run:", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the sync was not tried again when the clock reached its retry")
	}
	mu.Lock()
	defer mu.Unlock()
	if tries != 2 {
		t.Errorf("the batch after s0 was asked for %d times, want 2", tries)
	}
}
