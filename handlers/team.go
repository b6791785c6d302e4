package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/templates"
)

// teamCommands are the `!sec` commands, for team members only.
func (h *Handlers) teamCommands() map[string]*command {
	cmds := []*command{
		{name: "help", args: "[COMMAND]", summary: "the list of commands, or one command's syntax", run: h.cmdHelp},
		{name: "list", summary: "open cases: ID, stage, handler, next deadline (team room only)", caseArg: allCases, run: h.cmdList},
		{name: "stats", args: "[DAYS]", summary: "how well the promises were kept over the last DAYS (default 90; team room only)", caseArg: allCases, run: h.cmdStats},
		{name: "contacts", summary: "who is on the escalation ladder (team room only)", caseArg: allCases, run: h.cmdContacts},
		{name: "status", args: "[CASE]", summary: "one case in full: stage, timeline, deadlines, escalation", caseArg: impliedCase, run: h.cmdStatus},
		{name: "claim", args: "[CASE]", summary: "step 1: become the case's handler (acknowledges the report)", caseArg: impliedCase, run: h.cmdClaim},
		{name: "assign", args: "[CASE] @user", summary: "step 1: make a team member the handler (acknowledges the report)", caseArg: impliedCase, run: h.cmdAssign},
		{name: "respond", args: "[CASE] TEXT", summary: "the detailed response to the reporter, posted in the case room (and emailed, for a report by email)", caseArg: impliedCase, run: h.cmdRespond},
		{name: "update", args: "[CASE] TEXT", summary: "a progress update to the reporter; restarts the update clock", caseArg: impliedCase, run: h.cmdUpdate},
		{name: "reply", args: "[CASE] TEXT", summary: "a message to a reporter who wrote by email, sent to them by email (chat reporters read the case room)", caseArg: impliedCase, run: h.cmdReply},
		{name: "github", args: "[CASE] NAME", summary: "invite a GitHub user to the case's private advisory", caseArg: impliedCase, run: h.cmdGitHub},
		{name: "fork", args: "[CASE]", summary: "step 4: the advisory's temporary private fork, for preparing fixes", caseArg: impliedCase, run: h.cmdFork},
		{name: "invite", args: "[CASE] [@user]", summary: "invite to the case room again: the reporter, or a team member or need-to-know person", caseArg: impliedCase, run: h.cmdInvite},
		{name: "advisory", args: "[CASE]", summary: "draft the case's GitHub advisory if it has none (after GitHub refused or failed)", caseArg: impliedCase, run: h.cmdAdvisory},
		{name: "repo", args: "[CASE] OWNER/NAME", summary: "move the case's draft advisory to another configured repository (its collaborators and public text go along; the old draft is closed)", caseArg: impliedCase, run: h.cmdRepo},
		{name: "cve", args: "[CASE]", summary: "request a CVE for the advisory from GitHub", caseArg: impliedCase, run: h.cmdCVE},
		{name: "confirm", args: "[CASE] [AFFECTED [; PATCHED]]", summary: "step 2: the problem is confirmed (the detailed response); optionally the affected and patched versions", caseArg: impliedCase, run: h.cmdConfirm},
		{name: "versions", args: "[CASE] AFFECTED [; PATCHED]", summary: "record the affected (and patched) versions, also on the advisory", caseArg: impliedCase, run: h.cmdVersions},
		{name: "severity", args: "[CASE] low|medium|high|critical", summary: "the advisory's severity", caseArg: impliedCase, run: h.cmdSeverity},
		{name: "cwe", args: "[CASE] CWE-ID…", summary: "the advisory's weakness types, e.g. CWE-787", caseArg: impliedCase, run: h.cmdCWE},
		{name: "summary", args: "[CASE] TEXT", summary: "the advisory's public one-line summary, sent to GitHub and used in the announcement", caseArg: impliedCase, run: h.cmdSummary},
		{name: "description", args: "[CASE] TEXT", summary: "the advisory's public description, sent to GitHub (publish waits for it)", caseArg: impliedCase, run: h.cmdDescription},
		{name: "reject", args: "[CASE] REASON", summary: "not a vulnerability: the reporter is told politely and the case ends", caseArg: impliedCase, run: h.cmdReject},
		{name: "audit", args: "[CASE] start|done", summary: "step 3: the audit for similar problems", caseArg: impliedCase, run: h.cmdAudit},
		{name: "publish", args: "[CASE] [--force]", summary: "step 5: publish the advisory, then announce it (refused during an embargo unless the coordinator forces it)", caseArg: impliedCase, run: h.cmdPublish},
		{name: "announce", args: "[CASE] [--force]", summary: "post the announcement where it has not been posted yet (after publish)", caseArg: impliedCase, run: h.cmdAnnounce},
		{name: "close", args: "[CASE]", summary: "close the case (after publish or reject)", caseArg: impliedCase, run: h.cmdClose},
		{name: "trust", args: "@user MASTER-KEY", summary: "coordinator: trust a team member's new cross-signing identity, the key the team room's notice shows, after checking it with them (team room only)", caseArg: allCases, run: h.cmdTrust},
		{name: "embargo", args: "[CASE] propose YYYY-MM-DD [HH:MM] | add @user [github-name] | remove @user [github-name] | lift", summary: "the embargo agreed with the reporter, and who needs to know (lift: the coordinator only)", caseArg: impliedCase, run: h.cmdEmbargo},
	}
	registry := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		registry[c.name] = c
	}
	return registry
}

// teamCommand runs a `!sec` command once the policy has said it may run
// where it was typed, and on which case.
func (h *Handlers) teamCommand(ctx context.Context, msg Message, where disclosure.Place, text string) error {
	cmd, p, err := parseCommand(text, h.teamCmds)
	name := "command"
	if cmd != nil {
		name = cmd.name
	}
	scope := disclosure.NoCase
	if cmd != nil {
		scope = cmd.scope()
	}
	var named disclosure.CaseID
	if p.named {
		named = p.caseID
	}
	// The place and the role come first: an outsider learns nothing, not
	// even whether their command was well formed.
	caseID, placeErr := h.Policy().TeamCommand(name, scope, msg.Sender, msg.trust, where, named)
	if placeErr == nil && err != nil {
		placeErr = err
	}
	if placeErr != nil {
		return h.once(ctx, msg.ID, func(ctx context.Context) error {
			c := &cmdContext{Context: ctx, h: h, msg: msg, cmd: cmd}
			c.req = h.request(msg, where)
			return h.refuse(ctx, c, placeErr.(*disclosure.Refusal))
		})
	}
	p.where = where
	return h.runCommand(ctx, msg, cmd, p, caseID, false)
}

func (c *cmdContext) prefix() string { return c.req.Policy.CommandPrefix }

// needText is the free text of a command, or its usage.
func (c *cmdContext) needText(hint string) (string, error) {
	if c.rest == "" {
		return "", usage("%s", hint)
	}
	return c.rest, nil
}

func (h *Handlers) cmdHelp(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) > 0 {
		cmd, ok := h.teamCmds[strings.ToLower(c.args[0])]
		if !ok {
			return disclosure.Decision{}, usageLine("there is no command %q; `%s help` lists them", templates.EscapeMarkdown(templates.Truncate(c.args[0], 40)), c.prefix())
		}
		return onlyAnswer(templates.Help{Commands: []templates.HelpLine{{Syntax: syntax(c.prefix(), cmd), Summary: cmd.summary}}}), nil
	}
	return onlyAnswer(help(c.prefix(), h.teamCmds, "**secbot commands** (in a case room the case is implied and only that case is reached; elsewhere name it, e.g. `SR-2026-0007`):")), nil
}

// onlyAnswer is a decision that only answers.
func onlyAnswer(d templates.Data) disclosure.Decision {
	return disclosure.Decision{Say: []disclosure.Message{{To: disclosure.Audience{Kind: disclosure.Here}, Data: d}}}
}

func (h *Handlers) cmdClaim(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 0 {
		return disclosure.Decision{}, usage("to make someone else the handler, use `%s assign`", c.prefix())
	}
	return c.c.Assign(c.req, c.req.By)
}

func (h *Handlers) cmdAssign(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 1 || !isUserID(c.args[0]) {
		return disclosure.Decision{}, usage("one team member, e.g. @alice:example.org")
	}
	return c.c.Assign(c.req, disclosure.Person(c.args[0]))
}

func (h *Handlers) cmdRespond(c *cmdContext) (disclosure.Decision, error) {
	if c.c.Channel == disclosure.ChannelGitHub {
		return c.c.Respond(c.req, "") // answered on GitHub: nothing to post, no text kept
	}
	text, err := c.needText("the text is posted to the reporter")
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.Respond(c.req, text)
}

func (h *Handlers) cmdReply(c *cmdContext) (disclosure.Decision, error) {
	text, err := c.needText("the text is emailed to the reporter")
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.Reply(c.req, text)
}

func (h *Handlers) cmdUpdate(c *cmdContext) (disclosure.Decision, error) {
	if c.c.Channel == disclosure.ChannelGitHub {
		return c.c.Update(c.req, "") // answered on GitHub: nothing to post, no text kept
	}
	text, err := c.needText("the text is posted to the reporter")
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.Update(c.req, text)
}

// versionsArg splits "AFFECTED [; PATCHED]".
func versionsArg(rest string) (affected, patched string) {
	affected, patched, _ = strings.Cut(rest, ";")
	return strings.TrimSpace(affected), strings.TrimSpace(patched)
}

func (h *Handlers) cmdConfirm(c *cmdContext) (disclosure.Decision, error) {
	affected, patched := versionsArg(c.rest)
	return c.c.Confirm(c.req, affected, patched)
}

func (h *Handlers) cmdVersions(c *cmdContext) (disclosure.Decision, error) {
	affected, patched := versionsArg(c.rest)
	if affected == "" {
		return disclosure.Decision{}, usage("e.g. `< 1.4.2; 1.4.2`")
	}
	return c.c.Versions(c.req, affected, patched)
}

var severities = []string{"low", "medium", "high", "critical"}

func (h *Handlers) cmdSeverity(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 1 || !slices.Contains(severities, strings.ToLower(c.args[0])) {
		return disclosure.Decision{}, usage("one of low, medium, high, critical")
	}
	return c.c.Severity(c.req, strings.ToLower(c.args[0]))
}

func (h *Handlers) cmdCWE(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) == 0 || len(c.args) > 10 {
		return disclosure.Decision{}, usage("one to ten, e.g. CWE-787")
	}
	var cwes []string
	for _, a := range c.args {
		a = strings.ToUpper(a)
		if _, err := fmt.Sscanf(a, "CWE-%d", new(int)); err != nil || !strings.HasPrefix(a, "CWE-") || len(a) > 12 {
			return disclosure.Decision{}, usage("%s is not a CWE ID like CWE-787", templates.EscapeMarkdown(templates.Truncate(a, 20)))
		}
		cwes = append(cwes, a)
	}
	return c.c.CWE(c.req, cwes)
}

func (h *Handlers) cmdSummary(c *cmdContext) (disclosure.Decision, error) {
	if c.rest == "" || len(c.rest) > 200 || strings.Contains(c.rest, "\n") {
		return disclosure.Decision{}, usage("one line, at most 200 characters")
	}
	return c.c.SetSummary(c.req, c.rest)
}

func (h *Handlers) cmdDescription(c *cmdContext) (disclosure.Decision, error) {
	if c.rest == "" || len(c.rest) > 10000 {
		return disclosure.Decision{}, usage("the public description, at most 10,000 characters")
	}
	return c.c.SetDescription(c.req, c.rest)
}

func (h *Handlers) cmdReject(c *cmdContext) (disclosure.Decision, error) {
	reason, err := c.needText("the reason is shown to the reporter")
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.Reject(c.req, reason)
}

func (h *Handlers) cmdAudit(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 1 || (c.args[0] != "start" && c.args[0] != "done") {
		return disclosure.Decision{}, usage("`start` or `done`")
	}
	return c.c.Audit(c.req, c.args[0] == "done")
}

// force reads the only flag: --force, alone.
func (c *cmdContext) force() (bool, error) {
	switch {
	case len(c.args) == 0:
		return false, nil
	case len(c.args) == 1 && c.args[0] == "--force":
		return true, nil
	}
	return false, usage("the only option is `--force`")
}

func (h *Handlers) cmdPublish(c *cmdContext) (disclosure.Decision, error) {
	force, err := c.force()
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.Publish(c.req, force)
}

func (h *Handlers) cmdAnnounce(c *cmdContext) (disclosure.Decision, error) {
	force, err := c.force()
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.Announce(c.req, force)
}

func (h *Handlers) cmdClose(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 0 {
		return disclosure.Decision{}, usage("close takes no arguments")
	}
	return c.c.Close(c.req)
}

// parseEmbargoDate reads YYYY-MM-DD [HH:MM] in the policy's time zone; a
// date alone means the end of that day.
func parseEmbargoDate(args []string, loc *time.Location) (time.Time, error) {
	switch len(args) {
	case 1:
		d, err := time.ParseInLocation("2006-01-02", args[0], loc)
		if err != nil {
			return time.Time{}, err
		}
		return d.AddDate(0, 0, 1).Add(-time.Minute), nil // 23:59 that day
	case 2:
		return time.ParseInLocation("2006-01-02 15:04", args[0]+" "+args[1], loc)
	}
	return time.Time{}, fmt.Errorf("want a date")
}

func (h *Handlers) cmdEmbargo(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) == 0 {
		return disclosure.Decision{}, usage("say what to do with the embargo")
	}
	switch c.args[0] {
	case "propose":
		loc := c.req.Policy.Calendar.Location
		if loc == nil {
			loc = time.UTC
		}
		end, err := parseEmbargoDate(c.args[1:], loc)
		if err != nil {
			return disclosure.Decision{}, usage("the date must be YYYY-MM-DD with an optional HH:MM (%s), e.g. `%s embargo propose 2027-01-15 14:00`", loc, c.prefix())
		}
		return c.c.ProposeEmbargo(c.req, end)
	case "lift":
		if len(c.args) != 1 {
			return disclosure.Decision{}, usage("`lift` takes no arguments")
		}
		return c.c.LiftEmbargo(c.req)
	case "add", "remove":
		if len(c.args) < 2 || len(c.args) > 3 || !isUserID(c.args[1]) {
			return disclosure.Decision{}, usage("a Matrix user like @carol:example.org, and optionally their GitHub name")
		}
		login := ""
		if len(c.args) == 3 {
			login = strings.TrimPrefix(c.args[2], "@")
			if !githubLogin.MatchString(login) {
				return disclosure.Decision{}, usage("%s is not a GitHub user name", templates.EscapeMarkdown(templates.Truncate(c.args[2], 40)))
			}
		}
		if c.args[0] == "add" {
			return c.c.AddNeedToKnow(c.req, disclosure.Person(c.args[1]), login)
		}
		return c.c.RemoveNeedToKnow(c.req, disclosure.Person(c.args[1]), login)
	}
	return disclosure.Decision{}, usage("`propose`, `add`, `remove` or `lift`")
}

func (h *Handlers) cmdGitHub(c *cmdContext) (disclosure.Decision, error) {
	login, err := githubArg(c)
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.InviteToAdvisory(c.req, login)
}

// githubArg is the one GitHub user name a command takes.
func githubArg(c *cmdContext) (string, error) {
	if len(c.args) != 1 {
		return "", usage("one GitHub user name, e.g. octocat")
	}
	login := strings.TrimPrefix(c.args[0], "@")
	if !githubLogin.MatchString(login) {
		return "", usage("%s is not a GitHub user name (letters, digits and single hyphens, at most 39)", templates.EscapeMarkdown(templates.Truncate(c.args[0], 40)))
	}
	return login, nil
}

func (h *Handlers) cmdInvite(c *cmdContext) (disclosure.Decision, error) {
	switch {
	case len(c.args) == 0:
		return c.c.Invite(c.req, "")
	case len(c.args) == 1 && isUserID(c.args[0]):
		return c.c.Invite(c.req, disclosure.Person(c.args[0]))
	}
	return disclosure.Decision{}, usage("no one (the reporter) or one Matrix user like @carol:example.org")
}

func (h *Handlers) cmdFork(c *cmdContext) (disclosure.Decision, error) { return c.c.Fork(c.req) }

func (h *Handlers) cmdAdvisory(c *cmdContext) (disclosure.Decision, error) {
	return c.c.CreateAdvisory(c.req)
}

func (h *Handlers) cmdRepo(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 1 || !strings.Contains(c.args[0], "/") || len(c.args[0]) > 140 {
		return disclosure.Decision{}, usage("one repository, e.g. %s", templates.EscapeMarkdown(c.req.Policy.Repository))
	}
	return c.c.MoveAdvisory(c.req, c.args[0])
}

func (h *Handlers) cmdCVE(c *cmdContext) (disclosure.Decision, error) { return c.c.CVE(c.req) }

// isUserID reports whether s is a Matrix user ID like @carol:example.org.
func isUserID(s string) bool {
	_, _, err := id.UserID(s).Parse()
	return err == nil && strings.HasPrefix(s, "@")
}

// DefaultCommandMaxAge is how long after it was sent a team command still
// runs, unless SetCommandMaxAge says otherwise ([matrix] command_max_age).
const DefaultCommandMaxAge = 6 * time.Hour

// CommandSkew is how much earlier than the newest team command handled in
// its room a command may have been sent and still run: the clocks of the
// members' servers differ a little.
const CommandSkew = 2 * time.Minute

// SetCommandMaxAge sets how long after it was sent a team command still
// runs (0: DefaultCommandMaxAge).
func (h *Handlers) SetCommandMaxAge(d time.Duration) { h.commandMaxAge = d }

// replayed refuses a team command sent too long ago, or before the newest
// team command handled in its room: a homeserver can deliver an old event
// again (its megolm session still decrypts it), and what it asked for then
// need not be meant now. The refusal names no text of the command.
func (h *Handlers) replayed(ctx context.Context, msg Message) (*disclosure.Refusal, error) {
	if msg.Sent.IsZero() {
		return nil, nil // the channel does not say when
	}
	maxAge := h.commandMaxAge
	if maxAge <= 0 {
		maxAge = DefaultCommandMaxAge
	}
	sent := msg.Sent.UTC().Format("2006-01-02 15:04 MST")
	if h.clock.Now().Sub(msg.Sent) > maxAge {
		return &disclosure.Refusal{Reason: fmt.Sprintf("this command was sent at %s, more than %s ago (secbot was not running, its key came late, or the homeserver delivered it again), so I did not run it. Type it again if you still mean it.", sent, age(maxAge))}, nil
	}
	last, err := h.store.LastCommandSent(ctx, msg.Room)
	if err != nil {
		return nil, err
	}
	if msg.Sent.Before(last.Add(-CommandSkew)) {
		return &disclosure.Refusal{Reason: fmt.Sprintf("this command was sent at %s, before the last command handled here (sent at %s): it comes out of order (its key came late, or the homeserver delivered it again), so I did not run it. Type it again if you still mean it.", sent, last.UTC().Format("2006-01-02 15:04 MST"))}, nil
	}
	return nil, nil
}

// noteCommand records that a team command ran in its room, for replayed:
// when it was sent, and never later than now, so that a server's clock
// running ahead does not hold back the commands that follow.
func (h *Handlers) noteCommand(ctx context.Context, msg Message) error {
	if msg.Sent.IsZero() {
		return nil
	}
	return h.store.NoteCommandSent(ctx, msg.Room, minTime(msg.Sent, h.clock.Now()))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// age writes a duration as people do: 6h, 90m, 45s.
func age(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
