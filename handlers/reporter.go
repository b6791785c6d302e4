package handlers

import (
	"context"
	"strings"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// reporterCommands are what a reporter can say in their DM or case room.
func (h *Handlers) reporterCommands() map[string]*command {
	cmds := []*command{
		{name: "help", summary: "what you can say here", run: h.cmdReporterHelp},
		{name: "status", summary: "where your report stands and what we promised by when", caseArg: impliedCase, run: h.cmdReporterStatus},
		{name: "escalate", bang: true, summary: "chase the team if we missed a promise", caseArg: impliedCase, run: h.cmdEscalate},
		{name: "github", bang: true, args: "NAME", summary: "be invited to the private GitHub Security Advisory as GitHub user NAME (your own account, once)", caseArg: impliedCase, run: h.cmdOwnGitHub},
		{name: "agree", bang: true, summary: "accept the embargo date the team proposed", caseArg: impliedCase, run: h.cmdAgree},
		{name: "disagree", bang: true, summary: "decline the embargo date the team proposed", caseArg: impliedCase, run: h.cmdDisagree},
		{name: "invite", bang: true, summary: "be invited again to your report's private room (after leaving or declining it)", caseArg: impliedCase, run: h.cmdReporterInvite},
		{name: "credit", bang: true, args: "NAME|none", summary: "how the advisory credits you: your GitHub name, or none", caseArg: impliedCase, run: h.cmdCredit},
	}
	registry := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		registry[c.name] = c
	}
	return registry
}

// reporterCommand recognises a reporter's command: "!name args", or a
// bare "help" or "status" alone (they change nothing).
func (h *Handlers) reporterCommand(text string) (*command, parsedCommand, bool) {
	text = strings.TrimSpace(text)
	bang := strings.HasPrefix(text, "!")
	text = strings.TrimPrefix(text, "!")
	words, _ := tokenize(text)
	if len(words) == 0 {
		return nil, parsedCommand{}, false
	}
	cmd, ok := h.reporterCmds[strings.ToLower(words[0])]
	if !ok || (!bang && (cmd.bang || len(words) > 1)) {
		return nil, parsedCommand{}, false
	}
	cmd, p, err := parseCommand(text, h.reporterCmds)
	if err != nil {
		return nil, parsedCommand{}, false
	}
	return cmd, p, true
}

// runReporterCommand runs a reporter's command on their own case: the one
// of the case room they wrote in, or their open case from the DM.
func (h *Handlers) runReporterCommand(ctx context.Context, msg Message, where disclosure.Place, cmd *command, p parsedCommand, own *store.Case) error {
	p.where = where
	var refusal *disclosure.Refusal
	switch {
	case cmd.caseArg == noCase:
	case own == nil:
		refusal = &disclosure.Refusal{Action: "command " + cmd.name, Reason: "you have no open report. To open one, say \"I want to report a security issue\", without any details."}
	case p.named && p.caseID != own.ID:
		refusal = &disclosure.Refusal{Action: "command " + cmd.name, Reason: "you can only ask about your own report."}
	}
	if refusal != nil {
		return h.once(ctx, msg.ID, func(ctx context.Context) error {
			c := &cmdContext{Context: ctx, h: h, msg: msg, cmd: cmd, sc: own}
			c.req = h.request(msg, where)
			return h.refuse(ctx, c, refusal)
		})
	}
	var caseID disclosure.CaseID
	if cmd.caseArg != noCase {
		caseID = own.ID
	}
	return h.runCommand(ctx, msg, cmd, p, caseID, true)
}

func (h *Handlers) cmdReporterHelp(c *cmdContext) (disclosure.Decision, error) {
	return onlyAnswer(h.reporterHelp()), nil
}

func (h *Handlers) cmdReporterStatus(c *cmdContext) (disclosure.Decision, error) {
	return onlyAnswer(templates.ReporterStatus{CaseID: c.c.ID.String(), Stage: c.c.Stage.Label(), Deadlines: deadlineRows(c.c, c.req.Policy, c.req.Now, false)}), nil
}

func (h *Handlers) cmdEscalate(c *cmdContext) (disclosure.Decision, error) {
	return c.c.Escalate(c.req)
}

func (h *Handlers) cmdAgree(c *cmdContext) (disclosure.Decision, error) {
	return c.c.AnswerEmbargo(c.req, true)
}

func (h *Handlers) cmdDisagree(c *cmdContext) (disclosure.Decision, error) {
	return c.c.AnswerEmbargo(c.req, false)
}

// cmdCredit takes how the reporter wants to be credited on the advisory.
func (h *Handlers) cmdCredit(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 1 {
		return disclosure.Decision{}, usage("`!credit YOUR-GITHUB-NAME`, or `!credit none` not to be credited")
	}
	name := strings.TrimPrefix(c.args[0], "@")
	if strings.EqualFold(name, "none") {
		return c.c.Credit(c.req, "")
	}
	if !githubLogin.MatchString(name) {
		return disclosure.Decision{}, usage("%s is not a GitHub user name", templates.EscapeMarkdown(templates.Truncate(name, 40)))
	}
	return c.c.Credit(c.req, name)
}

// cmdOwnGitHub is the reporter naming their own GitHub account.
func (h *Handlers) cmdOwnGitHub(c *cmdContext) (disclosure.Decision, error) {
	login, err := githubArg(c)
	if err != nil {
		return disclosure.Decision{}, err
	}
	return c.c.NameOwnGitHub(c.req, login)
}

// cmdReporterInvite invites the reporter back to their own case room.
func (h *Handlers) cmdReporterInvite(c *cmdContext) (disclosure.Decision, error) {
	if len(c.args) != 0 {
		return disclosure.Decision{}, usage("`!invite` alone: it invites you")
	}
	return c.c.Invite(c.req, c.req.By)
}
