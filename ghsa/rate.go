package ghsa

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// RateStats is what secbot knows of its GitHub rate limit: the
// X-RateLimit-* headers of the last answer, and the requests it made in
// the last hour (for /metrics).
type RateStats struct {
	clock clockwork.Clock

	mu        sync.Mutex
	limit     int
	remaining int
	reset     time.Time
	known     bool
	recent    []time.Time // request times within the last hour
}

func newRateStats(clock clockwork.Clock) *RateStats { return &RateStats{clock: clock} }

// record counts a request and reads the rate limit headers of its answer.
func (r *RateStats) record(resp *http.Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	r.recent = append(r.prune(now), now)
	if resp == nil {
		return
	}
	h := resp.Header
	remaining, err1 := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	limit, err2 := strconv.Atoi(h.Get("X-RateLimit-Limit"))
	reset, err3 := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	r.remaining, r.limit, r.reset, r.known = remaining, limit, time.Unix(reset, 0), true
}

// prune drops request times older than an hour; the caller holds mu.
func (r *RateStats) prune(now time.Time) []time.Time {
	i := 0
	for i < len(r.recent) && now.Sub(r.recent[i]) >= time.Hour {
		i++
	}
	return r.recent[i:]
}

// RequestsLastHour is how many requests secbot made to GitHub in the last
// hour, 304s included.
func (r *RateStats) RequestsLastHour() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent = r.prune(r.clock.Now())
	return len(r.recent)
}

// Remaining is the rate limit left and when it resets, as GitHub last said
// (known false before any answer carried it).
func (r *RateStats) Remaining() (remaining, limit int, reset time.Time, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.remaining, r.limit, r.reset, r.known
}

// Exhausted reports until when GitHub's primary rate limit is used up
// (zero when it is not).
func (r *RateStats) Exhausted() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known && r.remaining == 0 && r.reset.After(r.clock.Now()) {
		return r.reset
	}
	return time.Time{}
}

// counting is the transport under authentication that feeds RateStats.
type counting struct {
	next  http.RoundTripper
	stats *RateStats
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	c.stats.record(resp)
	return resp, err
}
