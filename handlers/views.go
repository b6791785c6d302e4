package handlers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// The views: commands that show and change nothing. The policy has already
// decided they may answer where they were typed.

func (h *Handlers) cmdList(c *cmdContext) (disclosure.Decision, error) {
	cases, err := h.store.OpenCases(c)
	if err != nil {
		return disclosure.Decision{}, err
	}
	p := c.req.Policy
	var out templates.CaseList
	for _, cs := range cases {
		next := "—"
		if d, err := h.nextDeadline(c, cs.ID); err != nil {
			return disclosure.Decision{}, err
		} else if d != nil {
			next = fmt.Sprintf("%s by %s", d.Kind.Label(), p.FormatTime(d.DueAt))
		}
		e, err := h.store.Embargo(c, cs.ID)
		if err != nil {
			return disclosure.Decision{}, err
		}
		out.Rows = append(out.Rows, templates.CaseRow{CaseID: cs.ID.String(), Stage: cs.Stage.Label(), Handler: orDash(cs.Handler.String()), Next: next, Embargo: embargoSummary(p, e)})
	}
	return onlyAnswer(out), nil
}

// nextDeadline returns the case's earliest running deadline, nil if none.
func (h *Handlers) nextDeadline(c *cmdContext, caseID disclosure.CaseID) (*store.Deadline, error) {
	ds, err := h.store.DeadlinesOf(c, caseID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if !d.Met() && !d.NextAt.IsZero() {
			return d, nil
		}
	}
	return nil, nil
}

func (h *Handlers) cmdStatus(c *cmdContext) (disclosure.Decision, error) {
	cs, p := c.sc, c.req.Policy
	out := templates.CaseStatus{CaseID: cs.ID.String(), Stage: cs.Stage.Label(), Reporter: cs.Reporter.String(), Handler: orDash(cs.Handler.String()),
		Opened: p.FormatTime(cs.CreatedAt), GHSAID: cs.GHSAID, GHSAURL: cs.GHSAURL, ForkURL: cs.ForkURL, Embargo: embargoSummary(p, c.c.Embargo)}
	for _, fact := range []templates.Fact{{Name: "affected", Value: cs.Affected}, {Name: "patched", Value: cs.Patched}, {Name: "severity", Value: cs.Severity}, {Name: "CVE", Value: cs.CVEID}} {
		if fact.Value != "" {
			out.Facts = append(out.Facts, fact)
		}
	}
	for _, n := range c.c.NeedToKnow {
		who := string(n.Who)
		if n.GitHub != "" {
			who += " (GitHub " + n.GitHub + ")"
		}
		out.NeedToKnow = append(out.NeedToKnow, who)
	}
	out.Deadlines = deadlineRows(c.c, p, c.req.Now, true)
	entries, err := h.store.AuditOf(c, cs.ID.String())
	if err != nil {
		return disclosure.Decision{}, err
	}
	for _, e := range entries {
		if e.Allowed {
			out.Timeline = append(out.Timeline, templates.TimelineRow{At: p.FormatTime(e.At), Action: e.Action, Actor: e.Actor.String(), Detail: e.Detail})
		}
	}
	return onlyAnswer(out), nil
}

// deadlineRows are a case's promises; the team's view also shows the ladder.
func deadlineRows(c *disclosure.Case, p *disclosure.Policy, now time.Time, team bool) []templates.DeadlineRow {
	var rows []templates.DeadlineRow
	for _, d := range c.Deadlines {
		state := "pending"
		switch {
		case d.Met():
			state = "met " + p.FormatTime(d.MetAt)
			if d.MetAt.After(d.DueAt) {
				state = "met late " + p.FormatTime(d.MetAt)
			}
		case c.Finished():
			state = "stopped"
		case now.After(d.DueAt):
			state = "**overdue**"
		}
		row := templates.DeadlineRow{Promise: d.Kind.Label(), Due: p.FormatTime(d.DueAt), State: state}
		if team {
			row.Ladder = "—"
			if d.LadderStep > 0 {
				row.Ladder = fmt.Sprintf("%d step(s) sent", d.LadderStep)
			}
			if !d.NextAt.IsZero() && !c.Finished() {
				if at, what := p.NextFiring(d); what == disclosure.FireEscalation {
					row.Ladder += "; next " + p.FormatTime(at)
				} else if what == disclosure.FireReminder {
					row.Ladder += "; reminder " + p.FormatTime(at)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func (h *Handlers) cmdContacts(c *cmdContext) (disclosure.Decision, error) {
	p := c.req.Policy
	out := templates.Contacts{RepeatEvery: p.SLA.RepeatEvery.String()}
	for _, step := range p.Ladder {
		role, who := p.Contact(step)
		if who != "" {
			role += " " + who.String()
		}
		out.Steps = append(out.Steps, templates.ContactRow{After: step.After.String(), Who: role})
	}
	return onlyAnswer(out), nil
}

// cmdStats reports response efficiency over a window, as HackerOne does:
// for each promise, the share of cases that met it and the median time.
func (h *Handlers) cmdStats(c *cmdContext) (disclosure.Decision, error) {
	days, err := disclosure.StatsDays(c.args)
	if err != nil {
		return disclosure.Decision{}, fromDomain(err)
	}
	now := c.req.Now
	cases, err := h.store.CasesSince(c, now.AddDate(0, 0, -days))
	if err != nil {
		return disclosure.Decision{}, err
	}
	type tally struct {
		met, total int
		times      []time.Duration
	}
	kinds := []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse, disclosure.DeadlineUpdate}
	stats := map[disclosure.DeadlineKind]*tally{}
	for _, k := range kinds {
		stats[k] = &tally{}
	}
	for _, cs := range cases {
		ds, err := h.store.DeadlinesOf(c, cs.ID)
		if err != nil {
			return disclosure.Decision{}, err
		}
		for _, d := range ds {
			t := stats[d.Kind]
			if t == nil || (!d.Met() && now.Before(d.DueAt)) {
				continue // still running: neither kept nor missed yet
			}
			t.total++
			if d.Met() && !d.MetAt.After(d.DueAt) {
				t.met++
			}
			if d.Met() {
				t.times = append(t.times, d.MetAt.Sub(d.StartedAt))
			}
		}
	}
	out := templates.Stats{Days: days, Cases: len(cases)}
	for _, k := range kinds {
		t := stats[k]
		share, median := "—", "—"
		if t.total > 0 {
			share = fmt.Sprintf("%d%% (%d/%d)", t.met*100/t.total, t.met, t.total)
		}
		if len(t.times) > 0 {
			slices.Sort(t.times)
			median = t.times[len(t.times)/2].Round(time.Minute).String()
		}
		out.Rows = append(out.Rows, templates.StatsRow{Promise: k.Label(), Kept: share, Median: median})
	}
	return onlyAnswer(out), nil
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// embargoSummary is a case's embargo in a few words.
func embargoSummary(p *disclosure.Policy, e disclosure.Embargo) string {
	switch e.State {
	case disclosure.EmbargoProposed:
		return "proposed until " + p.FormatTime(e.Proposed)
	case disclosure.EmbargoActive:
		return "until " + p.FormatTime(e.End)
	case disclosure.EmbargoRevise:
		return fmt.Sprintf("until %s (revision to %s proposed)", p.FormatTime(e.End), p.FormatTime(e.Proposed))
	case disclosure.EmbargoExited:
		return "lifted"
	}
	return "none"
}

// reportHelp is the reporter's help.
func (h *Handlers) reporterHelp(github bool) templates.Help {
	return help("", h.reporterCmds, "You can say (commands that change something start with `!`):", github)
}

var _ = strings.TrimSpace
