package handlers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
)

// gitHubWorld is the handlers' world with GitHub on, in two repositories,
// and one private report turned into case SR-2026-0001.
func gitHubWorld(t *testing.T) (*world, string) {
	w := newWorld(t, monday)
	p := *w.policy.Get()
	p.GitHub, p.Repository, p.Repositories = true, "enarx/enarx", []string{"enarx/enarx", "enarx/other"}
	w.policy.Set(p)
	filed := monday.Add(-2 * time.Hour)
	report := chat.GitHubAdvisory{GHSAID: "GHSA-2222-3333-4444", URL: "https://github.com/enarx/enarx/security/advisories/GHSA-2222-3333-4444",
		Repository: "enarx/enarx", State: "triage", Reporter: "octocat", CreatedAt: filed}
	// The same GitHub user's second report is a case of its own.
	other := report
	other.GHSAID, other.URL = "GHSA-5555-6666-7777", "https://github.com/enarx/enarx/security/advisories/GHSA-5555-6666-7777"
	// An ID not in GitHub's format never reaches a room or the database.
	bad := report
	bad.GHSAID = "GHSA-**see-this**"
	if err := w.h.HandleGitHubAdvisories(context.Background(), []chat.GitHubAdvisory{report, report, bad, other}); err != nil {
		t.Fatal(err)
	}
	if err := w.store.SetCaseRoom(context.Background(), disclosure.CaseID{Year: 2026, Seq: 1}, caseRoom, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return w, report.GHSAID
}

func (w *world) effects(kind string) []outbox.AdvisoryEffect {
	w.t.Helper()
	effects, _, err := w.store.EffectsOfKind(context.Background(), kind)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]outbox.AdvisoryEffect, len(effects))
	for i, e := range effects {
		if err := e.Decode(&out[i]); err != nil {
			w.t.Fatal(err)
		}
	}
	return out
}

func TestAGitHubReportIsWorkedFromChat(t *testing.T) {
	w, ghsaID := gitHubWorld(t)
	if cs, _ := w.store.OpenCases(context.Background()); len(cs) != 2 {
		t.Fatalf("two reports, one seen twice, and one with a bad ID opened %d cases, want 2", len(cs))
	}
	if w.deadline(disclosure.DeadlineAcknowledge).StartedAt != monday.Add(-2*time.Hour) {
		t.Error("the acknowledgement does not count from the report's creation")
	}
	if n := len(w.effects(outbox.KindAdvisoryCreate)); n != 0 {
		t.Errorf("%d advisories drafted for a report that is one", n)
	}

	if got := w.say(caseRoom, alice, "!sec claim"); got == "" {
		t.Fatal("no answer to claim")
	}
	if st := w.effects(outbox.KindAdvisoryState); len(st) != 1 || st[0].State != "draft" {
		t.Errorf("claim recorded %+v, want the report accepted on GitHub", st)
	}
	if !w.deadline(disclosure.DeadlineAcknowledge).Met() {
		t.Error("claim did not meet the acknowledgement")
	}

	before := len(w.sends())
	got := w.say(teamRoom, bob, "!sec respond SR-2026-0001 we answered on the advisory")
	if !strings.Contains(got, "answered the reporter of SR-2026-0001 on GitHub") || !strings.Contains(got, ghsaID) {
		t.Errorf("respond answers %q", got)
	}
	for _, s := range w.sends()[before:] {
		if strings.Contains(s, "we answered on the advisory") {
			t.Errorf("the text of respond was posted: %q", s)
		}
	}
	if !w.deadline(disclosure.DeadlineResponse).Met() {
		t.Error("respond did not meet the detailed response")
	}

	// A refused move changes nothing; an allowed one is recorded with what it moves from.
	if got := w.say(teamRoom, alice, "!sec repo SR-2026-0001 mallory/evil"); !strings.Contains(got, "not one of the configured repositories") {
		t.Errorf("a move to an unconfigured repository: %q", got)
	}
	if n := len(w.effects(outbox.KindAdvisoryMove)); n != 0 {
		t.Errorf("a refused move recorded %d moves", n)
	}
	w.say(teamRoom, alice, "!sec repo SR-2026-0001 enarx/other")
	if mv := w.effects(outbox.KindAdvisoryMove); len(mv) != 1 || mv[0].Repository != "enarx/other" || mv[0].FromGHSA != ghsaID || mv[0].From != "enarx/enarx" {
		t.Errorf("the move recorded %+v", mv)
	}

	if got := w.say(caseRoom, alice, "!sec reject not a vulnerability"); !strings.Contains(got, "closing the report on GitHub") {
		t.Errorf("reject answers %q", got)
	}
	if st := w.effects(outbox.KindAdvisoryState); len(st) != 2 || st[1].State != "closed" {
		t.Errorf("reject recorded %+v, want the report closed on GitHub", st)
	}
	if got := w.say(teamRoom, alice, "!sec repo SR-2026-0001 enarx/enarx"); !strings.Contains(got, "can no longer move") {
		t.Errorf("a move after reject: %q", got)
	}
}

func TestRemindersOfAGitHubReportLinkTheAdvisory(t *testing.T) {
	w, ghsaID := gitHubWorld(t)
	w.clock.Advance(40 * time.Hour) // the acknowledgement's reminder (12 h before)
	w.tick()
	w.clock.Advance(10 * time.Hour) // past due: the coordinator
	w.tick()
	var reminders, escalations int
	for _, s := range w.sends() {
		switch {
		case !strings.Contains(s, "SR-2026-0001"):
			// the other case's
		case strings.Contains(s, "Reminder for **SR-2026-0001**"):
			reminders++
			if !strings.Contains(s, ghsaID) {
				t.Errorf("the reminder does not link the advisory: %q", s)
			}
		case strings.Contains(s, "🚨"):
			escalations++
			if !strings.Contains(s, ghsaID) {
				t.Errorf("the escalation does not link the advisory: %q", s)
			}
		}
		// ReporterChased names no case: any of it is wrong here.
		if strings.Contains(s, "on your behalf") {
			t.Errorf("the case room, which the GitHub reporter does not read, was told: %q", s)
		}
	}
	if reminders != 1 || escalations != 1 {
		t.Errorf("%d reminders and %d escalations, want 1 and 1", reminders, escalations)
	}
}
