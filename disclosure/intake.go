package disclosure

import (
	"slices"
	"time"

	"github.com/enarx/secbot/templates"
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
	// The case room is on the team room's platform: only people of that
	// platform can be in it. A chat reporter elsewhere is answered in
	// their DM (the advisory is their private area).
	home := p.TeamPlatform()
	if ch == ChannelChat && ReadsCaseRoom(reporter, home) {
		o.Invite = append(o.Invite, reporter)
	}
	for _, member := range p.Team {
		if member != reporter && member != self && ReadsCaseRoom(member, home) {
			o.Invite = append(o.Invite, member)
		}
		if member != self && ReadsCaseRoom(member, home) {
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

// Intake is a report that opens a case, from any channel, as the channel
// read it: never what it says.
type Intake struct {
	Channel  Channel
	Reporter Person
	// At is when the report was made: the clocks count from it.
	At time.Time
	// Report is the GitHub private report that is the case's advisory
	// (nil for any other channel).
	Report *PrivateReport
	// Source says where the report came from, for the audit line;
	// Unverified marks a report by email whose From nothing proves, and
	// Machine why it is machine-sent ("" for a person's).
	Source     string
	Unverified bool
	Machine    string
}

// PrivateReport is where a GitHub private report is, never what it says.
type PrivateReport struct {
	GHSAID, URL, Repository string
	// Reporter is the login of its submitter; Credits the credits they
	// wrote, as the team is shown them.
	Reporter, Credits string
}

// OpenCase decides everything a new case's set-up does: its clocks, when
// its room and advisory may be set up (within the hourly cap; the team is
// told once when a burst waits), the room with its invitations, the
// advisory drafted for a report that has none, the case room's welcome,
// the team room's notice and the audit line. setups are the set-up times
// of the cases set up since an hour before now; self is the bot.
func (p *Policy) OpenCase(in Intake, id CaseID, self Person, setups []time.Time, now time.Time) (Opening, Decision) {
	open := p.Open(in.Channel, in.Reporter, self, id.Seq, in.At)
	// Many throwaway accounts (on Matrix or GitHub) must not make hundreds
	// of rooms, advisories and ladders at once: past the hourly cap the
	// set-up waits its turn (the answer to the reporter does not).
	slot, burst := p.SetupSlot(setups, now)
	detail := in.Source
	if in.Unverified {
		detail += " (unverified sender)"
	}
	d := Decision{Action: "case.open", Detail: detail, Deadlines: open.Deadlines, SetupAt: slot}
	if burst {
		m := say(ToTeamRoom, templates.IntakeBurst{Cap: p.MaxNewCasesPerHour, Next: p.Local(slot)})
		m.Apart = true
		d.Say = append(d.Say, m)
	}
	// The room first (then its welcome and the team's note), made as soon
	// as the slot allows: the reporter may be waiting to join it.
	d.Effects = append(d.Effects, CreateCaseRoom{Name: "Security report " + id.String(), Invite: open.Invite, Team: open.Team, At: slot, Platform: p.TeamPlatform()})
	if p.GitHub && in.Report == nil {
		d.Effects = append(d.Effects, DraftAdvisory{At: slot})
	}
	team := make([]string, 0, len(p.Team))
	for _, u := range p.Team {
		team = append(team, u.String())
	}
	welcome := templates.Welcome{Plain: p.PlainRooms[p.TeamPlatform()], CaseID: id.String(), Reporter: in.Reporter.String(), Team: team, AcknowledgeBy: open.AcknowledgeBy, RespondBy: open.RespondBy,
		UpdateInterval: p.SLA.UpdateInterval.String(), Email: in.Reporter.Address(), Prefix: p.CommandPrefix,
		Elsewhere: in.Reporter.Channel() == ChannelChat && !ReadsCaseRoom(in.Reporter, p.TeamPlatform())}
	note := templates.TeamNewCase{CaseID: id.String(), Reporter: in.Reporter.String(), AcknowledgeBy: open.AcknowledgeBy, RespondBy: open.RespondBy,
		Suggested: open.Suggested.String(), UnverifiedSender: in.Unverified, Machine: in.Machine}
	if r := in.Report; r != nil {
		// Where the report is, never what it says.
		welcome.GitHubReporter, welcome.AdvisoryURL = r.Reporter, r.URL
		note.GitHubReporter, note.Repository, note.GHSAID, note.AdvisoryURL = r.Reporter, r.Repository, r.GHSAID, r.URL
		note.Credits = r.Credits
		d.Facts = append(d.Facts, FactChange{FactReporterGitHub, r.Reporter})
	}
	// The welcome is for the room: an email reporter, who is not in it,
	// is answered by their channel.
	d.Say = append(d.Say, say(InCaseRoom, welcome), say(ToTeamRoom, note))
	return open, d
}
