package handlers

import (
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/scheduler"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// teamCommands are the `!sec` commands, for team members only.
func (h *Handlers) teamCommands() map[string]*command {
	cmds := []*command{
		{name: "help", args: "[COMMAND]", summary: "the list of commands, or one command's syntax", run: h.cmdHelp},
		{name: "list", summary: "open cases: ID, stage, handler, next deadline", run: h.cmdList},
		{name: "status", args: "[CASE]", summary: "one case in full: stage, timeline, deadlines, escalation", caseArg: impliedCase, run: h.cmdStatus},
		{name: "claim", args: "[CASE]", summary: "step 1: become the case's handler (acknowledges the report)", caseArg: impliedCase, run: h.cmdClaim},
		{name: "assign", args: "CASE @user", summary: "step 1: make a team member the handler (acknowledges the report)", caseArg: impliedCase, run: h.cmdAssign},
		{name: "respond", args: "[CASE] TEXT", summary: "the detailed response to the reporter, posted in the case room", caseArg: impliedCase, run: h.cmdRespond},
		{name: "update", args: "[CASE] TEXT", summary: "a progress update to the reporter; restarts the update clock", caseArg: impliedCase, run: h.cmdUpdate},
		{name: "contacts", summary: "who is on the escalation ladder", run: h.cmdContacts},
		{name: "github", args: "[CASE] NAME", summary: "invite a GitHub user to the case's private advisory", caseArg: impliedCase, run: h.cmdGitHub},
		{name: "fork", args: "[CASE]", summary: "step 4: the advisory's temporary private fork, for preparing fixes", caseArg: impliedCase, run: h.cmdFork},
		{name: "cve", args: "[CASE]", summary: "request a CVE for the advisory from GitHub", caseArg: impliedCase, run: h.cmdCVE},
	}
	cmds = append(cmds, h.processCommands()...)
	registry := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		registry[c.name] = c
	}
	return registry
}

func (h *Handlers) cmdHelp(c *cmdContext) error {
	registry := h.teamCmds
	if len(c.args) > 0 {
		cmd, ok := registry[strings.ToLower(c.args[0])]
		if !ok {
			return usagef("there is no command %q; `%s help` lists them", templates.EscapeMarkdown(truncate(c.args[0], 40)), h.opts().CommandPrefix)
		}
		return c.reply(commandHelp(h.opts().CommandPrefix, cmd))
	}
	return c.reply(helpText(h.opts().CommandPrefix, registry, "**secbot commands** (in a case room the case is implied; elsewhere name it, e.g. `SR-2026-0007`):"))
}

func (h *Handlers) cmdList(c *cmdContext) error {
	cases, err := h.store.OpenCases(c)
	if err != nil {
		return err
	}
	if len(cases) == 0 {
		return c.reply("No open cases.")
	}
	var b strings.Builder
	b.WriteString("| case | stage | handler | next deadline | embargo |\n| --- | --- | --- | --- | --- |\n")
	for _, cs := range cases {
		next := "—"
		if d, err := h.nextDeadline(c, cs.ID); err == nil && d != nil {
			next = fmt.Sprintf("%s by %s", d.Kind.Label(), h.formatTime(d.DueAt))
		}
		embargo, err := h.embargoSummary(c, cs)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cs.ID, cs.Stage.Label(), orDash(cs.Handler.String()), next, embargo)
	}
	return c.reply(b.String())
}

// nextDeadline returns the case's earliest unmet deadline, nil if none.
func (h *Handlers) nextDeadline(c *cmdContext, caseID disclosure.CaseID) (*store.Deadline, error) {
	ds, err := h.store.DeadlinesOf(c, caseID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if !d.Met() {
			return d, nil
		}
	}
	return nil, nil
}

func (h *Handlers) cmdStatus(c *cmdContext) error {
	cs := c.c
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s\n\n", cs.ID, cs.Stage.Label())
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n| reporter | %s |\n| handler | %s |\n| opened | %s |\n", cs.Reporter, orDash(cs.Handler.String()), h.formatTime(cs.CreatedAt))
	if cs.GHSAID != "" {
		fmt.Fprintf(&b, "| advisory | [%s](%s) |\n", cs.GHSAID, cs.GHSAURL)
	}
	if cs.ForkURL != "" {
		fmt.Fprintf(&b, "| private fork | %s |\n", cs.ForkURL)
	}
	for _, fact := range [][2]string{{"affected", cs.Affected}, {"patched", cs.Patched}, {"severity", cs.Severity}, {"CVE", cs.CVEID}} {
		if fact[1] != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", fact[0], templates.EscapeMarkdown(fact[1]))
		}
	}
	embargo, err := h.embargoSummary(c, cs)
	if err != nil {
		return err
	}
	fmt.Fprintf(&b, "| embargo | %s |\n", embargo)
	ntk, err := h.store.NeedToKnow(c, cs.ID)
	if err != nil {
		return err
	}
	if len(ntk) > 0 {
		names := make([]string, len(ntk))
		for i, u := range ntk {
			names[i] = u.String()
		}
		fmt.Fprintf(&b, "| need to know | %s |\n", strings.Join(names, ", "))
	}
	if err := h.writeDeadlines(c, &b, cs, true); err != nil {
		return err
	}
	entries, err := h.store.AuditOf(c, cs.ID.String())
	if err != nil {
		return err
	}
	b.WriteString("\n**Timeline**\n\n")
	for _, e := range entries {
		if !e.Allowed {
			continue
		}
		fmt.Fprintf(&b, "- %s — %s by %s", h.formatTime(e.At), e.Action, e.Actor)
		if e.Detail != "" {
			fmt.Fprintf(&b, " (%s)", templates.EscapeMarkdown(e.Detail))
		}
		b.WriteString("\n")
	}
	return c.reply(b.String())
}

// writeDeadlines adds the deadline table; team views also show the ladder.
func (h *Handlers) writeDeadlines(c *cmdContext, b *strings.Builder, cs *store.Case, team bool) error {
	ds, err := h.store.DeadlinesOf(c, cs.ID)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		return nil
	}
	p := h.timers.Policy()
	if team {
		b.WriteString("\n| promise | due | state | escalation |\n| --- | --- | --- | --- |\n")
	} else {
		b.WriteString("\n| promise | due | state |\n| --- | --- | --- |\n")
	}
	for _, d := range ds {
		state := "pending"
		switch {
		case d.Met():
			state = "met " + h.formatTime(d.MetAt)
			if d.MetAt.After(d.DueAt) {
				state = "met late " + h.formatTime(d.MetAt)
			}
		case c.now.After(d.DueAt):
			state = "**overdue**"
		}
		if !team {
			fmt.Fprintf(b, "| %s | %s | %s |\n", d.Kind.Label(), h.formatTime(d.DueAt), state)
			continue
		}
		ladder := "—"
		if d.LadderStep > 0 {
			ladder = fmt.Sprintf("%d step(s) sent", d.LadderStep)
		}
		if at, what := scheduler.NextFiring(*d, p); what == scheduler.FireEscalation {
			ladder += fmt.Sprintf("; next %s", h.formatTime(at))
		} else if what == scheduler.FireReminder {
			ladder += fmt.Sprintf("; reminder %s", h.formatTime(at))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", d.Kind.Label(), h.formatTime(d.DueAt), state, ladder)
	}
	return nil
}

func (h *Handlers) cmdClaim(c *cmdContext) error {
	return h.assign(c, c.sender)
}

func (h *Handlers) cmdAssign(c *cmdContext) error {
	if len(c.args) != 1 {
		return usagef("usage: `%s assign CASE @user:server` — one team member", h.opts().CommandPrefix)
	}
	user := id.UserID(c.args[0])
	if !h.IsTeam(user) {
		return usagef("%s is not on the security team; the handler must be one of: %s", templates.EscapeMarkdown(truncate(c.args[0], 80)), h.teamList())
	}
	return h.assign(c, user)
}

// transition moves the case by action, or refuses with what must come
// first; the move is recorded in the audit log (the case's timeline).
func (h *Handlers) transition(c *cmdContext, action disclosure.Action) (disclosure.Stage, error) {
	next, err := disclosure.Transition(c.c.Stage, action)
	if err != nil {
		return "", usagef("Refused: %s.", strings.TrimPrefix(err.Error(), disclosure.ErrOutOfOrder.Error()+": "))
	}
	if next != c.c.Stage {
		if err := h.store.SetStage(c, c.c.ID, next, c.c.Handler, c.now); err != nil {
			return "", err
		}
		if err := c.audit("stage", string(c.c.Stage)+" → "+string(next), true); err != nil {
			return "", err
		}
		c.c.Stage = next
	}
	return next, nil
}

// assign makes user the handler: step 1, and the acknowledgement.
func (h *Handlers) assign(c *cmdContext, user id.UserID) error {
	if _, err := h.transition(c, disclosure.ActClaim); err != nil {
		return err
	}
	if err := h.store.SetStage(c, c.c.ID, c.c.Stage, user, c.now); err != nil {
		return err
	}
	if _, err := h.store.MeetDeadline(c, c.c.ID, disclosure.DeadlineAcknowledge, c.sender, c.now); err != nil {
		return err
	}
	if err := c.audit("assign", "handler "+user.String(), true); err != nil {
		return err
	}
	if err := h.render(c, c.c.ID.String(), store.Target{CaseRoomOf: c.c.ID.String()}, "acknowledged", map[string]any{"CaseID": c.c.ID.String(), "Handler": user.String()}, ""); err != nil {
		return err
	}
	if c.evt.RoomID == c.c.CaseRoom {
		return c.react("✅") // the acknowledgement above already says who
	}
	return c.reply(fmt.Sprintf("%s is now the handler of %s.", user, c.c.ID))
}

func (h *Handlers) cmdRespond(c *cmdContext) error {
	if c.rest == "" {
		return usagef("usage: `%s respond [CASE] TEXT` — the text is posted to the reporter", h.opts().CommandPrefix)
	}
	if err := h.postToReporter(c, "response", c.rest); err != nil {
		return err
	}
	if err := h.meetResponse(c, c.c, c.sender); err != nil {
		return err
	}
	return c.audit("respond", "", true)
}

func (h *Handlers) cmdUpdate(c *cmdContext) error {
	if c.rest == "" {
		return usagef("usage: `%s update [CASE] TEXT` — the text is posted to the reporter", h.opts().CommandPrefix)
	}
	if err := h.postToReporter(c, "update", c.rest); err != nil {
		return err
	}
	if err := h.restartUpdateClock(c, c.c, true); err != nil {
		return err
	}
	return c.audit("update", "", true)
}

// postToReporter posts a team member's words in the case room as the team's.
func (h *Handlers) postToReporter(c *cmdContext, kind, text string) error {
	md, err := h.templates.Render("team_"+kind, map[string]any{"CaseID": c.c.ID.String(), "From": c.sender.String(), "Text": text})
	if err != nil {
		return err
	}
	if err := h.send(c, c.c.ID.String(), store.Target{CaseRoomOf: c.c.ID.String()}, md, ""); err != nil {
		return err
	}
	if c.evt.RoomID != c.c.CaseRoom {
		return c.reply(fmt.Sprintf("Posted to the reporter of %s.", c.c.ID))
	}
	return c.react("✅")
}

// meetResponse records the detailed response and starts the update clock.
func (h *Handlers) meetResponse(c *cmdContext, cs *store.Case, by id.UserID) error {
	if _, err := h.store.MeetDeadline(c, cs.ID, disclosure.DeadlineAcknowledge, by, c.now); err != nil {
		return err
	}
	met, err := h.store.MeetDeadline(c, cs.ID, disclosure.DeadlineResponse, by, c.now)
	if err != nil {
		return err
	}
	if met {
		return h.restartUpdateClock(c, cs, true)
	}
	return nil
}

// restartUpdateClock counts the next update from now. Unless force, it only
// restarts a clock that is already running (after the detailed response).
func (h *Handlers) restartUpdateClock(c *cmdContext, cs *store.Case, force bool) error {
	if !force {
		if _, err := h.store.Deadline(c, cs.ID, disclosure.DeadlineUpdate); err != nil {
			if err == store.ErrNotFound {
				return nil
			}
			return err
		}
	}
	return h.store.SetDeadline(c, scheduler.NewDeadline(cs.ID, disclosure.DeadlineUpdate, c.now, h.timers.Policy()))
}

func (h *Handlers) cmdContacts(c *cmdContext) error {
	p := h.timers.Policy()
	var b strings.Builder
	fmt.Fprintf(&b, "**Escalation ladder** (from the config; a reload with SIGHUP picks up changes)\n\n| after a missed promise | who |\n| --- | --- |\n")
	for _, step := range p.Ladder {
		who := step.Notify.Role
		switch step.Notify.Role {
		case "coordinator":
			who = "coordinator " + p.Coordinator.String()
		case "backup":
			who = "backup " + p.Backup.String()
		case "team":
			who = "the team room"
		case "user":
			who = step.Notify.User
		}
		fmt.Fprintf(&b, "| %s | %s |\n", step.After.String(), who)
	}
	fmt.Fprintf(&b, "\nThe last step repeats every %s until someone answers.", p.SLA.RepeatEvery.String())
	return c.reply(b.String())
}

func (h *Handlers) teamList() string {
	names := make([]string, 0, len(h.teamMembers()))
	for _, u := range h.teamMembers() {
		names = append(names, u.String())
	}
	return strings.Join(names, ", ")
}

func (h *Handlers) formatTime(t time.Time) string {
	return h.local(t).Format("2006-01-02 15:04 MST")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// embargoSummary is a case's embargo in a few words.
func (h *Handlers) embargoSummary(c *cmdContext, cs *store.Case) (string, error) {
	e, err := h.store.Embargo(c, cs.ID)
	if err != nil {
		return "", err
	}
	switch e.State {
	case disclosure.EmbargoProposed:
		return "proposed until " + h.formatTime(e.Proposed), nil
	case disclosure.EmbargoActive:
		return "until " + h.formatTime(e.End), nil
	case disclosure.EmbargoRevise:
		return fmt.Sprintf("until %s (revision to %s proposed)", h.formatTime(e.End), h.formatTime(e.Proposed)), nil
	case disclosure.EmbargoExited:
		return "lifted", nil
	}
	return "none", nil
}
