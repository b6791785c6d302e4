package ghsa

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// RateStats is what secbot knows of one rate limit of GitHub's (the
// token's, or one App installation's: each has its own): the
// X-RateLimit-* headers of the last answer, and the requests made with it
// in the last hour.
type RateStats struct {
	clock clockwork.Clock

	mu        sync.Mutex
	limit     int
	remaining int
	reset     time.Time
	known     bool
	recent    []time.Time // request times within the last hour
	holdUntil time.Time   // a secondary rate limit's Retry-After
}

func newRateStats(clock clockwork.Clock) *RateStats { return &RateStats{clock: clock} }

// hold records that GitHub asked to wait until then (a secondary limit).
func (r *RateStats) hold(until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if until.After(r.holdUntil) {
		r.holdUntil = until
	}
}

// held reports whether GitHub asked this credential to wait until after now.
func (r *RateStats) held() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clock.Now().Before(r.holdUntil)
}

// Rates are all of secbot's rate limits on GitHub, one per credential:
// what /metrics shows of them together.
type Rates struct {
	clock clockwork.Clock

	mu  sync.Mutex
	all []*RateStats
}

// add returns a new record for one more credential.
func (rs *Rates) add() *RateStats {
	r := newRateStats(rs.clock)
	rs.mu.Lock()
	rs.all = append(rs.all, r)
	rs.mu.Unlock()
	return r
}

func (rs *Rates) each() []*RateStats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.all)
}

// RequestsLastHour is how many requests secbot made to GitHub in the last
// hour, with every credential, 304s included.
func (rs *Rates) RequestsLastHour() int {
	n := 0
	for _, r := range rs.each() {
		n += r.RequestsLastHour()
	}
	return n
}

// Remaining is the tightest of the rate limits GitHub told of: the least
// left (known false before any answer carried it).
func (rs *Rates) Remaining() (remaining, limit int, reset time.Time, known bool) {
	for _, r := range rs.each() {
		rem, lim, res, ok := r.Remaining()
		if ok && (!known || rem < remaining) {
			remaining, limit, reset, known = rem, lim, res, true
		}
	}
	return remaining, limit, reset, known
}

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

// counting is the transport under authentication that feeds one
// credential's RateStats.
type counting struct {
	next  http.RoundTripper
	stats *RateStats
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	c.stats.record(resp)
	return resp, err
}
