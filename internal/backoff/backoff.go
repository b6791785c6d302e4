// Package backoff computes how long to wait before retrying, for the sync
// loop, the outbox and GitHub polling alike.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Exponential is the wait before retry n (1-based; less counts as 1):
// base, doubling with each retry, never more than limit.
func Exponential(n int, base, limit time.Duration) time.Duration {
	d := base
	// Doubling stepwise rather than shifting keeps a large n from overflowing.
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Jitter spreads d over [d/2, d], so that many retries do not march in step.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or less if ctx is done first (then it returns ctx's
// error): the wait of a retry that lets an earlier attempt, cut off by a
// crash, finish at the server before it looks for what that attempt made.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
