package rocketchat

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

type sendResult struct {
	sent Sent
	err  error
}

// statuses are the answers the stand-in gave to one route, in order.
func statuses(s *rctest.Server, route string) []int {
	var out []int
	for _, r := range s.Requests() {
		if r.Route == route {
			out = append(out, r.Status)
		}
	}
	return out
}

func TestA429IsWaitedOutUntilTheResetThenTheCallSucceeds(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, rctest.Options{}, Options{Clock: clock})
	ctx := ctxT(t)
	aliceID, aliceToken := e.s.AddUser("alice")
	dm, err := e.c.CreateDM(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	// One call a minute per client IP, and alice (same IP) spends it.
	e.s.SetRateLimit("POST", "chat.sendMessage", 1, time.Minute)
	alice, err := New(e.s.URL(), aliceID, aliceToken, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendMessage(ctx, Message{ID: "alice-1", RoomID: dm.ID, Text: "hi"}); err != nil {
		t.Fatal(err)
	}

	done := make(chan sendResult, 1)
	go func() {
		sent, err := e.c.SendMessage(ctx, Message{ID: "outbox-1-0", RoomID: dm.ID, Text: "hello"})
		done <- sendResult{sent, err}
	}()
	// The client got its 429 and waits on the clock.
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := statuses(e.s, "chat.sendMessage"); len(got) != 2 || got[1] != http.StatusTooManyRequests {
		t.Fatalf("chat.sendMessage answers %v, want 200 then 429", got)
	}
	clock.Advance(time.Minute - time.Second)
	select {
	case r := <-done:
		t.Fatalf("the call returned before the limit's reset: %+v", r)
	default:
	}
	clock.Advance(time.Second)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := statuses(e.s, "chat.sendMessage"); len(got) != 3 || got[2] != http.StatusOK {
		t.Fatalf("chat.sendMessage answers %v, want 200, 429, 200", got)
	}
	if n := len(e.s.Messages(dm.ID)); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	if !strings.Contains(e.logs.String(), "rate limit") {
		t.Fatalf("the wait is not in the log:\n%s", e.logs.String())
	}
}

func TestASpentLimitIsWaitedForBeforeTheNextCall(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, rctest.Options{}, Options{Clock: clock})
	ctx := ctxT(t)
	e.s.AddUser("alice")
	dm, err := e.c.CreateDM(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	e.s.SetRateLimit("POST", "chat.sendMessage", 2, 30*time.Second)
	for i, id := range []string{"a", "b"} {
		if _, err := e.c.SendMessage(ctx, Message{ID: id, RoomID: dm.ID, Text: "x"}); err != nil {
			t.Fatal(i, err)
		}
	}
	done := make(chan sendResult, 1)
	go func() {
		sent, err := e.c.SendMessage(ctx, Message{ID: "c", RoomID: dm.ID, Text: "x"})
		done <- sendResult{sent, err}
	}()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if r := <-done; r.err != nil {
		t.Fatal(r.err)
	}
	// X-RateLimit-Remaining: 0 was honoured: the server never had to refuse.
	for _, st := range statuses(e.s, "chat.sendMessage") {
		if st != http.StatusOK {
			t.Fatalf("chat.sendMessage answers %v", statuses(e.s, "chat.sendMessage"))
		}
	}
}

func TestAWaitLongerThanMaxWaitFailsAtOnceAsRetryable(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, rctest.Options{}, Options{Clock: clock, MaxWait: 10 * time.Second})
	ctx := ctxT(t)
	aliceID, aliceToken := e.s.AddUser("alice")
	e.s.SetDefaultRateLimit(1, time.Minute)
	alice, err := New(e.s.URL(), aliceID, aliceToken, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Me(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Me(ctx)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter != time.Minute {
		t.Fatalf("got %v, want a 429 with RetryAfter 1m", err)
	}
	if !IsRetryable(err) || IsPermanent(err) {
		t.Fatalf("a 429 is retryable: %v", err)
	}
	e.noToken(t, err)
}

func TestABotWithTheBypassPermissionIsNotSlowedDown(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, rctest.Options{}, Options{Clock: clock})
	ctx := ctxT(t)
	e.s.SetRoles(e.botID, "bot")
	e.s.SetDefaultRateLimit(1, time.Minute)
	for range 5 {
		if _, err := e.c.Me(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Rocket.Chat sends no Retry-After, but a proxy in front of it may: it is
// honoured when it asks for longer than X-RateLimit-Reset.
func TestRetryAfterFromAProxyIsHonoured(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	start := clock.Now()
	calls := 0
	var retriedAt time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		retriedAt = clock.Now()
		if calls == 1 {
			w.Header().Set("Retry-After", "5")
			w.Header().Set("X-RateLimit-Reset", "1764583201000") // 10:00:01
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"success":false,"error":"slow down"}`))
			return
		}
		_, _ = w.Write([]byte(`{"_id":"bot","username":"secbot","success":true}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL, "bot", "tok", Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.Me(ctx); done <- err }()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(4 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("returned before Retry-After: %v", err)
	default:
	}
	clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls != 2 || retriedAt.Sub(start) < 5*time.Second {
		t.Fatalf("%d calls, the retry %s after the 429; want it 5s after", calls, retriedAt.Sub(start))
	}
}
