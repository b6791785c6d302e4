package outbox

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// No kind names a platform, and every former name leads to a kind of now.
func TestKindsAreNeutralAndFormerNamesLeadToThem(t *testing.T) {
	kinds := []string{KindSend, KindCreateCaseRoom, KindOpenDM, KindInvite, KindReact, KindKick, KindAnnounce, KindPublished,
		KindMailSend, KindMailPost, KindAdvisoryCreate, KindAdvisoryCollaborator, KindAdvisoryFork, KindAdvisoryForkReady,
		KindAdvisoryCVE, KindAdvisoryPublish, KindAdvisoryUpdate, KindAdvisoryState, KindAdvisoryMove}
	for _, k := range kinds {
		if strings.HasPrefix(k, "matrix.") || strings.HasPrefix(k, "secbot.") {
			t.Errorf("kind %q names a platform", k)
		}
		if Canonical(k) != k {
			t.Errorf("Canonical(%q) = %q, want itself", k, Canonical(k))
		}
	}
	for old, now := range formerKinds {
		if !slices.Contains(kinds, now) {
			t.Errorf("former kind %q leads to %q, no kind of now", old, now)
		}
		if Canonical(old) != now || !slices.Contains(Former(now), old) {
			t.Errorf("Canonical(%q) = %q, Former(%q) = %v", old, Canonical(old), now, Former(now))
		}
	}
	if Canonical("matrix.send") != KindSend || Canonical("secbot.announce") != KindAnnounce {
		t.Error("the old Matrix and secbot names do not lead to chat.send and case.announce")
	}
}

// A row an older secbot queued under a kind's former name is made by the
// executor of its name now, which sees the name now, and ends done.
func TestARowQueuedUnderAFormerKindNameStillRuns(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	o := New(f.store, f.clock, zerolog.Nop(), nil, nil)
	var made []string
	var payload SendEffect
	o.Register(KindSend, func(_ context.Context, e store.Effect) (any, error) {
		made = append(made, e.Kind)
		return nil, e.Decode(&payload)
	})
	o.Register(KindAnnounce, func(_ context.Context, e store.Effect) (any, error) {
		made = append(made, e.Kind)
		return nil, nil
	})
	var done []string
	o.OnDone = func(e store.Effect, err error) { done = append(done, e.Kind) }
	now := f.clock.Now()
	send, err := f.store.EnqueueAt(ctx, "SR-2026-0001", "matrix.send", json.RawMessage(`{"to":{"room":"!team:x"},"markdown":"queued before"}`), now, now, false)
	if err != nil {
		t.Fatal(err)
	}
	announce, err := f.store.EnqueueAt(ctx, "SR-2026-0002", "secbot.announce", json.RawMessage(`{"case_id":"SR-2026-0002"}`), now, now, false)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := o.RunDue(ctx); err != nil || n != 2 {
		t.Fatalf("ran %d (%v), want 2", n, err)
	}
	slices.Sort(made)
	if !slices.Equal(made, []string{KindAnnounce, KindSend}) || len(done) != 2 {
		t.Errorf("made %v, done %v: want case.announce and chat.send, each once", made, done)
	}
	if payload.To.Room != "!team:x" || payload.Markdown != "queued before" {
		t.Errorf("the old row's payload reads %+v", payload)
	}
	for _, id := range []int64{send, announce} {
		if state, _, _ := f.store.EffectResult(ctx, id); state != "done" {
			t.Errorf("effect %d is %q, want done", id, state)
		}
	}
}

// Cancelling a case's pending work reaches rows queued under a kind's
// former name, and names them by their kind now.
func TestCancellingReachesRowsQueuedUnderAFormerName(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	caseID := disclosure.CaseID{Year: 2026, Seq: 1}
	now := f.clock.Now()
	old, err := f.store.EnqueueAt(ctx, store.CaseLane(caseID), "secbot.announce", json.RawMessage(`{"case_id":"SR-2026-0001"}`), now, now, false)
	if err != nil {
		t.Fatal(err)
	}
	invite, err := f.store.EnqueueAt(ctx, store.CaseLane(caseID), "matrix.invite", json.RawMessage(`{"user":"@carol:x"}`), now, now, false)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Enqueue(ctx, f.store, store.CaseLane(caseID), KindAnnounce, map[string]string{"case_id": "SR-2026-0001"}, now)
	if err != nil {
		t.Fatal(err)
	}
	send, err := Enqueue(ctx, f.store, store.CaseLane(caseID), KindSend, SendEffect{To: Target{Room: "!team:x"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := CancelPending(ctx, f.store, caseID, []string{KindAnnounce, KindInvite}, "cancelled: an embargo was proposed", now)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(cancelled)
	if want := []string{KindAnnounce, KindAnnounce, KindInvite}; !slices.Equal(cancelled, want) {
		t.Errorf("cancelled %v, want %v", cancelled, want)
	}
	for id, want := range map[int64]string{old: "cancelled", invite: "cancelled", fresh: "cancelled", send: "pending"} {
		if state, _, _ := f.store.EffectResult(ctx, id); state != want {
			t.Errorf("effect %d is %q, want %q", id, state, want)
		}
	}
}
