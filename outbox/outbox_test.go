package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

var errGone = errors.New("gone for good")

func TestOutboxRetriesGivesUpAndKeepsLanesInOrder(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	calls := map[string]int{}
	o := New(f.store, f.clock, zerolog.Nop(), func(err error) bool { return errors.Is(err, errGone) }, nil)
	o.Register("flaky", func(_ context.Context, e store.Effect) (any, error) {
		calls["flaky"]++
		if e.Attempts < 3 {
			return nil, errors.New("try again")
		}
		return map[string]int{"attempts": e.Attempts}, nil
	})
	o.Register("limited", func(_ context.Context, e store.Effect) (any, error) {
		calls["limited"]++
		if e.Attempts == 1 {
			return nil, &RetryAfterError{Err: errors.New("rate limited"), After: 7 * time.Second}
		}
		return nil, nil
	})
	o.Register("doomed", func(context.Context, store.Effect) (any, error) {
		calls["doomed"]++
		return nil, errGone
	})
	o.Register("after", func(context.Context, store.Effect) (any, error) {
		calls["after"]++
		return nil, nil
	})
	flaky, _ := Enqueue(ctx, f.store, "A", "flaky", struct{}{}, f.clock.Now())
	limited, _ := Enqueue(ctx, f.store, "B", "limited", struct{}{}, f.clock.Now())
	doomed, _ := Enqueue(ctx, f.store, "C", "doomed", struct{}{}, f.clock.Now())
	after, _ := Enqueue(ctx, f.store, "C", "after", struct{}{}, f.clock.Now())

	runDue := func() {
		due, err := f.store.DueEffects(ctx, f.clock.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range due {
			o.runOne(ctx, e)
		}
	}
	runDue()
	if calls["after"] != 0 {
		t.Error("an effect ran before the one ahead of it in its lane was finished")
	}
	runDue() // the doomed head is failed, so its lane moves on
	if calls["after"] != 1 {
		t.Errorf("the lane did not move on after a permanent failure: %v", calls)
	}
	// The rate-limited effect waits its Retry-After, not the usual backoff.
	f.clock.Advance(6 * time.Second)
	runDue()
	if calls["limited"] != 1 {
		t.Errorf("the rate-limited effect ran before its Retry-After: %d calls", calls["limited"])
	}
	for range 10 {
		f.clock.Advance(10 * time.Minute)
		runDue()
	}
	for id, want := range map[int64]string{flaky: "done", limited: "done", doomed: "failed", after: "done"} {
		state, _, err := f.store.EffectResult(ctx, id)
		if err != nil || state != want {
			t.Errorf("effect %d is %q (%v), want %q", id, state, err, want)
		}
	}
	if calls["flaky"] != 3 || calls["doomed"] != 1 {
		t.Errorf("calls = %v: flaky should run 3 times, doomed once", calls)
	}
	if _, result, _ := f.store.EffectResult(ctx, flaky); string(result) != `{"attempts":3}` {
		t.Errorf("result of flaky = %s", result)
	}
}

func TestBackoffGrowsAndStaysBounded(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 30; n++ {
		d := Backoff(n)
		if d <= 0 || d > 10*time.Minute {
			t.Fatalf("Backoff(%d) = %s", n, d)
		}
		if n <= 8 && d < prev/2 {
			t.Errorf("Backoff(%d) = %s shrank from %s", n, d, prev)
		}
		prev = d
	}
}

// Under a burst, urgent effects (a reporter's room) run first and routine
// messages take at most a quarter of the slots, however many are waiting,
// but are never crowded out; without urgent work they take every slot.
func TestOutboxOpensRoomsFirstAndCapsRoutineWork(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := New(f.store, f.clock, zerolog.Nop(), nil, nil)
	release := make(chan struct{})
	var mu sync.Mutex
	inFlight, most := 0, 0
	o.Register(KindSend, func(ctx context.Context, e store.Effect) (any, error) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil, nil
	})
	opened := make(chan string, 3)
	releaseRooms := make(chan struct{})
	o.Register(KindCreateCaseRoom, func(ctx context.Context, e store.Effect) (any, error) {
		opened <- e.Lane
		<-releaseRooms
		return nil, nil
	})
	for i := range 12 {
		if _, err := Enqueue(ctx, f.store, fmt.Sprintf("old-%d", i), KindSend, struct{}{}, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := EnqueueUrgent(ctx, f.store, fmt.Sprintf("new-%d", i), KindCreateCaseRoom, struct{}{}, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// The rooms come first, and a crowd of either kind leaves the other in view.
	due, err := f.store.DueEffects(ctx, f.clock.Now(), 2)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range due {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{KindCreateCaseRoom, KindCreateCaseRoom, KindSend, KindSend}; !slices.Equal(kinds, want) {
		t.Errorf("due effects %v, want %v", kinds, want)
	}
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	for range 3 {
		select {
		case <-opened:
		case <-time.After(10 * time.Second):
			t.Fatal("a room waited behind routine messages")
		}
	}
	peak := func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
	for wait := time.Now().Add(5 * time.Second); peak() < o.parallelism/4 && time.Now().Before(wait); {
		o.Kick()
		time.Sleep(10 * time.Millisecond)
	}
	o.Kick()
	time.Sleep(100 * time.Millisecond) // room for one too many to start
	if busy := peak(); busy != o.parallelism/4 {
		t.Errorf("%d routine effects ran at once beside the rooms, want %d (a quarter of %d slots)", busy, o.parallelism/4, o.parallelism)
	}
	// Once no room is waiting, routine work may use every slot.
	close(releaseRooms)
	for wait := time.Now().Add(5 * time.Second); peak() < 12 && time.Now().Before(wait); {
		o.Kick()
		time.Sleep(10 * time.Millisecond)
	}
	if busy := peak(); busy != 12 {
		t.Errorf("%d routine effects ran at once with no room waiting, want all 12", busy)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := f.store.Counts(ctx, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if n.OutboxPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d effects still pending", n.OutboxPending)
		}
		o.Kick()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAnEffectThatKeepsFailingIsParkedAndItsLaneGoesOn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	o := New(f.store, f.clock, zerolog.Nop(), nil, nil)
	o.LastAttempt = func(kind string) int {
		if kind == "github.stuck" {
			return 3
		}
		return 0
	}
	var parked []string
	o.OnDone = func(e store.Effect, err error) {
		if err != nil {
			parked = append(parked, e.Kind)
		}
	}
	o.Register("github.stuck", func(context.Context, store.Effect) (any, error) { return nil, errors.New("GitHub refused the token") })
	next := 0
	o.Register("github.next", func(context.Context, store.Effect) (any, error) { next++; return nil, nil })
	stuck, _ := Enqueue(ctx, f.store, "github:SR-2026-0001", "github.stuck", struct{}{}, f.clock.Now())
	Enqueue(ctx, f.store, "github:SR-2026-0001", "github.next", struct{}{}, f.clock.Now())
	for range 20 {
		due, _ := f.store.DueEffects(ctx, f.clock.Now(), 10)
		for _, e := range due {
			o.runOne(ctx, e)
		}
		f.clock.Advance(time.Hour)
	}
	if state, _, _ := f.store.EffectResult(ctx, stuck); state != "failed" {
		t.Errorf("the stuck effect is %s after its last attempt, want failed", state)
	}
	if next != 1 || len(parked) != 1 {
		t.Errorf("the lane's next effect ran %d times; %d parked, want 1 and 1", next, len(parked))
	}
}

// An effect the domain refuses when it is due ends as refused, with its
// audit line and the team told, in one go: it is not tried again, not
// counted as failed, and its lane goes on.
func TestARefusedEffectEndsAndItsLaneGoesOn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	calls := map[string]int{}
	var done []string
	o := New(f.store, f.clock, zerolog.Nop(), nil, nil)
	o.OnDone = func(e store.Effect, _ error) { done = append(done, e.Kind) }
	o.Register("gated", func(ctx context.Context, e store.Effect) (any, error) {
		calls["gated"]++
		return nil, Refuse(ctx, f.store, f.tmpl, e, store.AuditEntry{At: f.clock.Now(), Actor: "secbot", CaseID: "SR-2026-0001", Action: "publish.queued", Detail: "refused when due: under embargo"},
			"!team:x", "SR-2026-0001", templates.QueuedRefused{CaseID: "SR-2026-0001", What: "publish the advisory", Reason: "under embargo"}, f.clock.Now())
	})
	o.Register("after", func(context.Context, store.Effect) (any, error) {
		calls["after"]++
		return nil, nil
	})
	gated, _ := Enqueue(ctx, f.store, "L", "gated", struct{}{}, f.clock.Now())
	after, _ := Enqueue(ctx, f.store, "L", "after", struct{}{}, f.clock.Now())
	for range 3 {
		if _, err := o.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
	}
	if calls["gated"] != 1 || calls["after"] != 1 {
		t.Errorf("calls %v: the refused effect was tried again or its lane stopped", calls)
	}
	if state, _, _ := f.store.EffectResult(ctx, gated); state != "refused" {
		t.Errorf("the refused effect is %q", state)
	}
	if state, _, _ := f.store.EffectResult(ctx, after); state != "done" {
		t.Errorf("the effect after it is %q", state)
	}
	if slices.Contains(done, "gated") {
		t.Error("a refusal is reported as made or given up")
	}
	sends, _, _ := f.store.EffectsOfKind(ctx, KindSend)
	if len(sends) != 1 || !strings.Contains(string(sends[0].Payload), "did not publish the advisory") {
		t.Errorf("the team is told %d times: %v", len(sends), sends)
	}
	counts, err := f.store.Counts(ctx, f.clock.Now())
	if err != nil || counts.FailedEffects[""] != 0 || len(counts.FailedEffects) != 0 {
		t.Errorf("counted as failed: %v, %v", counts.FailedEffects, err)
	}
	entries, _ := f.store.AuditOf(ctx, "SR-2026-0001")
	if len(entries) != 1 || entries[0].Allowed || entries[0].Action != "publish.queued" {
		t.Errorf("audit: %+v", entries)
	}
}
