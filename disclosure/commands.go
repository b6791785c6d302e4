package disclosure

import (
	"strings"
	"time"

	"github.com/enarx/secbot/templates"
)

// The team's decisions on a case. Each checks everything (role, stage,
// embargo, arguments) before it returns a decision, so a refusal can change
// nothing; the handlers have already checked where the command was typed
// (Policy.TeamCommand).

func (r Request) inRoomOf(c *Case) bool { return r.Where.Kind == CaseRoom && r.Where.Case == c.ID }

func (r Request) role(c *Case) Role { return r.Policy.RoleOf(r.By, c) }

// doneHere answers the command: a ✅ in the case's own room (the message to
// the reporter already says what happened), else the answer d.
func (r Request) doneHere(c *Case, d templates.Done) Message {
	if r.inRoomOf(c) {
		return react("✅")
	}
	d.CaseID, d.Prefix = c.ID.String(), r.Policy.CommandPrefix
	return say(Here, d)
}

func (r Request) done(c *Case, what string) Message {
	return say(Here, templates.Done{What: what, CaseID: c.ID.String(), Prefix: r.Policy.CommandPrefix})
}

func stageRefusal(action string, err error) *Refusal {
	return refusef(action, "%s.", strings.TrimPrefix(err.Error(), ErrOutOfOrder.Error()+": "))
}

func (c *Case) notClosed(action string) error {
	if c.Stage == StageClosed {
		return refusef(action, "%s is closed.", c.ID)
	}
	return nil
}

// Assign makes who the handler: step 1, and the acknowledgement.
func (c *Case) Assign(r Request, who Person) (Decision, error) {
	if !r.Policy.IsTeam(who) {
		return Decision{}, refusef("assign", "%s is not on the security team; the handler must be a team member.", templates.EscapeMarkdown(who.String()))
	}
	next, err := Transition(c.Stage, ActClaim)
	if err != nil {
		return Decision{}, stageRefusal("assign", err)
	}
	d := Decision{Action: "assign", Detail: "handler " + string(who), Stage: next, Handler: who}
	d.Deadlines = c.meet(r, DeadlineAcknowledge)
	if c.onGitHub() && c.Stage == StageReceived && r.Policy.GitHub {
		// Claiming a private report accepts it on GitHub (triage → draft).
		d.Effects = []Effect{AdvisoryOp{Op: AdvisoryState, State: "draft"}}
	}
	d.Say = []Message{say(ToCaseRoom, templates.Acknowledged{CaseID: c.ID.String(), Handler: who.String()})}
	d.Say = append(d.Say, r.doneHere(c, templates.Done{What: "handler", User: who.String()}))
	return d, nil
}

// meet meets the unmet deadlines of kinds while clocks run; the update
// clock starts when the detailed response is met.
func (c *Case) meet(r Request, kinds ...DeadlineKind) []DeadlineChange {
	if c.Finished() {
		return nil
	}
	var out []DeadlineChange
	for _, k := range kinds {
		if dl := c.Deadline(k); dl != nil && !dl.Met() {
			out = append(out, DeadlineChange{Op: MeetDeadline, Kind: k, At: r.Now})
			if k == DeadlineResponse {
				out = append(out, DeadlineChange{Op: StartDeadline, Kind: DeadlineUpdate, At: r.Now})
			}
		}
	}
	return out
}

// TeamSpoke is a team member's ordinary message in the case room: the
// first one acknowledges, and each restarts a running update clock. A
// finished case has no clock to restart.
//
// An email reporter reads nothing of the room, so there a message meets
// nothing: `reply` is what reaches them.
func (c *Case) TeamSpoke(r Request) Decision {
	if c.Finished() || c.Reporter.Channel() == ChannelEmail {
		return Decision{}
	}
	if r.Device != DeviceVerified {
		// A device the member's identity did not sign may be the
		// homeserver's: its word silences no clock.
		return Decision{Action: "team-message", Detail: "from an unverified device: meets no deadline"}
	}
	return c.spoke(r)
}

// spoke is what the team's word to the reporter meets: the first
// acknowledges, and each restarts a running update clock.
func (c *Case) spoke(r Request) Decision {
	var d Decision
	if dl := c.Deadline(DeadlineAcknowledge); dl != nil && !dl.Met() {
		d.Action, d.Detail = "acknowledge", "first team message"
		d.Deadlines = append(d.Deadlines, DeadlineChange{Op: MeetDeadline, Kind: DeadlineAcknowledge, At: r.Now})
	}
	if c.Deadline(DeadlineUpdate) != nil {
		d.Deadlines = append(d.Deadlines, DeadlineChange{Op: StartDeadline, Kind: DeadlineUpdate, At: r.Now})
	}
	return d
}

// Respond posts the team's detailed response to the reporter.
func (c *Case) Respond(r Request, text string) (Decision, error) {
	if err := c.notClosed("respond"); err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "respond"}
	d.Deadlines = c.meet(r, DeadlineAcknowledge, DeadlineResponse)
	if c.onGitHub() {
		d.Detail = "answered on GitHub"
		d.Say = []Message{r.answeredOnGitHub(c, "respond")}
		return d, nil
	}
	d.Say = []Message{say(ToCaseRoom, templates.TeamResponse{CaseID: c.ID.String(), From: r.By.String(), Text: text}), r.doneHere(c, templates.Done{What: "posted"})}
	return d, nil
}

// Reply sends the team's message to an email reporter, who reads no room;
// it meets the clocks as a team member's message in a chat case's room
// does. A chat reporter reads the case room, where the team writes to them.
func (c *Case) Reply(r Request, text string) (Decision, error) {
	if err := c.notClosed("reply"); err != nil {
		return Decision{}, err
	}
	if c.Reporter.Channel() != ChannelEmail {
		return Decision{}, refusef("reply", "%s's reporter reads its case room: write to them there.", c.ID)
	}
	d := Decision{}
	if !c.Finished() {
		d = c.spoke(r)
	}
	d.Action, d.Detail = "reply", ""
	d.Say = []Message{say(ToCaseRoom, templates.TeamReply{CaseID: c.ID.String(), From: r.By.String(), Text: text}), r.doneHere(c, templates.Done{What: "mailed"})}
	return d, nil
}

// Update posts a progress update to the reporter and restarts the update
// clock, while clocks run.
func (c *Case) Update(r Request, text string) (Decision, error) {
	if err := c.notClosed("update"); err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "update"}
	if !c.Finished() {
		d.Deadlines = []DeadlineChange{{Op: StartDeadline, Kind: DeadlineUpdate, At: r.Now}}
	}
	if c.onGitHub() {
		d.Detail = "answered on GitHub"
		d.Say = []Message{r.answeredOnGitHub(c, "update")}
		return d, nil
	}
	d.Say = []Message{say(ToCaseRoom, templates.TeamUpdate{CaseID: c.ID.String(), From: r.By.String(), Text: text}), r.doneHere(c, templates.Done{What: "posted"})}
	return d, nil
}

// MaxVersionsLength bounds a version range.
const MaxVersionsLength = 200

// checkVersions refuses versions GitHub cannot take, and returns the
// affected ones in GitHub's range syntax.
func checkVersions(action, affected, patched string) (string, error) {
	if len(affected) > MaxVersionsLength || len(patched) > MaxVersionsLength {
		return "", refusef(action, "version ranges are at most %d characters.", MaxVersionsLength)
	}
	if affected == "" {
		return "", nil
	}
	r, err := VersionRange(affected)
	if err != nil {
		return "", refusef(action, "the affected versions: %s (e.g. `1.0-1.1`, `< 1.2` or `>= 1.0, < 1.2`).", templates.EscapeMarkdown(err.Error()))
	}
	return r, nil
}

// versions records the versions and writes them to the advisory.
func (r Request) versions(d *Decision, affected, patched string) {
	if affected != "" {
		d.Facts = append(d.Facts, FactChange{FactAffected, affected})
	}
	if patched != "" {
		d.Facts = append(d.Facts, FactChange{FactPatched, patched})
	}
	if r.Policy.GitHub && (affected != "" || patched != "") {
		d.Effects = append(d.Effects, AdvisoryOp{Op: AdvisoryUpdate, Affected: affected, Patched: patched})
	}
}

// Confirm is step 2: the problem is confirmed (the detailed response),
// with the affected and patched versions if given.
func (c *Case) Confirm(r Request, affected, patched string) (Decision, error) {
	next, err := Transition(c.Stage, ActConfirm)
	if err != nil {
		return Decision{}, stageRefusal("confirm", err)
	}
	affected, err = checkVersions("confirm", affected, patched)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "confirm", Detail: affected, Stage: next}
	r.versions(&d, affected, patched)
	d.Deadlines = c.meet(r, DeadlineAcknowledge, DeadlineResponse)
	d.Say = []Message{say(ToCaseRoom, templates.Confirmed{CaseID: c.ID.String(), Affected: affected}), r.done(c, "confirmed")}
	return d, nil
}

// Versions records the affected (and patched) versions.
func (c *Case) Versions(r Request, affected, patched string) (Decision, error) {
	if err := c.notClosed("versions"); err != nil {
		return Decision{}, err
	}
	affected, err := checkVersions("versions", affected, patched)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "versions", Detail: affected + "; " + patched}
	r.versions(&d, affected, patched)
	d.Say = []Message{react("✅")}
	return d, nil
}

// Severity records the advisory's severity.
func (c *Case) Severity(r Request, severity string) (Decision, error) {
	if err := c.notClosed("severity"); err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "severity", Detail: severity, Facts: []FactChange{{FactSeverity, severity}}, Say: []Message{react("✅")}}
	if r.Policy.GitHub {
		d.Effects = []Effect{AdvisoryOp{Op: AdvisoryUpdate, Severity: severity}}
	}
	return d, nil
}

// CWE records the advisory's weakness types.
func (c *Case) CWE(r Request, cwes []string) (Decision, error) {
	if err := c.notClosed("cwe"); err != nil {
		return Decision{}, err
	}
	if err := r.needGitHub("cwe"); err != nil {
		return Decision{}, err
	}
	return Decision{Action: "cwe", Detail: strings.Join(cwes, " "), Effects: []Effect{AdvisoryOp{Op: AdvisoryUpdate, CWEs: cwes}}, Say: []Message{react("✅")}}, nil
}

// SetSummary records the advisory's public one-line summary.
func (c *Case) SetSummary(r Request, summary string) (Decision, error) {
	if err := c.notClosed("summary"); err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "summary", Facts: []FactChange{{FactSummary, summary}}, Say: []Message{react("✅")}}
	if r.Policy.GitHub {
		d.Effects = []Effect{AdvisoryOp{Op: AdvisoryUpdate, Summary: summary}}
	}
	return d, nil
}

// SetDescription records the advisory's public description and sends it to
// GitHub, replacing the neutral placeholder.
func (c *Case) SetDescription(r Request, description string) (Decision, error) {
	if err := c.notClosed("description"); err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "description", Facts: []FactChange{{FactDescription, description}}, Say: []Message{react("✅")}}
	if r.Policy.GitHub {
		d.Effects = []Effect{AdvisoryOp{Op: AdvisoryUpdate, Description: description}}
	}
	return d, nil
}

// Reject ends the case as not a vulnerability; the reporter is told why.
func (c *Case) Reject(r Request, reason string) (Decision, error) {
	next, err := Transition(c.Stage, ActReject)
	if err != nil {
		return Decision{}, stageRefusal("reject", err)
	}
	d := Decision{Action: "reject", Detail: reason, Stage: next, Cancel: cancelPublishing("the case was rejected")}
	d.Deadlines = []DeadlineChange{{Op: MeetDeadline, Kind: DeadlineAcknowledge, At: r.Now}, {Op: MeetDeadline, Kind: DeadlineResponse, At: r.Now}, {Op: StopDeadlines}}
	if c.onGitHub() {
		// The reporter reads GitHub, not the room: closing the report tells
		// them; the reason is the team's to give on the advisory.
		if r.Policy.GitHub && c.Advisory != "" {
			d.Effects = []Effect{AdvisoryOp{Op: AdvisoryState, State: "closed"}}
		}
		d.Say = []Message{say(Here, templates.Done{What: "rejected_github", CaseID: c.ID.String(), URL: c.AdvisoryURL})}
		return d, nil
	}
	d.Say = []Message{say(ToCaseRoom, templates.Rejected{CaseID: c.ID.String(), Reason: reason}), r.done(c, "rejected")}
	return d, nil
}

// Audit is step 3: the audit for similar problems starts, or is done.
func (c *Case) Audit(r Request, done bool) (Decision, error) {
	action := ActAuditStart
	if done {
		action = ActAuditDone
	}
	next, err := Transition(c.Stage, action)
	if err != nil {
		return Decision{}, stageRefusal("audit", err)
	}
	// apply records the stage change itself (the timeline `status` shows).
	return Decision{Stage: next, Say: []Message{react("✅")}}, nil
}

// embargoGate refuses publish and announce while an embargo holds, unless
// the coordinator forces it.
func (c *Case) embargoGate(r Request, action string, force bool) (forced bool, err error) {
	if !c.Embargo.Blocking(r.Now) {
		return false, nil
	}
	if !force {
		return false, refusef(action, "%s is under embargo (%s) until %s. Only the coordinator can override with `--force`.", c.ID, c.Embargo.State, c.embargoEnd(r.Policy, c.Embargo))
	}
	if r.role(c) != Coordinator {
		return false, refusef(action+" --force", "only the coordinator (%s) can force a %s during an embargo.", r.Policy.Coordinator, action)
	}
	return true, nil
}

func (c *Case) embargoEnd(p *Policy, e Embargo) string {
	if e.End.IsZero() {
		return "a date is agreed"
	}
	return p.FormatTime(e.End)
}

// Publish is step 5: the advisory is published, then announced.
func (c *Case) Publish(r Request, force bool) (Decision, error) {
	next, err := Transition(c.Stage, ActPublish)
	if err != nil {
		return Decision{}, stageRefusal("publish", err)
	}
	if r.Policy.GitHub && (c.PublicSummary == "" || c.PublicDescription == "") {
		// The placeholder names the case: it must never go public.
		return Decision{}, refusef("publish", "the advisory still carries the neutral placeholder; set its public text first with `%s summary` and `%s description`.", r.Policy.CommandPrefix, r.Policy.CommandPrefix)
	}
	forced, err := c.embargoGate(r, "publish", force)
	if err != nil {
		return Decision{}, err
	}
	detail := ""
	if forced {
		detail = "embargo overridden by the coordinator"
	}
	if r.Policy.GitHub {
		// Published means GitHub published it: the stage moves, the clocks
		// stop and the announcement follows when GitHub confirms (Published).
		return Decision{Action: "publish.request", Detail: detail, Effects: []Effect{AdvisoryOp{Op: AdvisoryPublish, Force: c.forceFor(r, forced)}}, Say: []Message{r.done(c, "publishing")}}, nil
	}
	d := c.published(next)
	d.Detail = detail
	d.Say = append(d.Say, r.done(c, "publishing"))
	return d, nil
}

// Published is GitHub's confirmation that the advisory is public: the case
// is published, its clocks stop, its embargo has nothing left to keep, the
// reporter is told and the announcement follows. Again, or on a case that
// moved on meanwhile, it changes nothing. force is the override the
// publish was made with (nil: none).
//
// An embargo that blocks now and that the publish did not override came
// after it was decided (proposed while GitHub was already publishing):
// the case is published, for it is, but the embargo stays, nothing is
// announced and the team room is told, for the team to decide.
func (c *Case) Published(r Request, force *Force) Decision {
	next, err := Transition(c.Stage, ActPublish)
	if err != nil && c.Stage == StageRejected {
		// Rejected while GitHub was publishing: the advisory is public all
		// the same. Nothing is announced; the team decides what to do.
		return Decision{Action: "publish.after-reject", Detail: "GitHub published " + c.Advisory,
			Say: []Message{say(ToTeamRoom, templates.PublishedAfterReject{CaseID: c.ID.String(), GHSAID: c.Advisory})}}
	}
	if err != nil {
		return Decision{}
	}
	if d, under := c.publishedUnderEmbargo(r, next, force); under {
		return d
	}
	d := c.published(next)
	d.Detail = "GitHub published " + c.Advisory
	return d
}

// publishedUnderEmbargo is GitHub's word that the advisory is public while
// an embargo blocks that no override of the coordinator's covers: the case
// is published and its clocks stop, for it is public, but the embargo
// stays, nothing is announced, and the team room is told.
func (c *Case) publishedUnderEmbargo(r Request, next Stage, force *Force) (Decision, bool) {
	if !c.Embargo.Blocking(r.Now) || force.holds(c, r.Policy) {
		return Decision{}, false
	}
	return Decision{Action: "publish.under-embargo", Detail: "GitHub published " + c.Advisory + " while the embargo stands",
		Stage: next, Deadlines: []DeadlineChange{{Op: StopDeadlines}},
		Say: []Message{say(ToTeamRoom, templates.PublishedUnderEmbargo{CaseID: c.ID.String(), GHSAID: c.Advisory, End: c.embargoEnd(r.Policy, c.Embargo), Prefix: r.Policy.CommandPrefix})}}, true
}

func (c *Case) published(next Stage) Decision {
	d := Decision{Action: "publish", Stage: next, Deadlines: []DeadlineChange{{Op: StopDeadlines}}, Effects: []Effect{Announce{}}}
	// Once the details go public, an embargo has no more to keep.
	if lifted, err := c.Embargo.Lift(); err == nil {
		d.Embargo = &lifted
	}
	d.Say = []Message{say(ToCaseRoom, templates.PublishedReporter{CaseID: c.ID.String()})}
	return d
}

// Announce posts the announcement where it has not been posted yet.
func (c *Case) Announce(r Request, force bool) (Decision, error) {
	if c.Stage != StagePublished && c.Stage != StageClosed {
		return Decision{}, refusef("announce", "publish %s before announcing it.", c.ID)
	}
	forced, err := c.embargoGate(r, "announce", force)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Action: "announce", Effects: []Effect{Announce{Force: c.forceFor(r, forced)}}, Say: []Message{react("⏳")}}
	if forced {
		d.Detail = "embargo overridden by the coordinator"
	}
	return d, nil
}

// Close closes a published or rejected case.
func (c *Case) Close(r Request) (Decision, error) {
	next, err := Transition(c.Stage, ActClose)
	if err != nil {
		return Decision{}, stageRefusal("close", err)
	}
	// A published case's announcement is still due after it is closed
	// (`announce` works on closed cases): only a publish is cancelled.
	return Decision{Action: "close", Stage: next, Deadlines: []DeadlineChange{{Op: StopDeadlines}}, Cancel: cancelPublishing("the case was closed", QueuedPublish),
		Say: []Message{say(ToCaseRoom, templates.Closed{CaseID: c.ID.String()}), r.doneHere(c, templates.Done{What: "closed"})}}, nil
}

// ProposeEmbargo puts an end date to the reporter; during an agreed
// embargo it is a revision that leaves the agreed end in force.
func (c *Case) ProposeEmbargo(r Request, end time.Time) (Decision, error) {
	if c.Finished() {
		return Decision{}, refusef("embargo.propose", "%s is %s; there is nothing left to embargo.", c.ID, c.Stage)
	}
	next, err := c.Embargo.Propose(end, r.Now)
	if err != nil {
		return Decision{}, refusef("embargo.propose", "%s (%s is not in the future).", err, r.Policy.FormatTime(end))
	}
	p := r.Policy
	d := Decision{Action: "embargo.propose", Detail: p.FormatTime(end), Embargo: &next, Cancel: cancelPublishing("an embargo was proposed")}
	d.Say = []Message{say(ToCaseRoom, templates.EmbargoProposed{CaseID: c.ID.String(), End: p.FormatTime(end), Revision: next.State == EmbargoRevise, Current: c.embargoEnd(p, c.Embargo)})}
	answer := templates.Done{What: "embargo_proposed", CaseID: c.ID.String(), End: p.FormatTime(end)}
	if w := p.EmbargoWarnAfter; !w.IsZero() && end.After(p.Calendar.Add(r.Now, w)) {
		answer.Warn = w.String()
	}
	d.Say = append(d.Say, say(Here, answer))
	return d, nil
}

// LiftEmbargo ends the embargo early: the coordinator's decision alone
// (an earlier date the reporter agrees to is the other way).
func (c *Case) LiftEmbargo(r Request) (Decision, error) {
	if r.role(c) != Coordinator {
		return Decision{}, refusef("embargo.lift", "only the coordinator (%s) can end an embargo early. To end it sooner by agreement, propose an earlier date for the reporter to accept.", r.Policy.Coordinator)
	}
	next, err := c.Embargo.Lift()
	if err != nil {
		return Decision{}, refusef("embargo.lift", "%s.", err)
	}
	return Decision{Action: "embargo.lift", Embargo: &next,
		Say: []Message{say(ToCaseRoom, templates.EmbargoLifted{CaseID: c.ID.String()}), r.done(c, "embargo_lifted")}}, nil
}

// AddNeedToKnow puts who on the embargo's need-to-know list and invites
// them to the case room (and, with a GitHub login, to the advisory).
func (c *Case) AddNeedToKnow(r Request, who Person, login string) (Decision, error) {
	if err := c.needToKnowCheck(r, "need-to-know.add", who, login); err != nil {
		return Decision{}, err
	}
	if err := c.joinsCaseRoom(r, "need-to-know.add", who); err != nil {
		return Decision{}, err
	}
	for _, n := range c.NeedToKnow {
		if n.Who == who {
			return Decision{Say: []Message{say(Here, templates.Done{What: "ntk_already", CaseID: c.ID.String(), User: who.String()})}}, nil
		}
	}
	d := Decision{Action: "need-to-know.add", Detail: string(who), NeedToKnow: []NeedToKnowChange{{Who: who, GitHub: login}}, Effects: []Effect{InviteToCaseRoom{Who: who}}}
	if login != "" {
		d.Effects = append(d.Effects, AdvisoryOp{Op: AdvisoryCollaborator, Login: login, For: who})
	}
	d.Say = []Message{say(Here, templates.Done{What: "ntk_added", CaseID: c.ID.String(), User: who.String()})}
	return d, nil
}

// RemoveNeedToKnow takes who off the list, the room and the advisory.
func (c *Case) RemoveNeedToKnow(r Request, who Person, login string) (Decision, error) {
	if err := c.needToKnowCheck(r, "need-to-know.remove", who, login); err != nil {
		return Decision{}, err
	}
	var on *NeedToKnow
	for i := range c.NeedToKnow {
		if c.NeedToKnow[i].Who == who {
			on = &c.NeedToKnow[i]
		}
	}
	if on == nil {
		return Decision{}, refusef("need-to-know.remove", "%s is not on the need-to-know list of %s.", who, c.ID)
	}
	if login == "" && r.Policy.GitHub {
		login = on.GitHub // what they read the advisory as goes with them
	}
	d := Decision{Action: "need-to-know.remove", Detail: string(who), NeedToKnow: []NeedToKnowChange{{Who: who, Remove: true}},
		Effects: []Effect{RemoveFromCaseRoom{Who: who, Reason: "removed from the need-to-know list"}}}
	if login != "" {
		d.Effects = append(d.Effects, AdvisoryOp{Op: AdvisoryCollaborator, Login: login, Remove: true})
	}
	d.Say = []Message{say(Here, templates.Done{What: "ntk_removed", CaseID: c.ID.String(), User: who.String()})}
	return d, nil
}

func (c *Case) needToKnowCheck(r Request, action string, who Person, login string) error {
	if err := c.notClosed(action); err != nil {
		return err
	}
	if who == c.Reporter || r.Policy.IsTeam(who) {
		return refusef(action, "%s is already in the case room as reporter or team member.", who)
	}
	if login != "" {
		return r.needGitHub(action)
	}
	return nil
}

func (r Request) needGitHub(action string) error {
	if !r.Policy.GitHub {
		return refusef(action, "GitHub is not configured for secbot, so cases have no advisory.")
	}
	return nil
}

// InviteToAdvisory adds a GitHub user to the private advisory: the
// reporter naming themself, or the team deciding who needs to know.
func (c *Case) InviteToAdvisory(r Request, login string) (Decision, error) {
	if err := c.notClosed("github.invite"); err != nil {
		return Decision{}, err
	}
	if err := r.needGitHub("github.invite"); err != nil {
		return Decision{}, err
	}
	return Decision{Action: "github.invite", Detail: login, Effects: []Effect{AdvisoryOp{Op: AdvisoryCollaborator, Login: login}},
		Say: []Message{say(Here, templates.Done{What: "github_invite", CaseID: c.ID.String(), Login: login})}}, nil
}

// Fork is step 4: the advisory's temporary private fork.
func (c *Case) Fork(r Request) (Decision, error) {
	if _, err := Transition(c.Stage, ActFork); err != nil {
		return Decision{}, stageRefusal("fork", err)
	}
	if err := r.needGitHub("fork"); err != nil {
		return Decision{}, err
	}
	if c.ForkURL != "" {
		return Decision{Say: []Message{say(Here, templates.Done{What: "fork_exists", CaseID: c.ID.String(), URL: c.ForkURL})}}, nil
	}
	return Decision{Action: "fork", Effects: []Effect{AdvisoryOp{Op: AdvisoryFork}}, Say: []Message{r.done(c, "fork_requested")}}, nil
}

// CVE requests a CVE for the advisory.
func (c *Case) CVE(r Request) (Decision, error) {
	if err := c.notClosed("cve"); err != nil {
		return Decision{}, err
	}
	if c.Stage == StageRejected {
		return Decision{}, refusef("cve", "%s was rejected: there is no vulnerability to give a CVE.", c.ID)
	}
	if err := r.needGitHub("cve"); err != nil {
		return Decision{}, err
	}
	return Decision{Action: "cve", Effects: []Effect{AdvisoryOp{Op: AdvisoryCVE}}, Say: []Message{react("⏳")}}, nil
}

// Invite invites someone (again) to the case room: the reporter (after
// they left or declined), a team member, or someone on the need-to-know
// list. Who else reads the room is the need-to-know list's decision.
func (c *Case) Invite(r Request, who Person) (Decision, error) {
	if err := c.notClosed("invite"); err != nil {
		return Decision{}, err
	}
	if who == "" {
		if c.onGitHub() {
			return Decision{}, refusef("invite", "the reporter of %s is on GitHub, not Matrix: they read the advisory%s.", c.ID, map[bool]string{true: ", " + c.AdvisoryURL}[c.AdvisoryURL != ""])
		}
		who = c.Reporter
	}
	if who.Channel() == ChannelEmail {
		return Decision{}, refusef("invite", "%s writes by email and reads no room: answer them with `%s reply`.", who, r.Policy.CommandPrefix)
	}
	known := who == c.Reporter || r.Policy.IsTeam(who)
	for _, n := range c.NeedToKnow {
		known = known || n.Who == who
	}
	if !known {
		return Decision{}, refusef("invite", "%s is neither the reporter, a team member nor on the need-to-know list; add them with `%s embargo add` first.", who, r.Policy.CommandPrefix)
	}
	if err := c.joinsCaseRoom(r, "invite", who); err != nil {
		return Decision{}, err
	}
	return Decision{Action: "invite", Detail: string(who), Effects: []Effect{InviteToCaseRoom{Who: who}},
		Say: []Message{say(Here, templates.Done{What: "invited", CaseID: c.ID.String(), User: who.String()})}}, nil
}

// CreateAdvisory drafts the case's advisory when it has none (GitHub was
// down or refused secbot when the case opened).
func (c *Case) CreateAdvisory(r Request) (Decision, error) {
	if err := c.notClosed("advisory"); err != nil {
		return Decision{}, err
	}
	if err := r.needGitHub("advisory"); err != nil {
		return Decision{}, err
	}
	if c.Advisory != "" {
		return Decision{Say: []Message{say(Here, templates.Done{What: "advisory_exists", CaseID: c.ID.String(), Name: c.Advisory})}}, nil
	}
	return Decision{Action: "advisory.create", Effects: []Effect{AdvisoryOp{Op: AdvisoryCreate}}, Say: []Message{r.done(c, "advisory_requested")}}, nil
}

// joinsCaseRoom refuses to invite a chat person of another platform than
// the case room's: no platform can invite them there. Such a reporter is
// answered in their direct chat instead.
func (c *Case) joinsCaseRoom(r Request, action string, who Person) error {
	if who.Channel() != ChannelChat || ReadsCaseRoom(who, c.roomHome(r.Policy)) {
		return nil
	}
	return refusef(action, "%s is on another chat than the case room, so they cannot be invited to it; what the team sends them with `%s respond` or `%s update` reaches their direct chat with me.", who, r.Policy.CommandPrefix, r.Policy.CommandPrefix)
}

// roomHome is the platform of the case's room: where it was made, or,
// before it is, the team room's (where it will be). A case keeps its room
// when the team room moves to another platform.
func (c *Case) roomHome(p *Policy) Platform {
	if c.RoomPlatform != "" {
		return c.RoomPlatform
	}
	return p.TeamPlatform()
}
