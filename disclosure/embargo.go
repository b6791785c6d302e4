package disclosure

import (
	"errors"
	"time"
)

// EmbargoState follows CERT/CC's Vultron protocol.
type EmbargoState string

// The embargo states: none → proposed → active → revise → exited.
const (
	EmbargoNone     EmbargoState = "none"
	EmbargoProposed EmbargoState = "proposed"
	EmbargoActive   EmbargoState = "active"
	EmbargoRevise   EmbargoState = "revise"
	EmbargoExited   EmbargoState = "exited"
)

// Sentinel errors of the embargo's transitions.
var (
	ErrDateInPast = errors.New("the embargo end must be in the future")
	ErrNoProposal = errors.New("there is no embargo proposal to answer")
	ErrNoEmbargo  = errors.New("there is no embargo")
)

// Embargo is a case's embargo: an agreed end (while active or under
// revision) and a pending proposal (while proposed or under revision).
type Embargo struct {
	State    EmbargoState
	End      time.Time
	Proposed time.Time
}

func (e Embargo) state() EmbargoState {
	if e.State == "" {
		return EmbargoNone
	}
	return e.State
}

// Propose puts an end date to the reporter. A proposal during an active
// embargo is a revision: the agreed end stays in force until it is agreed.
func (e Embargo) Propose(end, now time.Time) (Embargo, error) {
	if !end.After(now) {
		return e, ErrDateInPast
	}
	switch e.state() {
	case EmbargoActive, EmbargoRevise:
		return Embargo{State: EmbargoRevise, End: e.End, Proposed: end}, nil
	default:
		return Embargo{State: EmbargoProposed, Proposed: end}, nil
	}
}

// Agree accepts the pending proposal.
func (e Embargo) Agree() (Embargo, error) {
	switch e.state() {
	case EmbargoProposed, EmbargoRevise:
		return Embargo{State: EmbargoActive, End: e.Proposed}, nil
	}
	return e, ErrNoProposal
}

// Disagree declines the pending proposal; a declined revision leaves the
// active embargo as it was.
func (e Embargo) Disagree() (Embargo, error) {
	switch e.state() {
	case EmbargoProposed:
		return Embargo{State: EmbargoNone}, nil
	case EmbargoRevise:
		return Embargo{State: EmbargoActive, End: e.End}, nil
	}
	return e, ErrNoProposal
}

// Lift ends the embargo early (as it must when the details go public).
func (e Embargo) Lift() (Embargo, error) {
	switch e.state() {
	case EmbargoProposed, EmbargoActive, EmbargoRevise:
		return Embargo{State: EmbargoExited}, nil
	}
	return e, ErrNoEmbargo
}

// Blocking reports whether publishing and announcing must wait: while an
// embargo is proposed, or agreed and not yet over.
func (e Embargo) Blocking(now time.Time) bool {
	switch e.state() {
	case EmbargoProposed:
		return true
	case EmbargoActive, EmbargoRevise:
		return now.Before(e.End)
	}
	return false
}

// Expired reports whether an agreed embargo's end has passed.
func (e Embargo) Expired(now time.Time) bool {
	return (e.state() == EmbargoActive || e.state() == EmbargoRevise) && !now.Before(e.End)
}

// EmbargoReminders are when the team is reminded of an embargo's end:
// seven days and one day before, and at the start of the day it ends.
func EmbargoReminders(end time.Time, cal Calendar) []time.Time {
	l := end.In(cal.loc())
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, cal.loc())
	return []time.Time{end.Add(-7 * 24 * time.Hour), end.Add(-24 * time.Hour), day}
}
