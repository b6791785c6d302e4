package store

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// Cancelling a case's pending publish and announce touches nothing else:
// not another case's, not other kinds, not what was already made; and a
// cancelled or refused effect is never due again, then pruned like others.
func TestCancellingPendingEffectsOfACaseByKind(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		one, two := disclosure.CaseID{Year: 2026, Seq: 1}, disclosure.CaseID{Year: 2026, Seq: 2}
		enqueue := func(lane, kind string) int64 {
			id, err := s.EnqueueAt(ctx, lane, kind, json.RawMessage(`{}`), t0, t0, false)
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		made := enqueue(GitHubLane(one), "github.publish")
		if err := s.CompleteEffect(ctx, made, nil, t0); err != nil {
			t.Fatal(err)
		}
		publish := enqueue(GitHubLane(one), "github.publish")
		announce := enqueue(CaseLane(one), "case.announce")
		update := enqueue(GitHubLane(one), "github.update")
		confirmed := enqueue(CaseLane(one), "case.published")
		other := enqueue(GitHubLane(two), "github.publish")
		var cancelled []string
		err := s.Tx(ctx, func(ctx context.Context) error {
			var err error
			cancelled, err = s.CancelPendingEffects(ctx, one, []string{"github.publish", "case.announce"}, "cancelled: an embargo was proposed", t0)
			return err
		})
		if err != nil || !slices.Equal(cancelled, []string{"github.publish", "case.announce"}) {
			t.Fatalf("cancelled %v, %v", cancelled, err)
		}
		for id, want := range map[int64]string{made: "done", publish: "cancelled", announce: "cancelled", update: "pending", confirmed: "pending", other: "pending"} {
			if state, _, err := s.EffectResult(ctx, id); err != nil || state != want {
				t.Errorf("effect %d is %q (%v), want %q", id, state, err, want)
			}
		}
		if refused, err := s.RefuseEffect(ctx, other, "refused when due", t0); err != nil || !refused {
			t.Errorf("refusing a pending effect: %v, %v", refused, err)
		}
		if again, err := s.RefuseEffect(ctx, publish, "refused when due", t0); err != nil || again {
			t.Errorf("a cancelled effect is refused again: %v, %v", again, err)
		}
		due, err := s.DueEffects(ctx, t0.Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range due {
			if e.ID == publish || e.ID == announce || e.ID == other {
				t.Errorf("effect %d (%s) is due after it ended", e.ID, e.Kind)
			}
		}
		if n, err := s.PruneOutboxBefore(ctx, t0.Add(time.Minute)); err != nil || n != 4 {
			t.Errorf("pruned %d finished effects (%v), want 4", n, err)
		}
	})
}
