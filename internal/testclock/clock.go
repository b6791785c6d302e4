package testclock

import (
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Stepped is real time plus an offset that only grows. It is in every
// build, for tests that step a clock handed to the code in their own
// process; only New, in a build with the testclock tag, lets a file from
// outside the process step one.
type Stepped struct {
	mu     sync.Mutex
	offset time.Duration
	armed  map[*timer]struct{}
}

// NewStepped returns a clock at real time, stepped by Advance.
func NewStepped() *Stepped { return &Stepped{armed: map[*timer]struct{}{}} }

// Offset is how far ahead of real time the clock is.
func (c *Stepped) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Advance moves the clock forward by d (nothing if d is not positive);
// every timer that falls due by the new time fires at once.
func (c *Stepped) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.offset += d
	armed := make([]*timer, 0, len(c.armed))
	for t := range c.armed {
		armed = append(armed, t)
	}
	c.mu.Unlock()
	for _, t := range armed {
		t.rearm()
	}
}

// Now is real time plus the offset.
func (c *Stepped) Now() time.Time { return time.Now().Add(c.Offset()) }

// Since is the clock's time since t.
func (c *Stepped) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Until is the clock's time until t.
func (c *Stepped) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

// Sleep waits until the clock has moved on by d.
func (c *Stepped) Sleep(d time.Duration) { <-c.After(d) }

// After sends the clock's time once it has moved on by d.
func (c *Stepped) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).Chan() }

// NewTimer returns a timer that sends the clock's time on its channel
// once the clock has moved on by d.
func (c *Stepped) NewTimer(d time.Duration) clockwork.Timer {
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc calls f in its own goroutine once the clock has moved on by d.
func (c *Stepped) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	t := &timer{c: c, fn: func(time.Time) { f() }}
	t.Reset(d)
	return t
}

// NewTicker returns a ticker that sends the clock's time every d of it
// (a tick the reader is not ready for is dropped, as time.Ticker does).
func (c *Stepped) NewTicker(d time.Duration) clockwork.Ticker {
	if d <= 0 {
		panic("testclock: non-positive interval for NewTicker")
	}
	tk := &ticker{ch: make(chan time.Time, 1), period: d, due: c.Now().Add(d)}
	tk.t = &timer{c: c, fn: tk.tick}
	tk.t.resetAt(tk.due)
	return tk
}

// timer fires fn once the clock reaches at; a real timer wakes it at the
// time left, and Advance re-arms that real timer against the new time.
type timer struct {
	c  *Stepped
	ch chan time.Time      // a timer's, sent to under mu (so none after Stop)
	fn func(now time.Time) // an AfterFunc's or a ticker's, called outside mu

	mu    sync.Mutex
	at    time.Time
	armed bool
	real  *time.Timer
}

func (t *timer) Chan() <-chan time.Time { return t.ch }

func (t *timer) Reset(d time.Duration) bool { return t.resetAt(t.c.Now().Add(d)) }

// resetAt arms t to fire when the clock reaches at.
func (t *timer) resetAt(at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.stopLocked()
	was = t.drain() || was
	t.at, t.armed = at, true
	t.c.mu.Lock()
	t.c.armed[t] = struct{}{}
	t.c.mu.Unlock()
	left := max(at.Sub(t.c.Now()), 0)
	if t.real == nil {
		t.real = time.AfterFunc(left, t.wake)
	} else {
		t.real.Reset(left)
	}
	return was
}

func (t *timer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.stopLocked()
	return t.drain() || was
}

// stopLocked disarms t and reports whether it was armed.
func (t *timer) stopLocked() bool {
	was := t.armed
	t.armed = false
	if t.real != nil {
		t.real.Stop()
	}
	t.c.mu.Lock()
	delete(t.c.armed, t)
	t.c.mu.Unlock()
	return was
}

// drain empties the channel of a stopped or reset timer and reports
// whether a value was waiting there: since Go 1.23 a time.Timer's value
// not yet received is taken back by Stop and Reset, which then count the
// timer as stopped.
func (t *timer) drain() bool {
	if t.ch == nil {
		return false
	}
	select {
	case <-t.ch:
		return true
	default:
		return false
	}
}

// rearm sets the real timer to the time left after the clock moved.
func (t *timer) rearm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.armed {
		t.real.Reset(max(t.at.Sub(t.c.Now()), 0))
	}
}

// wake fires t if the clock has reached its time, or waits on.
func (t *timer) wake() {
	t.mu.Lock()
	if !t.armed {
		t.mu.Unlock()
		return
	}
	now := t.c.Now()
	if left := t.at.Sub(now); left > 0 {
		t.real.Reset(left)
		t.mu.Unlock()
		return
	}
	t.armed = false
	t.c.mu.Lock()
	delete(t.c.armed, t)
	t.c.mu.Unlock()
	if t.ch != nil {
		select {
		case t.ch <- now:
		default:
		}
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.fn(now)
}

type ticker struct {
	ch     chan time.Time
	t      *timer
	mu     sync.Mutex
	period time.Duration
	due    time.Time // when the armed tick is due
	closed bool
}

func (tk *ticker) Chan() <-chan time.Time { return tk.ch }

// tick sends now and arms the next tick a period after the one due; a
// step of the clock past several periods makes one tick at once, not one
// for each period.
func (tk *ticker) tick(now time.Time) {
	select {
	case tk.ch <- now:
	default:
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.closed {
		return
	}
	next := tk.due.Add(tk.period)
	if !next.After(now) {
		next = now
	}
	tk.due = next
	tk.t.resetAt(next)
}

func (tk *ticker) Reset(d time.Duration) {
	if d <= 0 {
		panic("testclock: non-positive interval for Ticker.Reset")
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.period, tk.closed, tk.due = d, false, tk.t.c.Now().Add(d)
	tk.t.resetAt(tk.due)
}

func (tk *ticker) Stop() {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.closed = true
	tk.t.Stop()
}
