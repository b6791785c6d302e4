package handlers

import (
	"sync"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// ChatterBurst answers per ChatterWindow bound how often the bot answers
// one user's chatter in a DM, so a flood gets a polite limit message
// instead of a flood back.
const (
	ChatterBurst  = 5
	ChatterWindow = time.Minute
)

// limiter is a per-user fixed-window counter; it is in memory on purpose:
// after a restart everyone starts afresh, which errs towards answering.
type limiter struct {
	mu    sync.Mutex
	users map[disclosure.Person]*window
}

type window struct {
	start  time.Time
	count  int
	warned bool
}

// verdict is what to do with one more message from a user.
type verdict int

const (
	answer verdict = iota
	warnOnce
	stayQuiet
)

func (l *limiter) check(user disclosure.Person, now time.Time) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users == nil {
		l.users = map[disclosure.Person]*window{}
	}
	w := l.users[user]
	if w == nil || now.Sub(w.start) >= ChatterWindow {
		if len(l.users) > 10000 {
			l.users = map[disclosure.Person]*window{} // forget everyone rather than grow without bound
		}
		w = &window{start: now}
		l.users[user] = w
	}
	w.count++
	switch {
	case w.count <= ChatterBurst:
		return answer
	case !w.warned:
		w.warned = true
		return warnOnce
	}
	return stayQuiet
}
