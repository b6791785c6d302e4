package handlers

import (
	"fmt"
	"strings"

	"github.com/enarx/secbot/disclosure"
)

// reporterCommands are what a reporter may say in the DM or the case room
// (written with or without a leading "!"). They only ever see their own case.
func (h *Handlers) reporterCommands() map[string]*command {
	cmds := []*command{
		{name: "help", summary: "what you can say here", run: h.cmdReporterHelp},
		{name: "status", summary: "where your report stands and what we promised by when", caseArg: impliedCase, run: h.cmdReporterStatus},
		{name: "escalate", summary: "chase the team if we missed a promise", caseArg: impliedCase, run: h.cmdEscalate},
		{name: "github", args: "NAME", summary: "be invited to the private GitHub Security Advisory as GitHub user NAME", caseArg: impliedCase, run: h.cmdGitHub},
		{name: "agree", summary: "accept the embargo date the team proposed", caseArg: impliedCase, run: h.cmdAgree},
		{name: "disagree", summary: "decline the embargo date the team proposed", caseArg: impliedCase, run: h.cmdDisagree},
		{name: "credit", args: "NAME|none", summary: "how the advisory credits you: your GitHub name, or none", caseArg: impliedCase, run: h.cmdCredit},
	}
	registry := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		registry[c.name] = c
	}
	return registry
}

func (h *Handlers) cmdReporterHelp(c *cmdContext) error {
	return c.reply(helpText("", h.reporterCmds, "You can say:"))
}

func (h *Handlers) cmdReporterStatus(c *cmdContext) error {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s\n", c.c.ID, c.c.Stage.Label())
	if err := h.writeDeadlines(c, &b, c.c, false); err != nil {
		return err
	}
	return c.reply(b.String())
}

// cmdEscalate runs the ladder for the reporter when the policy allows it:
// no detailed response by its deadline, or no word for the update interval.
func (h *Handlers) cmdEscalate(c *cmdContext) error {
	ds, err := h.store.DeadlinesOf(c, c.c.ID)
	if err != nil {
		return err
	}
	var allowedFrom string
	for _, d := range ds {
		if d.Met() || d.Kind == disclosure.DeadlineAcknowledge {
			continue
		}
		if c.now.Before(d.DueAt) {
			if allowedFrom == "" {
				allowedFrom = h.formatTime(d.DueAt)
			}
			continue
		}
		if d.LadderStep > 0 {
			return c.reply(fmt.Sprintf("The team has already been chased about the %s (%d escalation step(s) so far); I keep escalating until someone answers.", d.Kind.Label(), d.LadderStep))
		}
		if _, err := h.store.EscalateNow(c, c.c.ID, d.Kind, c.sender, c.now); err != nil {
			return err
		}
		if err := c.audit("escalate", d.Kind.Label(), true); err != nil {
			return err
		}
		return c.reply(fmt.Sprintf("I am escalating the overdue %s to the security coordinator now.", d.Kind.Label()))
	}
	if allowedFrom == "" {
		return c.reply("Nothing is overdue: the team has answered everything it promised so far.")
	}
	return c.reply(fmt.Sprintf("Nothing is overdue yet. If you have not heard from us by %s, you can escalate then.", allowedFrom))
}
