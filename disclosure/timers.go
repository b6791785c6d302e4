package disclosure

import (
	"fmt"
	"time"

	"github.com/enarx/secbot/templates"
)

// The timers' decisions: when a promise's clock fires, what it does then,
// and who is told. The timers only find what is due, ask here and apply
// the answer, as the handlers apply a command's.

// LateAfter is how far past its time a firing must be to be called late
// in its text (secbot was down when it fell due).
const LateAfter = 3 * time.Second

// Timer is the bot itself as the actor of what the timers do.
const Timer Person = "secbot"

// NewDeadline plans a fresh deadline of kind counted from from: when it
// falls due, the reminder before it (none when it would not fall between
// the two) and its first firing.
func (p *Policy) NewDeadline(kind DeadlineKind, from time.Time) Deadline {
	d := Deadline{Kind: kind, StartedAt: from, DueAt: p.SLA.Due(kind, from, p.Calendar)}
	if !p.SLA.RemindBefore.IsZero() {
		if at := p.SLA.RemindAt(d.DueAt, p.Calendar); at.After(from) && at.Before(d.DueAt) {
			d.RemindAt = at
		}
	}
	d.NextAt, _ = p.NextFiring(d)
	return d
}

// Firing says what a deadline does next.
type Firing int

// What a deadline can do next.
const (
	FireNothing Firing = iota
	FireReminder
	FireEscalation
)

// NextFiring returns when a deadline next fires and what it does then: the
// reminder if one is due and not sent, else the next escalation step.
func (p *Policy) NextFiring(d Deadline) (time.Time, Firing) {
	if d.Met() {
		return time.Time{}, FireNothing
	}
	if !d.Reminded && !d.RemindAt.IsZero() {
		return d.RemindAt, FireReminder
	}
	at, _, ok := p.Ladder.StepAt(d.DueAt, d.LadderStep, p.SLA.RepeatEvery, p.Calendar)
	if !ok {
		return time.Time{}, FireNothing
	}
	return at, FireEscalation
}

// Fired is a deadline's firing as recorded: how far its timer has come and
// when it fires next (zero: never). The timers record it only if the
// deadline is still as it was when the firing was decided, so a stale or
// repeated firing changes nothing.
type Fired struct {
	Kind       DeadlineKind
	Reminded   bool
	LadderStep int
	NextAt     time.Time
}

// Fire decides the due firing of the case's deadline d at now: the
// reminder (to the handler, or the team room while there is none) or the
// next escalation step (to the step's contact, or the whole team), and at
// the ladder's first step a word to the reporter that the team was chased.
// On a finished case, or when nothing is left to fire, the clock only
// stops (FireNothing).
func (c *Case) Fire(d Deadline, p *Policy, now time.Time) (Firing, Decision) {
	at, what := p.NextFiring(d)
	stop := Decision{Fired: &Fired{Kind: d.Kind, Reminded: d.Reminded, LadderStep: d.LadderStep}}
	if c.Finished() || what == FireNothing {
		// Published, rejected or closed: whatever the row says, nothing
		// fires, and the timer stops.
		return FireNothing, stop
	}
	next := d
	if what == FireReminder {
		next.Reminded = true
	} else {
		next.LadderStep++
	}
	nextAt, _ := p.NextFiring(next)
	dec := Decision{Fired: &Fired{Kind: d.Kind, Reminded: next.Reminded, LadderStep: next.LadderStep, NextAt: nextAt}}
	late := now.Sub(at) > LateAfter
	if what == FireReminder {
		data := templates.Reminder{CaseID: c.ID.String(), Promise: d.Kind.Label(), DueAt: p.Local(d.DueAt), MeantFor: p.Local(at), Late: late, AdvisoryURL: c.advisoryLink()}
		if c.Handler != "" {
			dec.Say = []Message{toPerson(c.Handler, data)}
		} else {
			dec.Say = []Message{say(ToTeamRoom, data)}
		}
		return what, dec
	}
	_, step, _ := p.Ladder.StepAt(d.DueAt, d.LadderStep, p.SLA.RepeatEvery, p.Calendar)
	repeat, byReporter := d.LadderStep >= len(p.Ladder), d.EscalatedBy != ""
	role, who := p.Contact(step)
	if step.Notify.Role == "team" || who == "" {
		m := say(ToTeamRoom, templates.EscalationTeam{CaseID: c.ID.String(), Promise: d.Kind.Label(), DueAt: p.Local(d.DueAt), MeantFor: p.Local(at),
			Late: late, Repeat: repeat, ByReporter: byReporter, AdvisoryURL: c.advisoryLink()})
		m.Mentions = p.Team
		dec.Say = append(dec.Say, m)
	} else {
		dec.Say = append(dec.Say, toPerson(who, templates.EscalationDM{CaseID: c.ID.String(), Promise: d.Kind.Label(), Role: role, Handler: c.Handler.String(),
			DueAt: p.Local(d.DueAt), MeantFor: p.Local(at), Late: late, Repeat: repeat, ByReporter: byReporter, AdvisoryURL: c.advisoryLink()}))
	}
	if d.LadderStep == 0 && !byReporter && c.Channel != ChannelGitHub {
		// The reporter need not chase anyone: say that secbot did (in the
		// case room, or by mail to a reporter on email).
		dec.Say = append(dec.Say, say(ToCaseRoom, templates.ReporterChased{Promise: d.Kind.Label(), DueAt: p.Local(d.DueAt)}))
	}
	dec.Action, dec.Detail = "escalation", fmt.Sprintf("%s step %d", d.Kind, d.LadderStep+1)
	return what, dec
}

// RemindEmbargo decides a due reminder, meant for at, of the embargo
// ending at end: the handler and the team room are told. A finished case
// is reminded of nothing: its embargo has nothing left to guard.
func (c *Case) RemindEmbargo(at, end time.Time, p *Policy, now time.Time) Decision {
	if c.Finished() {
		return Decision{}
	}
	data := templates.EmbargoReminder{CaseID: c.ID.String(), End: p.Local(end), Late: now.Sub(at) > LateAfter, AdvisoryURL: c.advisoryLink(),
		Today: p.Local(end).Format("2006-01-02") == p.Local(now).Format("2006-01-02")}
	var d Decision
	if c.Handler != "" {
		d.Say = append(d.Say, toPerson(c.Handler, data))
	}
	d.Say = append(d.Say, say(ToTeamRoom, data))
	return d
}

// advisoryLink is the advisory of a case reported on GitHub, where its
// reporter is: every reminder points the team there.
func (c *Case) advisoryLink() string {
	if c.Channel == ChannelGitHub {
		return c.AdvisoryURL
	}
	return ""
}

func toPerson(who Person, d templates.Data) Message {
	return Message{To: Audience{Kind: ToPerson, Who: who}, Data: d}
}
