package disclosure

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/templates"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func testPolicy() *Policy {
	cal, _ := NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
	n := func(s string) Notify { v, _ := ParseNotify(s); return v }
	return &Policy{
		Calendar:    cal,
		SLA:         SLA{Acknowledge: Span{Fixed: 48 * time.Hour}, DetailedResponse: Span{Fixed: 96 * time.Hour}, UpdateInterval: Span{WorkingDays: 5}, RepeatEvery: Span{Fixed: 24 * time.Hour}},
		Ladder:      Ladder{{Notify: n("coordinator")}, {After: Span{Fixed: 24 * time.Hour}, Notify: n("backup")}, {After: Span{Fixed: 48 * time.Hour}, Notify: n("team")}},
		Team:        []Person{"@alice:x", "@bob:x"},
		Coordinator: "@alice:x", Backup: "@bob:x", TeamRoom: "!team:x", CommandPrefix: "!sec",
	}
}

var (
	one = CaseID{Year: 2026, Seq: 1}
	two = CaseID{Year: 2026, Seq: 2}
)

func TestTeamCommandsReachOnlyWhatTheRoomMayRead(t *testing.T) {
	p := testPolicy()
	for _, tc := range []struct {
		name   string
		by     Person
		where  Place
		scope  Scope
		named  CaseID
		want   CaseID
		reason string // "" when allowed
	}{
		{"an outsider anywhere", "@mallory:x", Place{Kind: TeamRoom}, NoCase, CaseID{}, CaseID{}, "only the security team"},
		{"a reporter in their own case room", "@reporter:x", Place{Kind: CaseRoom, Case: one}, OneCase, CaseID{}, CaseID{}, "only the security team"},
		{"list in the team room", "@bob:x", Place{Kind: TeamRoom}, AllCases, CaseID{}, CaseID{}, ""},
		{"list in a member's private chat", "@bob:x", Place{Kind: PrivateChat}, AllCases, CaseID{}, CaseID{}, ""},
		{"list in a case room", "@bob:x", Place{Kind: CaseRoom, Case: one}, AllCases, CaseID{}, CaseID{}, "answers only in the team room"},
		{"status of the room's case, implied", "@bob:x", Place{Kind: CaseRoom, Case: one}, OneCase, CaseID{}, one, ""},
		{"status of the room's case, named", "@bob:x", Place{Kind: CaseRoom, Case: one}, OneCase, one, one, ""},
		{"status of another case from a case room", "@bob:x", Place{Kind: CaseRoom, Case: one}, OneCase, two, CaseID{}, "Ask about other cases in the team room"},
		{"status of a named case in the team room", "@alice:x", Place{Kind: TeamRoom}, OneCase, two, two, ""},
		{"a case command in the team room without a case", "@alice:x", Place{Kind: TeamRoom}, OneCase, CaseID{}, CaseID{}, "which case?"},
		{"anything in a public room", "@alice:x", Place{Kind: Elsewhere}, NoCase, CaseID{}, CaseID{}, "nothing of a case is shown here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.TeamCommand("status", tc.scope, tc.by, DeviceVerified, tc.where, tc.named)
			if tc.reason == "" {
				if err != nil || got != tc.want {
					t.Errorf("got %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("got %v, %v; want a refusal saying %q", got, err, tc.reason)
			}
			if strings.Contains(r.Reason, two.String()) && tc.where.Case == one {
				t.Errorf("the refusal in case room %s names %s: %q", one, two, r.Reason)
			}
		})
	}
}

func req(by Person, where Place) Request {
	return Request{By: by, Device: DeviceVerified, Where: where, Now: now, Policy: testPolicy()}
}

func TestPublishDuringAnEmbargo(t *testing.T) {
	embargoed := &Case{ID: one, Stage: StageAuditDone, Embargo: Embargo{State: EmbargoActive, End: now.Add(72 * time.Hour)}}
	inRoom := Place{Kind: CaseRoom, Case: one}
	for _, tc := range []struct {
		name    string
		by      Person
		force   bool
		refused string
	}{
		{"a member without --force", "@bob:x", false, "under embargo"},
		{"a member with --force", "@bob:x", true, "only the coordinator"},
		{"the coordinator without --force", "@alice:x", false, "under embargo"},
		{"the coordinator with --force", "@alice:x", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := embargoed.Publish(req(tc.by, inRoom), tc.force)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) || d.Changes() || d.Embargo != nil {
					t.Errorf("got %+v, %v; want a refusal saying %q and no change", d, err, tc.refused)
				}
				return
			}
			if err != nil || d.Stage != StagePublished || d.Embargo == nil || d.Embargo.State != EmbargoExited || d.Detail == "" {
				t.Errorf("got %+v, %v; want published, the embargo ended, the override audited", d, err)
			}
		})
	}
	// Out of order is refused before anything about the embargo.
	early := &Case{ID: one, Stage: StageConfirmed, Embargo: embargoed.Embargo}
	if d, err := early.Publish(req("@alice:x", inRoom), true); err == nil || d.Embargo != nil {
		t.Errorf("a premature forced publish: %+v, %v", d, err)
	}
}

func TestOnlyTheCoordinatorLifts(t *testing.T) {
	c := &Case{ID: one, Stage: StageConfirmed, Embargo: Embargo{State: EmbargoActive, End: now.Add(72 * time.Hour)}}
	if _, err := c.LiftEmbargo(req("@bob:x", Place{Kind: TeamRoom})); err == nil {
		t.Error("a member lifted the embargo")
	}
	d, err := c.LiftEmbargo(req("@alice:x", Place{Kind: TeamRoom}))
	if err != nil || d.Embargo.State != EmbargoExited {
		t.Fatalf("the coordinator's lift: %+v, %v", d, err)
	}
	toReporter := false
	for _, m := range d.Say {
		_, lifted := m.Data.(templates.EmbargoLifted)
		toReporter = toReporter || (m.To.Kind == ToCaseRoom && lifted)
	}
	if !toReporter {
		t.Error("the reporter is not told")
	}
}

func TestConfirmChecksVersionsBeforeAnything(t *testing.T) {
	c := &Case{ID: one, Stage: StageAssigned}
	if d, err := c.Confirm(req("@bob:x", Place{Kind: TeamRoom}), strings.Repeat("1", 300), ""); err == nil || d.Stage != "" {
		t.Errorf("over-long versions: %+v, %v", d, err)
	}
}

func TestNeedToKnowWithAGitHubNameNeedsGitHub(t *testing.T) {
	c := &Case{ID: one, Stage: StageConfirmed}
	d, err := c.AddNeedToKnow(req("@bob:x", Place{Kind: TeamRoom}), "@dan:x", "dan-gh")
	if err == nil || d.Changes() {
		t.Errorf("with GitHub off: %+v, %v", d, err)
	}
}

func TestFinishedCasesKeepNoClock(t *testing.T) {
	for _, stage := range []Stage{StagePublished, StageRejected, StageClosed} {
		c := &Case{ID: one, Stage: stage, Deadlines: []Deadline{{Kind: DeadlineUpdate, DueAt: now.Add(-time.Hour)}, {Kind: DeadlineAcknowledge, DueAt: now.Add(-time.Hour)}}}
		r := req("@bob:x", Place{Kind: CaseRoom, Case: one})
		if d := c.TeamSpoke(r); d.Changes() || d.Action != "" {
			t.Errorf("%s: a team message decided %+v", stage, d)
		}
		if d, err := c.Update(r, "news"); err == nil && len(d.Deadlines) > 0 {
			t.Errorf("%s: !sec update restarted a clock: %+v", stage, d.Deadlines)
		}
		if d, err := c.Escalate(req("@reporter:x", Place{Kind: CaseRoom, Case: one})); err == nil || d.Changes() {
			t.Errorf("%s: !escalate: %+v, %v", stage, d, err)
		}
		if !c.Finished() {
			t.Errorf("%s: the clock runs", stage)
		}
	}
}

func TestEscalateTellsTheNextContactOnce(t *testing.T) {
	p := testPolicy()
	due := now.Add(-2 * time.Hour)
	for _, tc := range []struct {
		name string
		step int
		next time.Time
		want string
	}{
		{"nobody told yet, the step is due", 0, due, "on its way to the security coordinator"},
		{"the coordinator was told", 1, due.Add(24 * time.Hour), "escalated the overdue detailed response to the backup contact, @bob:x,"},
		{"the backup was told", 2, due.Add(48 * time.Hour), "to the whole security team"},
		{"every step was used", 3, due.Add(72 * time.Hour), "Everyone on the escalation ladder has been told"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Case{ID: one, Stage: StageAssigned, Deadlines: []Deadline{{Kind: DeadlineResponse, DueAt: due, LadderStep: tc.step, NextAt: tc.next}}}
			d, err := c.Escalate(Request{By: "@reporter:x", Where: Place{Kind: PrivateChat}, Now: now, Policy: p})
			if err != nil {
				t.Fatal(err)
			}
			set, _ := templates.Load("")
			md, _ := set.RenderData(d.Say[0].Data)
			if md = templates.Unescape(md); !strings.Contains(md, tc.want) {
				t.Errorf("answer %q, want %q", md, tc.want)
			}
			escalates := len(d.Deadlines) == 1 && d.Deadlines[0].Op == EscalateDeadline
			if wantEscalate := strings.Contains(tc.want, "escalated") || strings.Contains(tc.want, "whole security team"); escalates != wantEscalate {
				t.Errorf("escalates %v, want %v", escalates, wantEscalate)
			}
		})
	}
}

func TestOpeningInvitesTheReporterAndTheTeamAndStartsTheClocks(t *testing.T) {
	p := testPolicy()
	p.Team = append(p.Team, "@secbot:x")
	p.Rotation = true
	o := p.Open(ChannelChat, "@reporter:x", "@secbot:x", 2, now)
	if want := []Person{"@reporter:x", "@alice:x", "@bob:x"}; !slices.Equal(o.Invite, want) {
		t.Errorf("invites %v, want %v (never the bot itself)", o.Invite, want)
	}
	if len(o.Deadlines) != 2 || o.Deadlines[0].Kind != DeadlineAcknowledge || o.Deadlines[1].Kind != DeadlineResponse {
		t.Errorf("clocks %+v", o.Deadlines)
	}
	if !o.AcknowledgeBy.Equal(now.Add(48*time.Hour)) || !o.RespondBy.Equal(now.Add(96*time.Hour)) {
		t.Errorf("due %s and %s", o.AcknowledgeBy, o.RespondBy)
	}
	if o.Suggested != "@bob:x" {
		t.Errorf("rotation suggests %s for case 2", o.Suggested)
	}
}

func TestTheReporterNamesOnlyTheirOwnGitHubAccountOnce(t *testing.T) {
	r := req("@reporter:x", Place{Kind: CaseRoom, Case: one})
	r.Policy.GitHub = true
	c := &Case{ID: one, Stage: StageAssigned}
	d, err := c.NameOwnGitHub(r, "rita")
	if err != nil || len(d.Effects) != 1 || len(d.Facts) != 1 || d.Facts[0].Value != "rita" {
		t.Fatalf("first name: %+v, %v", d, err)
	}
	c.ReporterGitHub = "rita"
	if _, err := c.NameOwnGitHub(r, "RITA"); err != nil {
		t.Errorf("the same account again: %v", err)
	}
	if d, err := c.NameOwnGitHub(r, "mallory"); err == nil || d.Changes() {
		t.Errorf("a second, other account was added: %+v, %v", d, err)
	}
}

func TestConfirmSendsGitHubARange(t *testing.T) {
	r := req("@bob:x", Place{Kind: TeamRoom})
	r.Policy.GitHub = true
	c := &Case{ID: one, Stage: StageAssigned}
	d, err := c.Confirm(r, "1.0 1.1", "1.2")
	if err != nil {
		t.Fatal(err)
	}
	op, ok := d.Effects[0].(AdvisoryOp)
	if !ok || op.Affected != ">= 1.0, <= 1.1" || op.Patched != "1.2" {
		t.Errorf("sent to GitHub: %+v", d.Effects)
	}
	if d, err := c.Confirm(r, "all of them", ""); err == nil || d.Stage != "" {
		t.Errorf("unparsable versions: %+v, %v", d, err)
	}
}

func TestNothingIsPublishedWithThePlaceholder(t *testing.T) {
	r := req("@alice:x", Place{Kind: TeamRoom})
	r.Policy.GitHub = true
	c := &Case{ID: one, Stage: StageAuditDone, PublicSummary: "Out-of-bounds write"}
	if d, err := c.Publish(r, false); err == nil || !strings.Contains(err.Error(), "placeholder") || d.Changes() {
		t.Errorf("without a description: %+v, %v", d, err)
	}
	c.PublicDescription = "A crafted image overflows a buffer."
	d, err := c.Publish(r, false)
	if err != nil || d.Stage != "" || len(d.Effects) != 1 || d.Effects[0].(AdvisoryOp).Op != AdvisoryPublish {
		t.Errorf("with its public text: %+v, %v; want GitHub asked, the stage unmoved", d, err)
	}
	// Published means GitHub published it.
	c.Advisory = "GHSA-aaaa-bbbb-cccc"
	if d := c.Published(r, nil); d.Stage != StagePublished || len(d.Effects) != 1 {
		t.Errorf("GitHub's confirmation: %+v", d)
	}
	c.Stage = StagePublished
	if d := c.Published(r, nil); d.Changes() {
		t.Errorf("a second confirmation changes %+v", d)
	}
	d, err = c.SetDescription(r, "A crafted image overflows a buffer.")
	if op, ok := d.Effects[0].(AdvisoryOp); err != nil || !ok || op.Description == "" {
		t.Errorf("the description is not sent to GitHub: %+v, %v", d, err)
	}
}

func TestTakingSomeoneOffTheListTakesThemOffTheAdvisory(t *testing.T) {
	r := req("@bob:x", Place{Kind: TeamRoom})
	r.Policy.GitHub = true
	c := &Case{ID: one, Stage: StageConfirmed, NeedToKnow: []NeedToKnow{{Who: "@dan:x", GitHub: "dan-gh"}}}
	d, err := c.RemoveNeedToKnow(r, "@dan:x", "")
	if err != nil {
		t.Fatal(err)
	}
	revoked := false
	for _, e := range d.Effects {
		if op, ok := e.(AdvisoryOp); ok && op.Op == AdvisoryCollaborator && op.Remove && op.Login == "dan-gh" {
			revoked = true
		}
	}
	if !revoked {
		t.Errorf("the stored GitHub account keeps reading the advisory: %+v", d.Effects)
	}
	d, err = (&Case{ID: one, Stage: StageConfirmed}).AddNeedToKnow(r, "@erin:x", "erin-gh")
	if err != nil || len(d.NeedToKnow) != 1 || d.NeedToKnow[0].GitHub != "erin-gh" {
		t.Errorf("the GitHub account is not kept with the person: %+v, %v", d.NeedToKnow, err)
	}
}

func TestAMissingAdvisoryCanBeDraftedAgain(t *testing.T) {
	r := req("@bob:x", Place{Kind: TeamRoom})
	r.Policy.GitHub = true
	c := &Case{ID: one, Stage: StageAssigned}
	d, err := c.CreateAdvisory(r)
	if op, ok := d.Effects[0].(AdvisoryOp); err != nil || !ok || op.Op != AdvisoryCreate {
		t.Errorf("no advisory: %+v, %v", d, err)
	}
	c.Advisory = "GHSA-aaaa-bbbb-cccc"
	if d, err := c.CreateAdvisory(r); err != nil || d.Changes() {
		t.Errorf("with one: %+v, %v", d, err)
	}
}

func TestNewCasesAreSetUpAtMostCapAnHour(t *testing.T) {
	p := testPolicy()
	p.MaxNewCasesPerHour = 3
	var scheduled []time.Time
	var slots []time.Time
	bursts := 0
	for i := range 8 { // eight reports within a minute
		at := now.Add(time.Duration(i) * time.Second)
		var recent []time.Time
		for _, s := range scheduled {
			if s.After(at.Add(-time.Hour)) {
				recent = append(recent, s)
			}
		}
		slot, first := p.SetupSlot(recent, at)
		if first {
			bursts++
		}
		scheduled = append(scheduled, slot)
		slots = append(slots, slot)
	}
	for i, s := range slots {
		// No hour-long window holds more than three set-ups.
		n := 0
		for _, o := range slots {
			if !o.Before(s) && o.Before(s.Add(time.Hour)) {
				n++
			}
		}
		if n > 3 {
			t.Errorf("%d set-ups in the hour from slot %d (%s)", n, i, s)
		}
	}
	if !slots[2].Equal(now.Add(2*time.Second)) || !slots[3].Equal(now.Add(time.Hour)) || !slots[6].Equal(now.Add(2*time.Hour)) {
		t.Errorf("slots %v", slots)
	}
	if bursts != 1 {
		t.Errorf("the team would be told %d times, want once per burst", bursts)
	}
	p.MaxNewCasesPerHour = 0
	if slot, _ := p.SetupSlot(scheduled, now); !slot.Equal(now) {
		t.Errorf("without a cap: %s", slot)
	}
}
