package disclosure

import (
	"strings"
	"time"
)

// Queued work is decided under one state of a case and made under another:
// GitHub can be down for hours, a lane can wait behind other work. What
// changes what the world sees (the advisory going public, the
// announcement, a CVE, who reads the advisory or the case room) is decided
// again right before it is made, against the case as it is then.

// QueuedKind is a kind of queued effect the domain decides again.
type QueuedKind int

// The kinds of queued effect.
const (
	// QueuedPublish publishes the advisory on GitHub.
	QueuedPublish QueuedKind = iota
	// QueuedAnnounce posts the announcement.
	QueuedAnnounce
	// QueuedCVE requests a CVE for the advisory.
	QueuedCVE
	// QueuedCollaborator adds someone to the private advisory (or takes
	// them off it).
	QueuedCollaborator
	// QueuedInvite invites someone to the case's room.
	QueuedInvite
)

// Force is the coordinator's override of an embargo: who forced, and the
// embargo that stood when they did. It holds while that same embargo
// stands and they are still the coordinator.
type Force struct {
	By    Person  `json:"by"`
	Under Embargo `json:"under"`
}

// Same reports whether e and o are the same embargo: the same state, the
// same agreed end and the same pending proposal.
func (e Embargo) Same(o Embargo) bool {
	return e.state() == o.state() && e.End.Equal(o.End) && e.Proposed.Equal(o.Proposed)
}

// forceFor is the force of a command that overrode the embargo, nil when
// nothing was overridden.
func (c *Case) forceFor(r Request, forced bool) *Force {
	if !forced {
		return nil
	}
	return &Force{By: r.By, Under: c.Embargo}
}

// holds reports whether the override still stands under the case's
// embargo as it is now.
func (f *Force) holds(c *Case, p *Policy) bool {
	return f != nil && f.By == p.Coordinator && p.IsTeam(f.By) && f.Under.Same(c.Embargo)
}

// Queued is one queued effect as the domain decides it again.
type Queued struct {
	Kind QueuedKind
	// Who is the person invited (QueuedInvite), or the need-to-know person
	// a GitHub account is added for (QueuedCollaborator; "" when the team
	// or the reporter named the account itself).
	Who Person
	// Login is the GitHub account added or removed (QueuedCollaborator).
	Login string
	// Remove marks a removal, which narrows who reads: always allowed.
	Remove bool
	// Force is the coordinator's override, if the command was forced.
	Force *Force
}

// Label names the effect for people: "secbot did not …".
func (q Queued) Label() string {
	switch q.Kind {
	case QueuedPublish:
		return "publish the advisory"
	case QueuedAnnounce:
		return "post the announcement"
	case QueuedCVE:
		return "request a CVE"
	case QueuedCollaborator:
		return "add " + q.Login + " to the private advisory"
	case QueuedInvite:
		return "invite " + q.Who.String() + " to the case room"
	}
	return "make a queued effect"
}

func (q Queued) action() string {
	return map[QueuedKind]string{QueuedPublish: "publish", QueuedAnnounce: "announce", QueuedCVE: "cve",
		QueuedCollaborator: "github.invite", QueuedInvite: "invite"}[q.Kind]
}

// MayRun decides again, right before a queued effect is made, whether it
// still may be: nil to make it, else a refusal whose reason the team
// reads. A refused effect is not made and not tried again.
func (c *Case) MayRun(q Queued, p *Policy, now time.Time) *Refusal {
	refused := func(format string, args ...any) *Refusal {
		r := refusef(q.action(), format, args...)
		r.Action = q.action() + ".queued"
		return r
	}
	embargo := func() *Refusal {
		if !c.Embargo.Blocking(now) || q.Force.holds(c, p) {
			return nil
		}
		why := "it is under embargo (" + string(c.Embargo.state()) + ") until " + c.embargoEnd(p, c.Embargo)
		if q.Force != nil {
			why += ", and the coordinator's `--force` was given under another embargo or by someone who is no longer the coordinator"
		}
		return refused("%s; repeat the command once the embargo allows it.", why)
	}
	switch q.Kind {
	case QueuedPublish:
		if _, err := Transition(c.Stage, ActPublish); err != nil {
			return refused("%s", strings.TrimPrefix(err.Error(), ErrOutOfOrder.Error()+": "))
		}
		if c.PublicSummary == "" || c.PublicDescription == "" {
			return refused("the advisory still carries the neutral placeholder.")
		}
		return embargo()
	case QueuedAnnounce:
		if c.Stage != StagePublished && c.Stage != StageClosed {
			return refused("the case is %s, not published.", c.Stage)
		}
		return embargo()
	case QueuedCVE:
		if c.Stage == StageRejected || c.Stage == StageClosed {
			return refused("the case is %s.", c.Stage)
		}
		return nil
	case QueuedCollaborator:
		if q.Remove {
			return nil
		}
		if c.Stage == StageClosed {
			return refused("the case is closed.")
		}
		if q.Who != "" && !c.needsToKnow(q.Who, q.Login) {
			return refused("%s is no longer on the need-to-know list with that account.", q.Who)
		}
		return nil
	case QueuedInvite:
		if c.Stage == StageClosed {
			return refused("the case is closed.")
		}
		if q.Who != c.Reporter && !p.IsTeam(q.Who) && !c.needsToKnow(q.Who, "") {
			return refused("%s is no longer the reporter, on the team or on the need-to-know list.", q.Who)
		}
		return nil
	}
	return refused("secbot does not know this kind of effect.")
}

// needsToKnow reports whether who is on the need-to-know list (with the
// GitHub account login, when one is given).
func (c *Case) needsToKnow(who Person, login string) bool {
	for _, n := range c.NeedToKnow {
		if n.Who == who && (login == "" || strings.EqualFold(n.GitHub, login)) {
			return true
		}
	}
	return false
}

// Cancel is the queued work a decision makes wrong, cancelled in the
// transaction that applies it (what is already under way is decided again
// when it runs, by MayRun).
type Cancel struct {
	Kinds []QueuedKind
	// Because is why, for the team: "an embargo was proposed".
	Because string
}

// cancelPublishing is what a decision that stops publishing cancels.
func cancelPublishing(because string, kinds ...QueuedKind) *Cancel {
	if len(kinds) == 0 {
		kinds = []QueuedKind{QueuedPublish, QueuedAnnounce}
	}
	return &Cancel{Kinds: kinds, Because: because}
}
