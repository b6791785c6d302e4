package disclosure

import (
	"errors"
	"fmt"
)

// Stage is where a case is in the five-step process.
type Stage string

// The stages, in order; rejected and closed end a case.
const (
	StageReceived     Stage = "received"
	StageAssigned     Stage = "assigned"
	StageConfirmed    Stage = "confirmed"
	StageAuditStarted Stage = "audit_started"
	StageAuditDone    Stage = "audit_done"
	StagePublished    Stage = "published"
	StageRejected     Stage = "rejected"
	StageClosed       Stage = "closed"
)

// Stages lists every stage.
var Stages = []Stage{StageReceived, StageAssigned, StageConfirmed, StageAuditStarted, StageAuditDone, StagePublished, StageRejected, StageClosed}

// Finished reports whether a case at this stage is published, rejected or
// closed: its clocks stop, and the timers fire nothing for it.
func (s Stage) Finished() bool {
	return s == StagePublished || s == StageRejected || s == StageClosed
}

// Open reports whether the case is still open (everything but closed).
func (s Stage) Open() bool { return s != StageClosed }

// Label is the stage for people.
func (s Stage) Label() string {
	switch s {
	case StageReceived:
		return "received (step 1: awaiting a handler)"
	case StageAssigned:
		return "handler assigned (step 1)"
	case StageConfirmed:
		return "confirmed (step 2)"
	case StageAuditStarted:
		return "audit under way (step 3)"
	case StageAuditDone:
		return "audit done, fixes in preparation (step 4)"
	case StagePublished:
		return "published (step 5)"
	case StageRejected:
		return "rejected"
	case StageClosed:
		return "closed"
	}
	return string(s)
}

// Action is a team command that moves a case.
type Action string

// The actions of the five steps.
const (
	ActClaim      Action = "claim" // claim or assign: step 1
	ActConfirm    Action = "confirm"
	ActAuditStart Action = "audit start"
	ActAuditDone  Action = "audit done"
	ActFork       Action = "fork"
	ActPublish    Action = "publish"
	ActReject     Action = "reject"
	ActClose      Action = "close"
)

// ErrOutOfOrder is wrapped by every refused transition.
var ErrOutOfOrder = errors.New("out of order")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrOutOfOrder, fmt.Sprintf(format, args...))
}

// rank orders the main line of stages.
var rank = map[Stage]int{StageReceived: 0, StageAssigned: 1, StageConfirmed: 2, StageAuditStarted: 3, StageAuditDone: 4, StagePublished: 5}

// Transition returns the stage after action a, or an error wrapping
// ErrOutOfOrder that says, in plain words, what must come first.
func Transition(from Stage, a Action) (Stage, error) {
	if from == StageClosed {
		return from, refuse("the case is closed")
	}
	if from == StageRejected && a != ActClose {
		return from, refuse("the case was rejected; it can only be closed")
	}
	r, known := rank[from]
	if !known && from != StageRejected {
		return from, refuse("unknown stage %q", from)
	}
	switch a {
	case ActClaim:
		if from == StagePublished {
			return from, refuse("the advisory is already published")
		}
		if from == StageReceived {
			return StageAssigned, nil
		}
		return from, nil // a new handler; the stage stays
	case ActConfirm:
		switch {
		case from == StageReceived:
			return from, refuse("assign a handler (claim or assign) before confirming")
		case r >= rank[StageConfirmed]:
			return from, refuse("the report is already confirmed")
		}
		return StageConfirmed, nil
	case ActAuditStart:
		switch {
		case r < rank[StageConfirmed]:
			return from, refuse("confirm the report before starting the audit")
		case r >= rank[StageAuditStarted]:
			return from, refuse("the audit has already started")
		}
		return StageAuditStarted, nil
	case ActAuditDone:
		switch {
		case r < rank[StageAuditStarted]:
			return from, refuse("start the audit before finishing it")
		case r >= rank[StageAuditDone]:
			return from, refuse("the audit is already done")
		}
		return StageAuditDone, nil
	case ActFork:
		switch {
		case r < rank[StageConfirmed]:
			return from, refuse("confirm the report before making a private fork")
		case from == StagePublished:
			return from, refuse("the advisory is already published")
		}
		return from, nil
	case ActPublish:
		switch {
		case r < rank[StageConfirmed]:
			return from, refuse("confirm the report and finish the audit before publishing")
		case r < rank[StageAuditDone]:
			return from, refuse("finish the audit (audit done) before publishing")
		case from == StagePublished:
			return from, refuse("the advisory is already published")
		}
		return StagePublished, nil
	case ActReject:
		if from == StagePublished {
			return from, refuse("the advisory is published; it can no longer be rejected")
		}
		return StageRejected, nil
	case ActClose:
		if from != StagePublished && from != StageRejected {
			return from, refuse("publish or reject the case before closing it")
		}
		return StageClosed, nil
	}
	return from, refuse("unknown action %q", a)
}
