// Package backoff computes how long to wait before retrying, for the sync
// loop, the outbox and GitHub polling alike.
package backoff

import (
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
