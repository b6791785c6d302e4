package bot

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
)

// slowCreate delays createRoom requests on their way to the homeserver by
// delay, and lets them go on when their caller gives up: a homeserver that
// goes on creating a room after the client that asked for it died.
type slowCreate struct {
	next  http.RoundTripper
	delay time.Duration
	// asked counts the createRoom requests the client made.
	asked atomic.Int32
}

func (s *slowCreate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/createRoom") {
		return s.next.RoundTrip(r)
	}
	s.asked.Add(1)
	done := make(chan *http.Response, 1)
	detached := r.Clone(context.WithoutCancel(r.Context()))
	go func() {
		time.Sleep(s.delay)
		resp, err := s.next.RoundTrip(detached)
		if err != nil {
			resp = nil
		}
		done <- resp
	}()
	select {
	case resp := <-done:
		if resp == nil {
			return nil, context.Canceled
		}
		return resp, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

// A retry of a case room's creation right after the instance that made the
// first attempt died mid-request (a standby takes over in well under a
// second) must not make a second room: it waits for the first request to
// finish at the homeserver before it looks for the room, as a retried send
// does.
func TestARetriedCaseRoomWaitsForTheAttemptStillInFlight(t *testing.T) {
	old := retrySettle
	retrySettle = 600 * time.Millisecond
	t.Cleanup(func() { retrySettle = old })
	b, h, st := newMockBot(t)
	// The marked room's state, for findCaseRoom, from what createRoom got.
	h.Router.HandleFunc("GET /_matrix/client/v3/rooms/{room}/state/{type}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		for _, evt := range roomState(h, id.RoomID(r.PathValue("room"))) {
			if evt["type"] == r.PathValue("type") {
				h.json(w, evt["content"])
				return
			}
		}
		h.error(w, failure{http.StatusNotFound, "M_NOT_FOUND", "no such state"})
	})
	h.Router.HandleFunc("GET /_matrix/client/v3/rooms/{room}/state", func(w http.ResponseWriter, r *http.Request) {
		h.json(w, roomState(h, id.RoomID(r.PathValue("room"))))
	})
	slow := &slowCreate{next: b.Client.Client.Transport, delay: 200 * time.Millisecond}
	if slow.next == nil {
		slow.next = http.DefaultTransport
	}
	b.Client.Client.Transport = slow
	ctx := context.Background()
	c, err := st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "matrix:!dm:x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := effect(t, 1, 1, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{
		CaseID: c.ID.String(), Name: "Security report " + c.ID.String(),
		Invite: []disclosure.Person{"matrix:@reporter:x"}, Team: []disclosure.Person{"matrix:@alice:x"},
	})
	// The first attempt dies 50 ms into its request.
	killed, kill := context.WithTimeout(ctx, 50*time.Millisecond)
	defer kill()
	if _, err := b.execCreateCaseRoom(killed, e); err == nil {
		t.Fatal("the first attempt finished before it was cut off")
	}
	if n := slow.asked.Load(); n != 1 {
		t.Fatalf("the first attempt made %d requests for the room before it was cut off, want 1", n)
	}
	// The standby's retry, at once.
	e.Attempts = 2
	res, err := b.execCreateCaseRoom(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if n := slow.asked.Load(); n != 1 || res != (CreateRoomResult{Room: "matrix:!room1:x"}) {
		t.Errorf("%d rooms asked for, the retry's is %v: want the one room !room1:x", n, res)
	}
}

// roomState is the state of a room the mock created: its create event (by
// the bot) and the initial state its request named.
func roomState(h *hs, room id.RoomID) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, req := range h.created {
		if id.RoomID("!room"+strconv.Itoa(i+1)+":x") != room {
			continue
		}
		out := []map[string]any{{"type": "m.room.create", "state_key": "", "sender": botID, "room_id": room, "event_id": "$create", "origin_server_ts": 1, "content": map[string]any{"creator": botID}}}
		list, _ := req["initial_state"].([]any)
		for j, e := range list {
			evt := e.(map[string]any)
			out = append(out, map[string]any{"type": evt["type"], "state_key": "", "sender": botID, "room_id": room, "event_id": "$s" + strconv.Itoa(j), "origin_server_ts": 1, "content": evt["content"]})
		}
		return out
	}
	return nil
}
