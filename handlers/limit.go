package handlers

import (
	"context"
	"sync"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// ChatterBurst answers per ChatterWindow bound how often the bot answers
// one user outside the team (chatter, commands, notices), so a flood gets
// a polite limit message instead of a flood back.
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
	w := l.hit(user, now)
	switch {
	case w.count <= ChatterBurst:
		return answer
	case !w.warned:
		w.warned = true
		return warnOnce
	}
	return stayQuiet
}

// reset forgets everyone.
func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.users = nil
}

// first reports whether this is user's first call in their window.
func (l *limiter) first(user disclosure.Person, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hit(user, now).count == 1
}

// hit counts one more call of user's in their window; l.mu is held.
func (l *limiter) hit(user disclosure.Person, now time.Time) *window {
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
	return w
}

// quieted bounds what anyone outside the team is answered, commands
// included: ChatterBurst answers per ChatterWindow, then one polite notice,
// then silence until the window ends. It reports true when msg is not to
// be answered (the notice, when it is due, is recorded). The team is not
// limited.
func (h *Handlers) quieted(ctx context.Context, msg chat.Message) (bool, error) {
	if h.IsTeam(msg.Sender) {
		return false, nil
	}
	switch h.chatter.check(msg.Sender, h.clock.Now()) {
	case answer:
		return false, nil
	case warnOnce:
		return true, h.onceBriefly(ctx, msg.ID, func(ctx context.Context) error {
			return h.enqueue(ctx, store.RoomLane(msg.Room), outbox.Target{Room: msg.Room}, templates.SlowDown{}, outbox.SendEffect{ReplyTo: msg.ID}, false)
		})
	}
	return true, nil
}

// auditsRefusal says whether a refusal of who's is written to the audit
// log: every one of the team's; of anyone else's, the first in each
// ChatterWindow, so a flood writes a row a minute, not a row a message.
func (h *Handlers) auditsRefusal(who disclosure.Person) bool {
	return h.IsTeam(who) || h.refusals.first(who, h.clock.Now())
}

// auditRefusal writes e, a refusal of e.Actor's, as auditsRefusal allows.
func (h *Handlers) auditRefusal(ctx context.Context, e store.AuditEntry) error {
	if !h.auditsRefusal(e.Actor) {
		return nil
	}
	return h.store.Audit(ctx, e)
}
