package store

import (
	"context"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// Restarting a deadline starts a new generation with nothing fired; a
// firing of the old generation then changes nothing. (On PostgreSQL the
// upsert must name deadlines.generation: a bare one is ambiguous there.)
func TestARestartedDeadlineIsANewGeneration(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		c, err := s.CreateCase(ctx, "matrix:@r:x", "matrix:!dm:x", "matrix:!dm:x", t0)
		if err != nil {
			t.Fatal(err)
		}
		d := Deadline{CaseID: c.ID, Kind: disclosure.DeadlineAcknowledge, StartedAt: t0, DueAt: t0.Add(48 * time.Hour), RemindAt: t0.Add(36 * time.Hour), NextAt: t0.Add(36 * time.Hour)}
		if err := s.SetDeadline(ctx, d); err != nil {
			t.Fatal(err)
		}
		first, err := s.Deadline(ctx, c.ID, d.Kind)
		if err != nil || first.Generation != 1 {
			t.Fatalf("first: %+v, %v", first, err)
		}
		if ok, err := s.AdvanceDeadline(ctx, *first, true, 1, t0.Add(48*time.Hour), ""); err != nil || !ok {
			t.Fatalf("advance: %v, %v", ok, err)
		}
		if err := s.SetDeadline(ctx, d); err != nil {
			t.Fatal(err)
		}
		again, err := s.Deadline(ctx, c.ID, d.Kind)
		if err != nil || again.Generation != 2 || again.Reminded || again.LadderStep != 0 {
			t.Fatalf("restarted: %+v, %v", again, err)
		}
		if ok, err := s.AdvanceDeadline(ctx, *first, true, 1, t0.Add(48*time.Hour), ""); err != nil || ok {
			t.Errorf("a firing of the old generation: %v, %v", ok, err)
		}
		due, err := s.DueDeadlines(ctx, t0.Add(40*time.Hour), 10)
		if err != nil || len(due) != 1 {
			t.Errorf("due: %v, %v", due, err)
		}
	})
}
