package bot

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	b, _, st := newMockBot(t)
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
