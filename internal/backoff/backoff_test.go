package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	for _, c := range []struct {
		n           int
		base, limit time.Duration
		want        time.Duration
	}{
		{-1, time.Second, time.Minute, time.Second},
		{0, time.Second, time.Minute, time.Second},
		{1, time.Second, time.Minute, time.Second},
		{2, time.Second, time.Minute, 2 * time.Second},
		{6, time.Second, time.Minute, 32 * time.Second},
		{7, time.Second, time.Minute, time.Minute},
		{10, time.Second, 10 * time.Minute, 512 * time.Second},
		{11, time.Second, 10 * time.Minute, 10 * time.Minute},
		{2, 2 * time.Second, time.Minute, 4 * time.Second},
		{5, 2 * time.Second, time.Minute, 32 * time.Second},
		{6, 2 * time.Second, time.Minute, time.Minute},
		{1 << 30, time.Second, time.Hour, time.Hour},
		{3, time.Minute, time.Second, time.Second}, // the limit wins over base
	} {
		if got := Exponential(c.n, c.base, c.limit); got != c.want {
			t.Errorf("Exponential(%d, %s, %s) = %s, want %s", c.n, c.base, c.limit, got, c.want)
		}
	}
}

func TestJitterStaysInTheUpperHalf(t *testing.T) {
	for _, d := range []time.Duration{0, 1, time.Second, 10 * time.Minute} {
		for range 1000 {
			if got := Jitter(d); got < d/2 || got > d {
				t.Fatalf("Jitter(%s) = %s, outside [%s, %s]", d, got, d/2, d)
			}
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("a sleep to its end: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a sleep whose context ended: %v", err)
	}
}
