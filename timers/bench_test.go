package timers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// seed opens n cases with their two deadlines, all in the future of the
// fixture's clock, in one transaction.
func seed(b *testing.B, f *fixture, n int) {
	b.Helper()
	ctx := context.Background()
	err := f.store.Tx(ctx, func(ctx context.Context) error {
		for i := range n {
			at := friday.Add(time.Duration(i%1000) * time.Minute)
			c, err := f.store.CreateCase(ctx, disclosure.Person(fmt.Sprintf("matrix:@r%d:x", i)), "matrix:!dm:x", "", at)
			if err != nil {
				return err
			}
			for _, kind := range []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse} {
				if err := f.store.SetDeadline(ctx, NewDeadline(c.ID, kind, at, f.policy)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// tickNothingDue times f's tick when nothing is due: every tick must
// fire nothing.
func tickNothingDue(b *testing.B, f *fixture) {
	b.Helper()
	tm := f.timers()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if fired, err := tm.Tick(ctx); err != nil || fired != 0 {
			b.Fatalf("fired %d, %v", fired, err)
		}
	}
}

// BenchmarkTickNothingDue is the cost of the every-second job when no
// deadline is due: one probe of the next_at index, whatever the case count.
func BenchmarkTickNothingDue(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("cases=%d", n), func(b *testing.B) {
			f := newFixture(b, friday)
			seed(b, f, n)
			tickNothingDue(b, f)
		})
	}
}

// BenchmarkTickOneDue is the cost of a tick that fires one reminder among
// many open cases (its transaction and outbox entry included).
func BenchmarkTickOneDue(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("cases=%d", n), func(b *testing.B) {
			f := newFixture(b, friday)
			seed(b, f, n)
			tm := f.timers()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				f.openCase(b, disclosure.Person(fmt.Sprintf("matrix:@due%d:x", i)), f.clock.Now().Add(-47*time.Hour))
				b.StartTimer()
				if _, err := tm.Tick(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
