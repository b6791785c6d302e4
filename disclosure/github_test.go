package disclosure

import (
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/templates"
)

// reportCase is a case opened by a GitHub private report, its clocks
// running from the report's creation.
func reportCase(stage Stage) *Case {
	created := now.Add(-3 * time.Hour)
	return &Case{ID: one, Reporter: GitHubPerson("octocat"), Stage: stage, CreatedAt: created, Channel: ChannelGitHub,
		Advisory: "GHSA-aaaa-bbbb-cccc", Report: "GHSA-aaaa-bbbb-cccc", AdvisoryURL: "https://github.com/enarx/enarx/security/advisories/GHSA-aaaa-bbbb-cccc",
		Deadlines: []Deadline{{Kind: DeadlineAcknowledge, StartedAt: created}, {Kind: DeadlineResponse, StartedAt: created}}}
}

func gitHubPolicy() *Policy {
	p := testPolicy()
	p.GitHub, p.Repository = true, "enarx/enarx"
	p.Repositories, p.Organizations = []string{"enarx/enarx", "enarx/other"}, []string{"profian"}
	return p
}

func advisoryOps(d Decision) []AdvisoryOp {
	var out []AdvisoryOp
	for _, e := range d.Effects {
		if op, ok := e.(AdvisoryOp); ok {
			out = append(out, op)
		}
	}
	return out
}

func TestAGitHubReportOpensWithoutInvitingItsReporterAndCountsFromItsFiling(t *testing.T) {
	p := testPolicy()
	filed := now.Add(-5 * time.Hour)
	o := p.Open(ChannelGitHub, GitHubPerson("octocat"), "@secbot:x", 1, filed)
	for _, who := range o.Invite {
		if who == GitHubPerson("octocat") {
			t.Errorf("the GitHub reporter is invited to the case room: %v", o.Invite)
		}
	}
	if len(o.Invite) != 2 || !o.AcknowledgeBy.Equal(filed.Add(48*time.Hour)) {
		t.Errorf("invites %v, acknowledge by %s; want the team, by %s", o.Invite, o.AcknowledgeBy, filed.Add(48*time.Hour))
	}
	for _, dc := range o.Deadlines {
		if !dc.At.Equal(filed) {
			t.Errorf("the %s clock starts at %s, not when the report was filed (%s)", dc.Kind, dc.At, filed)
		}
	}
	if m := p.Open(ChannelChat, "@reporter:x", "@secbot:x", 1, filed); m.Invite[0] != "@reporter:x" {
		t.Errorf("a chat reporter is not invited: %v", m.Invite)
	}
}

func TestGitHubStatesMeetOrEndTheCase(t *testing.T) {
	p := gitHubPolicy()
	r := Request{By: "github.com", Now: now, Policy: p}
	for _, tc := range []struct {
		name, state string
		c           *Case
		stage       Stage
		meets, say  bool
		announce    bool
	}{
		{name: "accepted on github.com acknowledges the report", state: "draft", c: reportCase(StageReceived), meets: true},
		{name: "accepted again changes nothing", state: "draft", c: func() *Case { c := reportCase(StageAssigned); c.Deadlines[0].MetAt = now; return c }()},
		{name: "a draft the case moved to does not acknowledge it", state: "draft", c: func() *Case { c := reportCase(StageReceived); c.Advisory = "GHSA-xxxx-yyyy-zzzz"; return c }()},
		{name: "closed on github.com rejects the case and tells the team", state: "closed", c: reportCase(StageAssigned), stage: StageRejected, say: true},
		{name: "closed after a reject changes nothing", state: "closed", c: reportCase(StageRejected)},
		{name: "published on github.com publishes the case and announces", state: "published", c: reportCase(StageAuditDone), stage: StagePublished, say: true, announce: true},
		{name: "published on github.com before the steps were done still publishes", state: "published", c: reportCase(StageAssigned), stage: StagePublished, say: true, announce: true},
		{name: "published again changes nothing", state: "published", c: reportCase(StagePublished)},
		{name: "triage changes nothing", state: "triage", c: reportCase(StageReceived)},
		{name: "a chat case is not driven by GitHub's states", state: "closed", c: func() *Case { c := reportCase(StageAssigned); c.Channel = ChannelChat; return c }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.c.GitHubState(r, tc.state)
			met := false
			for _, dc := range d.Deadlines {
				met = met || (dc.Op == MeetDeadline && dc.Kind == DeadlineAcknowledge)
			}
			announced := false
			for _, e := range d.Effects {
				_, ok := e.(Announce)
				announced = announced || ok
			}
			if d.Stage != tc.stage || met != tc.meets || (len(d.Say) > 0) != tc.say || announced != tc.announce {
				t.Errorf("decision %+v; want stage %q, meets %v, says %v, announces %v", d, tc.stage, tc.meets, tc.say, tc.announce)
			}
		})
	}
}

func TestTheTeamWorksAGitHubReportFromChat(t *testing.T) {
	p := gitHubPolicy()
	r := Request{By: "@alice:x", Where: Place{Kind: TeamRoom}, Now: now, Policy: p}
	c := reportCase(StageReceived)

	d, err := c.Assign(r, "@alice:x")
	if err != nil {
		t.Fatal(err)
	}
	if ops := advisoryOps(d); len(ops) != 1 || ops[0].Op != AdvisoryState || ops[0].State != "draft" {
		t.Errorf("claim makes %+v, want the report accepted on GitHub (state draft)", ops)
	}
	chat := reportCase(StageReceived)
	chat.Channel = ChannelChat
	if d, _ := chat.Assign(r, "@alice:x"); len(advisoryOps(d)) != 0 {
		t.Errorf("claiming a chat case changes its advisory: %+v", d.Effects)
	}

	d, err = c.Respond(r, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range d.Say {
		if m.To.Kind == ToCaseRoom {
			t.Errorf("respond on a GitHub report posts to the case room, which the reporter does not read: %+v", m)
		}
	}
	if len(d.Deadlines) == 0 || d.Detail != "answered on GitHub" {
		t.Errorf("respond records %+v, want the clock met and that the team answered on GitHub", d)
	}
	if done, ok := d.Say[0].Data.(templates.Done); !ok || done.URL != c.AdvisoryURL {
		t.Errorf("the answer does not link the advisory: %+v", d.Say)
	}
	d, err = c.Update(r, "")
	if err != nil || len(d.Deadlines) != 1 || d.Deadlines[0].Kind != DeadlineUpdate || d.Say[0].To.Kind != Here {
		t.Errorf("update records %+v, %v", d, err)
	}

	if _, err := c.Invite(r, ""); err == nil || !strings.Contains(err.Error(), "on GitHub, not Matrix") {
		t.Errorf("inviting the GitHub reporter to the room: %v", err)
	}

	d, err = c.Reject(r, "not a vulnerability")
	if err != nil {
		t.Fatal(err)
	}
	if ops := advisoryOps(d); len(ops) != 1 || ops[0].State != "closed" || d.Stage != StageRejected {
		t.Errorf("reject makes %+v at stage %s, want the report closed on GitHub", ops, d.Stage)
	}
}

func TestTheAdvisoryMovesOnlyToAConfiguredRepositoryBeforePublish(t *testing.T) {
	p := gitHubPolicy()
	r := Request{By: "@alice:x", Where: Place{Kind: TeamRoom}, Now: now, Policy: p}
	for _, tc := range []struct {
		name, to string
		c        *Case
		noGitHub bool
		refusal  string
	}{
		{name: "to another configured repository", to: "enarx/other", c: reportCase(StageAssigned)},
		{name: "to a repository of a watched organization", to: "profian/steward", c: reportCase(StageConfirmed)},
		{name: "named in another case of letters", to: "Enarx/Other", c: reportCase(StageAssigned)},
		{name: "not to a repository nobody configured", to: "mallory/evil", c: reportCase(StageAssigned), refusal: "not one of the configured repositories"},
		{name: "not to where it is", to: "enarx/enarx", c: reportCase(StageAssigned), refusal: "already in enarx/enarx"},
		{name: "not after publish", to: "enarx/other", c: reportCase(StagePublished), refusal: "can no longer move"},
		{name: "not after reject", to: "enarx/other", c: reportCase(StageRejected), refusal: "can no longer move"},
		{name: "not without an advisory", to: "enarx/other", c: func() *Case { c := reportCase(StageAssigned); c.Advisory = ""; return c }(), refusal: "has no advisory yet"},
		{name: "not without GitHub", to: "enarx/other", c: reportCase(StageAssigned), noGitHub: true, refusal: "GitHub is not configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := r
			if tc.noGitHub {
				np := *p
				np.GitHub = false
				req.Policy = &np
			}
			d, err := tc.c.MoveAdvisory(req, tc.to)
			if tc.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refusal) || d.Changes() {
					t.Errorf("got %+v, %v; want a refusal saying %q that changes nothing", d, err, tc.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ops := advisoryOps(d); len(ops) != 1 || ops[0].Op != AdvisoryMove || !strings.EqualFold(ops[0].Repository, tc.to) || d.Action != "repo.move" {
				t.Errorf("move makes %+v (%s)", ops, d.Action)
			}
		})
	}
}
