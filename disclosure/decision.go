package disclosure

import (
	"fmt"
	"time"

	"github.com/enarx/secbot/templates"
)

// PlaceKind is what a room is to the policy, which decides what may be
// shown there: a command's answer lands where it was typed.
type PlaceKind int

// The kinds of place.
const (
	// Elsewhere is any room that is neither of the below: public rooms,
	// announcement rooms. Nothing of a case is shown there.
	Elsewhere PlaceKind = iota
	// TeamRoom is the security team's private room.
	TeamRoom
	// PrivateChat is a one-to-one chat with the bot: a reporter's DM, or a
	// team member's.
	PrivateChat
	// CaseRoom is a case's private room, which its reporter reads.
	CaseRoom
)

// Place is where a command was typed or an event happened.
type Place struct {
	Kind PlaceKind
	// Case is the room's case, for a CaseRoom.
	Case CaseID
}

// Role is who acts, as the policy sees them.
type Role int

// The roles, from least to most trusted.
const (
	Outsider Role = iota
	Reporter
	Member
	Coordinator
)

// RoleOf is who's role towards c (nil: no case in view).
func (p *Policy) RoleOf(who Person, c *Case) Role {
	switch {
	case p.IsTeam(who) && who == p.Coordinator:
		return Coordinator
	case p.IsTeam(who):
		return Member
	case c != nil && who == c.Reporter:
		return Reporter
	}
	return Outsider
}

// Case is a case as stored, as far as the policy decides on it.
type Case struct {
	ID        CaseID
	Reporter  Person
	Stage     Stage
	Handler   Person
	CreatedAt time.Time
	Embargo   Embargo
	Deadlines []Deadline
	// Advisory is the GHSA ID ("" while there is none), AdvisoryURL its
	// page and Repository its repository (owner/name; "" the default);
	// ForkURL the private fork's address.
	Advisory, AdvisoryURL, Repository, ForkURL string
	// Channel is how the reporter reached the team; Report is the GHSA ID
	// of the GitHub private report that opened the case.
	Channel Channel
	Report  string
	// ReporterGitHub is the GitHub account the reporter named as theirs.
	ReporterGitHub string
	// Summary and Description are the advisory's public text ("" while
	// the neutral placeholder stands).
	PublicSummary, PublicDescription string
	NeedToKnow                       []NeedToKnow
	// RoomPlatform is the platform the case's room was made on ("" before
	// it has one: it is made on the team room's).
	RoomPlatform Platform
}

// Finished reports whether the case is published, rejected or closed: no
// clock runs for it any more and nothing may restart one.
func (c *Case) Finished() bool { return c.Stage.Finished() }

// Deadline returns the case's deadline of kind, nil if it has none.
func (c *Case) Deadline(kind DeadlineKind) *Deadline {
	for i := range c.Deadlines {
		if c.Deadlines[i].Kind == kind {
			return &c.Deadlines[i]
		}
	}
	return nil
}

// Deadline is one promise of a case and how far its timer has come.
type Deadline struct {
	Kind                    DeadlineKind
	StartedAt, DueAt, MetAt time.Time
	RemindAt, NextAt        time.Time
	Reminded                bool
	LadderStep              int
	// EscalatedBy is the reporter whose !escalate made the next step due
	// ("" when the clock did).
	EscalatedBy Person
}

// Met reports whether the promise was kept (or answered late).
func (d *Deadline) Met() bool { return !d.MetAt.IsZero() }

// Request is who asks, where, when, under which policy.
type Request struct {
	By Person
	// Device is how far the device By wrote from is theirs (team members;
	// reporters are trusted on first use).
	Device DeviceTrust
	Where  Place
	Now    time.Time
	Policy *Policy
}

// Refusal is a command the policy refuses: it changes nothing, and Reason
// is what the person reads. Action names the attempt in the audit log.
type Refusal struct {
	Action string
	Reason string
	// NotTeam marks a team command from someone not on the team, which
	// gets its own short answer.
	NotTeam bool
}

func (r *Refusal) Error() string { return r.Reason }

func refusef(action, format string, args ...any) *Refusal {
	return &Refusal{Action: action, Reason: fmt.Sprintf(format, args...)}
}

// Decision is everything a command or event changes, for the handlers to
// apply in one transaction: nothing happens that is not in it.
type Decision struct {
	// Action and Detail are the audit line ("" Action: nothing to audit).
	Action, Detail string
	// Stage is the new stage ("" unchanged); Handler the new handler.
	Stage   Stage
	Handler Person
	// Embargo is the new embargo, nil if unchanged.
	Embargo    *Embargo
	Deadlines  []DeadlineChange
	Facts      []FactChange
	NeedToKnow []NeedToKnowChange
	Effects    []Effect
	Say        []Message
	// Pin re-pins a team member's identity (nil: none).
	Pin *Pin
	// Cancel is the case's queued work this decision makes wrong (nil:
	// none), cancelled in the same transaction.
	Cancel *Cancel
	// Fired is a deadline's firing (timers only; nil: none).
	Fired *Fired
	// SetupAt is when a new case's room and advisory may be set up (zero:
	// unchanged).
	SetupAt time.Time
}

// Pin is a team member's identity pinned anew.
type Pin struct {
	Member Person
	Key    string
}

// Changes reports whether the decision changes any state (more than its
// audit line and messages).
func (d Decision) Changes() bool {
	return d.Stage != "" || d.Handler != "" || d.Embargo != nil || len(d.Deadlines) > 0 || len(d.Facts) > 0 || len(d.NeedToKnow) > 0 || len(d.Effects) > 0 || d.Cancel != nil || d.Fired != nil || !d.SetupAt.IsZero()
}

// DeadlineOp is what happens to a deadline.
type DeadlineOp int

// The deadline operations.
const (
	// StartDeadline (re)starts the clock of Kind, counted from At.
	StartDeadline DeadlineOp = iota
	// MeetDeadline records that Kind was kept at At.
	MeetDeadline
	// StopDeadlines stops every clock of the case.
	StopDeadlines
	// EscalateDeadline makes Kind's next ladder step due at At.
	EscalateDeadline
)

// DeadlineChange is one change to a case's clocks.
type DeadlineChange struct {
	Op   DeadlineOp
	Kind DeadlineKind
	At   time.Time
}

// Fact is a recorded fact of a case, for its advisory and announcement.
type Fact string

// The facts.
const (
	FactAffected Fact = "affected"
	FactPatched  Fact = "patched"
	FactSeverity Fact = "severity"
	FactSummary  Fact = "summary"
	FactCredit   Fact = "credit"
	// FactDescription is the advisory's public description.
	FactDescription Fact = "description"
	// FactCVE is the CVE GitHub assigned.
	FactCVE Fact = "cve"
	// FactReporterGitHub is the reporter's own GitHub account.
	FactReporterGitHub Fact = "reporter_github"
)

// FactChange sets a fact.
type FactChange struct {
	Fact  Fact
	Value string
}

// NeedToKnow is a person on an embargo's need-to-know list, with the
// GitHub account that reads the private advisory ("" if none).
type NeedToKnow struct {
	Who    Person
	GitHub string
}

// NeedToKnowChange adds a person to the need-to-know list, or removes them.
type NeedToKnowChange struct {
	Who    Person
	GitHub string
	Remove bool
}

// Effect is a side effect on a channel beyond messages.
type Effect interface{ effect() }

// InviteToCaseRoom invites someone to the case's room.
type InviteToCaseRoom struct{ Who Person }

// RemoveFromCaseRoom removes someone from the case's room.
type RemoveFromCaseRoom struct {
	Who    Person
	Reason string
}

// AdvisoryOp is one operation on the case's GitHub advisory; its result
// is told where the command was typed.
type AdvisoryOp struct {
	Op     AdvisoryOpKind
	Login  string
	Remove bool
	// State is the advisory's new state (AdvisoryState): draft accepts a
	// private report, closed closes it.
	State string
	// Repository is where AdvisoryMove drafts the advisory anew.
	Repository string
	// Update fields, each sent only when set.
	Affected, Patched, Severity, Credit string
	Summary, Description                string
	CWEs                                []string
	// For is the need-to-know person an AdvisoryCollaborator adds Login
	// for ("" when the account was named directly).
	For Person
	// Force is the coordinator's override of an embargo (AdvisoryPublish).
	Force *Force
}

// AdvisoryOpKind names an advisory operation.
type AdvisoryOpKind int

// The advisory operations.
const (
	AdvisoryCollaborator AdvisoryOpKind = iota
	AdvisoryUpdate
	AdvisoryFork
	AdvisoryCVE
	AdvisoryPublish
	AdvisoryCreate
	// AdvisoryState changes the advisory's state on GitHub.
	AdvisoryState
	// AdvisoryMove drafts the advisory in another repository and closes
	// the old one.
	AdvisoryMove
)

// Announce posts the announcement in every announcement room where it is
// not yet posted.
type Announce struct {
	// Force is the coordinator's override of an embargo.
	Force *Force
}

// CreateCaseRoom makes a new case's room, inviting Invite (of whom Team
// may invite there), no earlier than At.
type CreateCaseRoom struct {
	Name         string
	Invite, Team []Person
	At           time.Time
	// Platform is where the room is made: the team room's.
	Platform Platform
}

// DraftAdvisory drafts a new case's GitHub advisory, no earlier than At.
type DraftAdvisory struct{ At time.Time }

func (CreateCaseRoom) effect()     {}
func (DraftAdvisory) effect()      {}
func (InviteToCaseRoom) effect()   {}
func (RemoveFromCaseRoom) effect() {}
func (AdvisoryOp) effect()         {}
func (Announce) effect()           {}

// AudienceKind is who reads a message.
type AudienceKind int

// The audiences.
const (
	// Here answers in the room the command was typed in.
	Here AudienceKind = iota
	// ToCaseRoom posts in the case's room (the reporter reads it).
	ToCaseRoom
	// ToTeamRoom posts in the team room.
	ToTeamRoom
	// ToPerson sends a direct message to Who.
	ToPerson
	// InCaseRoom posts in the case's room only: an email reporter, who is
	// not in it, is not mailed what it says.
	InCaseRoom
)

// Audience is where a message goes.
type Audience struct {
	Kind AudienceKind
	Who  Person
}

// Message is a text to send: a template's data, or a reaction (React).
type Message struct {
	To    Audience
	Data  templates.Data
	React string
	// Mentions are the people the message pings (ToTeamRoom; a direct
	// message pings its reader).
	Mentions []Person
	// Apart sends a team room message at once, not behind the case's
	// queued work (which may wait for its set-up slot).
	Apart bool
}

func say(to AudienceKind, d templates.Data) Message { return Message{To: Audience{Kind: to}, Data: d} }

func react(key string) Message { return Message{To: Audience{Kind: Here}, React: key} }
