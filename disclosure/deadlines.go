package disclosure

import (
	"fmt"
	"strings"
	"time"
)

// DeadlineKind is one of the policy's promises.
type DeadlineKind string

// The promises: acknowledge (48 h), detailed response (96 h), and updates
// at least every five working days.
const (
	DeadlineAcknowledge DeadlineKind = "acknowledge"
	DeadlineResponse    DeadlineKind = "detailed_response"
	DeadlineUpdate      DeadlineKind = "update"
)

// Label is the promise for people.
func (k DeadlineKind) Label() string {
	switch k {
	case DeadlineAcknowledge:
		return "acknowledgement"
	case DeadlineResponse:
		return "detailed response"
	case DeadlineUpdate:
		return "progress update"
	}
	return string(k)
}

// SLA is the policy's promises as spans.
type SLA struct {
	Acknowledge, DetailedResponse, UpdateInterval, RemindBefore, RepeatEvery Span
}

// Due is when a promise falls due: acknowledgement and detailed response
// count from intake, the update from the last update.
func (s SLA) Due(kind DeadlineKind, from time.Time, cal Calendar) time.Time {
	switch kind {
	case DeadlineAcknowledge:
		return cal.Add(from, s.Acknowledge)
	case DeadlineResponse:
		return cal.Add(from, s.DetailedResponse)
	default:
		return cal.Add(from, s.UpdateInterval)
	}
}

// RemindAt is when to remind before a deadline due at due.
func (s SLA) RemindAt(due time.Time, cal Calendar) time.Time { return cal.Sub(due, s.RemindBefore) }

// Notify is who an escalation step reaches.
type Notify struct {
	Role string // "coordinator", "backup", "team" or "user"
	User string // the Matrix user, when Role is "user"
}

// ParseNotify reads coordinator, backup, team or a Matrix user ID.
func ParseNotify(s string) (Notify, error) {
	switch v := strings.TrimSpace(s); strings.ToLower(v) {
	case "coordinator", "backup", "team":
		return Notify{Role: strings.ToLower(v)}, nil
	default:
		local, server, ok := strings.Cut(strings.TrimPrefix(v, "@"), ":")
		if !strings.HasPrefix(v, "@") || !ok || local == "" || server == "" || strings.ContainsAny(v, " \t") {
			return Notify{}, fmt.Errorf("%q is not coordinator, backup, team or a Matrix user like @alice:example.org", s)
		}
		return Notify{Role: "user", User: v}, nil
	}
}

// LadderStep is one rung of the escalation ladder.
type LadderStep struct {
	After  Span // counted from the missed deadline
	Notify Notify
}

// Ladder is the escalation ladder, in order.
type Ladder []LadderStep

// StepAt is when the n-th escalation (0-based) fires for a deadline missed
// at breach, and which step it is. Past the last step, the last one repeats
// every repeatEvery; ok is false when there is nothing more to fire.
func (l Ladder) StepAt(breach time.Time, n int, repeatEvery Span, cal Calendar) (at time.Time, step LadderStep, ok bool) {
	if len(l) == 0 || n < 0 {
		return time.Time{}, LadderStep{}, false
	}
	if n < len(l) {
		return cal.Add(breach, l[n].After), l[n], true
	}
	if repeatEvery.IsZero() {
		return time.Time{}, LadderStep{}, false
	}
	last := l[len(l)-1]
	at = cal.Add(breach, last.After)
	for i := len(l); i <= n; i++ {
		at = cal.Add(at, repeatEvery)
	}
	return at, last, true
}
