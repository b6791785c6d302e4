package store

import (
	"context"
	"testing"
	"time"
)

func TestDeadLettersAreParkedOnceAndCounted(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		s, _ := openTest(t, db)
		if err := s.ParkEvent(ctx, DeadLetter{Room: "matrix:!r:x", Event: "$b", ParkedAt: t0.Add(time.Second), Attempts: 5, Category: "panic"}); err != nil {
			t.Fatal(err)
		}
		if err := s.ParkEvent(ctx, DeadLetter{Room: "matrix:!r:x", Event: "$a", ParkedAt: t0, Attempts: 5, Category: "handler"}); err != nil {
			t.Fatal(err)
		}
		// Parked again (its batch redelivered): one record, the latest figures.
		if err := s.ParkEvent(ctx, DeadLetter{Room: "matrix:!r:x", Event: "$b", ParkedAt: t0.Add(time.Minute), Attempts: 6, Category: "timeout"}); err != nil {
			t.Fatal("parking an event twice:", err)
		}
		got, err := s.DeadLetters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("dead letters: %+v, want $a and $b", got)
		}
		want := []DeadLetter{
			{Room: "matrix:!r:x", Event: "$a", ParkedAt: t0, Attempts: 5, Category: "handler"},
			{Room: "matrix:!r:x", Event: "$b", ParkedAt: t0.Add(time.Minute), Attempts: 6, Category: "timeout"},
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("dead letter %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		counts, err := s.Counts(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if counts.DeadLetters != 2 {
			t.Errorf("Counts.DeadLetters = %d, want 2", counts.DeadLetters)
		}
	})
}
