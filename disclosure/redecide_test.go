package disclosure

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A queued effect is decided again when it is due, against the case as it
// is then: what was allowed when it was queued may not be any more.
func TestQueuedWorkIsDecidedAgainWhenItIsDue(t *testing.T) {
	p := testPolicy()
	later := now.Add(6 * time.Hour) // when the queued effect runs
	agreed := Embargo{State: EmbargoActive, End: now.Add(72 * time.Hour)}
	proposed := Embargo{State: EmbargoProposed, Proposed: now.Add(72 * time.Hour)}
	revised := Embargo{State: EmbargoRevise, End: agreed.End, Proposed: now.Add(96 * time.Hour)}
	over := Embargo{State: EmbargoActive, End: now.Add(time.Hour)} // ends before the effect runs
	ready := func(e Embargo) *Case {
		return &Case{ID: one, Reporter: "@reporter:x", Stage: StageAuditDone, Embargo: e, PublicSummary: "Overflow", PublicDescription: "A crafted image overflows a buffer.",
			NeedToKnow: []NeedToKnow{{Who: "@dan:x", GitHub: "Dan-GH"}}}
	}
	at := func(c *Case, s Stage) *Case { c.Stage = s; return c }
	force := func(by Person, e Embargo) *Force { return &Force{By: by, Under: e} }
	for _, tc := range []struct {
		name    string
		c       *Case
		q       Queued
		refused string // "" when it may run
	}{
		{"a publish with no embargo runs", ready(Embargo{}), Queued{Kind: QueuedPublish}, ""},
		{"a publish after the embargo ended runs", ready(over), Queued{Kind: QueuedPublish}, ""},
		{"a publish after the embargo was lifted runs", ready(Embargo{State: EmbargoExited}), Queued{Kind: QueuedPublish}, ""},
		{"a publish is refused once an embargo is proposed", ready(proposed), Queued{Kind: QueuedPublish}, "under embargo (proposed)"},
		{"a publish is refused once an embargo is agreed", ready(agreed), Queued{Kind: QueuedPublish}, "under embargo (active) until 2026-11-30 10:00"},
		{"a publish is refused while a revision is pending", ready(revised), Queued{Kind: QueuedPublish}, "under embargo (revise)"},
		{"a coordinator's forced publish runs under the same embargo", ready(agreed), Queued{Kind: QueuedPublish, Force: force("@alice:x", agreed)}, ""},
		{"a forced publish is refused under an embargo agreed after the force", ready(agreed), Queued{Kind: QueuedPublish, Force: force("@alice:x", proposed)}, "under another embargo"},
		{"a forced publish is refused once the embargo is revised", ready(revised), Queued{Kind: QueuedPublish, Force: force("@alice:x", agreed)}, "under another embargo"},
		{"a forced publish is refused once its forcer is no longer the coordinator", ready(agreed), Queued{Kind: QueuedPublish, Force: force("@bob:x", agreed)}, "no longer the coordinator"},
		{"a publish is refused once the case is rejected", at(ready(Embargo{}), StageRejected), Queued{Kind: QueuedPublish}, "rejected"},
		{"a publish is refused once the case is closed", at(ready(Embargo{}), StageClosed), Queued{Kind: QueuedPublish}, "closed"},
		{"a publish is refused with the placeholder", &Case{ID: one, Stage: StageAuditDone}, Queued{Kind: QueuedPublish}, "placeholder"},

		{"an announcement of a published case runs", at(ready(Embargo{State: EmbargoExited}), StagePublished), Queued{Kind: QueuedAnnounce}, ""},
		{"an announcement of a closed case runs", at(ready(Embargo{State: EmbargoExited}), StageClosed), Queued{Kind: QueuedAnnounce}, ""},
		{"an announcement is refused under an embargo", at(ready(agreed), StagePublished), Queued{Kind: QueuedAnnounce}, "under embargo (active)"},
		{"a forced announcement runs under the same embargo", at(ready(agreed), StagePublished), Queued{Kind: QueuedAnnounce, Force: force("@alice:x", agreed)}, ""},
		{"an announcement of a rejected case is refused", at(ready(Embargo{}), StageRejected), Queued{Kind: QueuedAnnounce}, "not published"},

		{"a CVE request runs under an embargo", ready(agreed), Queued{Kind: QueuedCVE}, ""},
		{"a CVE request is refused once the case is rejected", at(ready(Embargo{}), StageRejected), Queued{Kind: QueuedCVE}, "rejected"},
		{"a CVE request is refused once the case is closed", at(ready(Embargo{}), StageClosed), Queued{Kind: QueuedCVE}, "closed"},

		{"a need-to-know person's account is added", ready(agreed), Queued{Kind: QueuedCollaborator, Who: "@dan:x", Login: "dan-gh"}, ""},
		{"an account is refused once its person is off the list", ready(agreed), Queued{Kind: QueuedCollaborator, Who: "@erin:x", Login: "erin-gh"}, "@erin:x is no longer on the need-to-know list"},
		{"an account is refused once its person is on the list with another", ready(agreed), Queued{Kind: QueuedCollaborator, Who: "@dan:x", Login: "mallory"}, "no longer on the need-to-know list"},
		{"an account the team named itself is added", ready(agreed), Queued{Kind: QueuedCollaborator, Login: "octocat"}, ""},
		{"no account is added to a closed case", at(ready(agreed), StageClosed), Queued{Kind: QueuedCollaborator, Login: "octocat"}, "closed"},
		{"a removal always runs", at(ready(agreed), StageClosed), Queued{Kind: QueuedCollaborator, Who: "@erin:x", Login: "erin-gh", Remove: true}, ""},

		{"the reporter is invited", ready(agreed), Queued{Kind: QueuedInvite, Who: "@reporter:x"}, ""},
		{"a team member is invited", ready(agreed), Queued{Kind: QueuedInvite, Who: "@bob:x"}, ""},
		{"a need-to-know person is invited", ready(agreed), Queued{Kind: QueuedInvite, Who: "@dan:x"}, ""},
		{"someone who left the team is not invited", ready(agreed), Queued{Kind: QueuedInvite, Who: "@carol:x"}, "@carol:x is no longer the reporter, on the team or on the need-to-know list"},
		{"no one is invited to a closed case's room", at(ready(agreed), StageClosed), Queued{Kind: QueuedInvite, Who: "@bob:x"}, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.c.MayRun(tc.q, p, later)
			switch {
			case tc.refused == "" && r != nil:
				t.Errorf("refused: %s", r.Reason)
			case tc.refused != "" && r == nil:
				t.Errorf("allowed, want refused (%s)", tc.refused)
			case tc.refused != "" && !strings.Contains(r.Reason, tc.refused):
				t.Errorf("refused with %q, want %q in it", r.Reason, tc.refused)
			case r != nil && !strings.HasSuffix(r.Action, ".queued"):
				t.Errorf("audit action %q", r.Action)
			}
		})
	}
}

// The commands that make a queued publish wrong cancel it, in the same
// decision; a forced command records the embargo it overrode.
func TestDecisionsThatStopPublishingCancelIt(t *testing.T) {
	team := req("@bob:x", Place{Kind: TeamRoom})
	cancels := func(d Decision, kinds ...QueuedKind) bool {
		return d.Cancel != nil && slices.Equal(d.Cancel.Kinds, kinds) && d.Cancel.Because != ""
	}
	c := &Case{ID: one, Reporter: "@reporter:x", Stage: StageAuditDone}
	if d, err := c.ProposeEmbargo(team, now.Add(72*time.Hour)); err != nil || !cancels(d, QueuedPublish, QueuedAnnounce) {
		t.Errorf("a proposal: %+v, %v", d.Cancel, err)
	}
	if d, err := c.Reject(team, "not a bug"); err != nil || !cancels(d, QueuedPublish, QueuedAnnounce) {
		t.Errorf("a rejection: %+v, %v", d.Cancel, err)
	}
	proposed := &Case{ID: one, Reporter: "@reporter:x", Stage: StageAuditDone, Embargo: Embargo{State: EmbargoProposed, Proposed: now.Add(72 * time.Hour)}}
	if d, err := proposed.AnswerEmbargo(req("@reporter:x", Place{Kind: CaseRoom, Case: one}), true); err != nil || !cancels(d, QueuedPublish, QueuedAnnounce) {
		t.Errorf("the reporter's agreement: %+v, %v", d.Cancel, err)
	}
	if d, err := proposed.AnswerEmbargo(req("@reporter:x", Place{Kind: CaseRoom, Case: one}), false); err != nil || d.Cancel != nil {
		t.Errorf("the reporter's disagreement cancels %+v, %v", d.Cancel, err)
	}
	// A published case's announcement is still due once it is closed.
	if d, err := (&Case{ID: one, Stage: StagePublished}).Close(team); err != nil || !cancels(d, QueuedPublish) {
		t.Errorf("closing: %+v, %v", d.Cancel, err)
	}

	coordinator := req("@alice:x", Place{Kind: TeamRoom})
	coordinator.Policy.GitHub = true
	ready := &Case{ID: one, Stage: StageAuditDone, PublicSummary: "s", PublicDescription: "d", Embargo: Embargo{State: EmbargoActive, End: now.Add(72 * time.Hour)}}
	d, err := ready.Publish(coordinator, true)
	if err != nil {
		t.Fatal(err)
	}
	if op := d.Effects[0].(AdvisoryOp); op.Force == nil || op.Force.By != "@alice:x" || !op.Force.Under.Same(ready.Embargo) {
		t.Errorf("the forced publish records %+v", op.Force)
	}
	ready.Embargo = Embargo{}
	if d, _ := ready.Publish(coordinator, true); d.Effects[0].(AdvisoryOp).Force != nil {
		t.Error("a --force with no embargo to override records one")
	}
	published := &Case{ID: one, Stage: StagePublished, Embargo: Embargo{State: EmbargoActive, End: now.Add(72 * time.Hour)}}
	if d, err := published.Announce(coordinator, true); err != nil || d.Effects[0].(Announce).Force == nil {
		t.Errorf("the forced announcement records no force: %+v, %v", d.Effects, err)
	}
	if _, err := (&Case{ID: one, Stage: StageRejected}).CVE(coordinator); err == nil {
		t.Error("a CVE is requested for a rejected case")
	}
}

// GitHub's confirmation that an advisory is public does not lift an
// embargo that the publish did not override: it came after the publish
// was decided, and the team decides what follows.
func TestPublishedDoesNotLiftAnEmbargoAgreedAfterThePublish(t *testing.T) {
	r := req("secbot", Place{})
	agreed := Embargo{State: EmbargoActive, End: now.Add(72 * time.Hour)}
	c := &Case{ID: one, Stage: StageAuditDone, Advisory: "GHSA-aaaa-bbbb-cccc", Embargo: agreed}
	d := c.Published(r, nil)
	if d.Embargo != nil || d.Stage != StagePublished || slices.ContainsFunc(d.Effects, func(e Effect) bool { _, ok := e.(Announce); return ok }) {
		t.Errorf("under an embargo agreed after the publish: %+v", d)
	}
	if len(d.Say) != 1 || d.Say[0].To.Kind != ToTeamRoom {
		t.Errorf("the team room is not told: %+v", d.Say)
	}
	// Published on github.com by hand under the embargo: the same.
	c.Channel, c.Report = ChannelGitHub, c.Advisory
	if d := c.GitHubState(r, "published"); d.Embargo != nil || len(d.Effects) != 0 {
		t.Errorf("published on GitHub under the embargo: %+v", d)
	}
	c.Channel, c.Report = "", ""
	// A publish the coordinator forced under this embargo lifts it.
	d = c.Published(r, &Force{By: "@alice:x", Under: agreed})
	if d.Embargo == nil || d.Embargo.State != EmbargoExited || len(d.Effects) != 1 {
		t.Errorf("after a forced publish: %+v", d)
	}
	// With no embargo, as before.
	c.Embargo = Embargo{}
	if d := c.Published(r, nil); d.Stage != StagePublished || len(d.Effects) != 1 {
		t.Errorf("with no embargo: %+v", d)
	}
}
