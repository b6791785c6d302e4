package disclosure

import (
	"slices"
	"time"
)

// Opening is what the policy decides when a report opens a case: who the
// case room invites, which clocks start, by when the promises fall due and
// whom the rotation suggests as handler.
type Opening struct {
	// Invite is the reporter (on chat; an email reporter is never in a
	// room: the room is the team's) and the team; Team the team members
	// of it, who may invite in the room.
	Invite, Team             []Person
	Deadlines                []DeadlineChange
	AcknowledgeBy, RespondBy time.Time
	// Suggested is the next handler in the rotation ("" when off).
	Suggested Person
}

// Open decides a new case's set-up: case number seq, reported by reporter
// through ch at at (the clocks count from then); self is the bot, which is
// never invited. A reporter on GitHub is not invited to the case room:
// they are on the advisory.
func (p *Policy) Open(ch Channel, reporter, self Person, seq int, at time.Time) Opening {
	o := Opening{
		AcknowledgeBy: p.Local(p.SLA.Due(DeadlineAcknowledge, at, p.Calendar)),
		RespondBy:     p.Local(p.SLA.Due(DeadlineResponse, at, p.Calendar)),
		Deadlines: []DeadlineChange{
			{Op: StartDeadline, Kind: DeadlineAcknowledge, At: at},
			{Op: StartDeadline, Kind: DeadlineResponse, At: at},
		},
	}
	if ch == ChannelMatrix {
		o.Invite = append(o.Invite, reporter)
	}
	for _, member := range p.Team {
		if member != reporter && member != self {
			o.Invite = append(o.Invite, member)
		}
		if member != self {
			o.Team = append(o.Team, member)
		}
	}
	if p.Rotation && len(p.Team) > 0 && seq > 0 {
		// Round-robin by case number, as Kubernetes rotates its fix lead.
		o.Suggested = p.Team[(seq-1)%len(p.Team)]
	}
	return o
}

// SetupSlot is when a new case's room, advisory and team invites may be
// made: at once while fewer than MaxNewCasesPerHour cases were set up in
// the last hour, else as soon as the hour allows, in order. scheduled are
// the set-up times of the cases set up (or to be) since an hour ago, in
// any order. first is true for the first case of a burst that waits: the
// team is told once.
func (p *Policy) SetupSlot(scheduled []time.Time, now time.Time) (slot time.Time, first bool) {
	limit := p.MaxNewCasesPerHour
	if limit <= 0 || len(scheduled) < limit {
		return now, false
	}
	sorted := slices.Clone(scheduled)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	// At most limit set-ups in any hour: this one comes an hour after the
	// limit-th latest.
	slot = sorted[len(sorted)-limit].Add(time.Hour)
	if !slot.After(now) {
		return now, false
	}
	return slot, !sorted[len(sorted)-1].After(now)
}
