package handlers

import (
	"context"
	"errors"
	"strings"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// reporterCommands are what a reporter can say in their DM or case room.
func (h *Handlers) reporterCommands() map[string]*command {
	return registry(disclosure.ReporterCommands(), map[string]func(*cmdContext) (disclosure.Decision, error){
		"help": h.cmdReporterHelp, "status": h.cmdReporterStatus,
	})
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
	if !ok || !(disclosure.CommandSpec{Bang: cmd.bang}).ReporterTyped(bang, len(words)) {
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
func (h *Handlers) runReporterCommand(ctx context.Context, msg chat.Message, trust disclosure.DeviceTrust, where disclosure.Place, cmd *command, p parsedCommand, own *store.Case) error {
	p.where, p.trust = where, trust
	var ownID, named disclosure.CaseID
	if own != nil {
		ownID = own.ID
	}
	if p.named {
		named = p.caseID
	}
	caseID, err := h.Policy().ReporterCommand(cmd.name, cmd.scope(), ownID, named)
	if refusal := (*disclosure.Refusal)(nil); errors.As(err, &refusal) {
		return h.once(ctx, msg.ID, func(ctx context.Context) error {
			c := &cmdContext{Context: ctx, h: h, msg: msg, cmd: cmd, sc: own}
			c.req = h.request(msg, trust, where)
			return h.refuse(ctx, c, refusal)
		})
	} else if err != nil {
		return err
	}
	return h.runCommand(ctx, msg, cmd, p, caseID, true)
}

func (h *Handlers) cmdReporterHelp(c *cmdContext) (disclosure.Decision, error) {
	return onlyAnswer(h.reporterHelp(c.req.Policy.GitHub)), nil
}

func (h *Handlers) cmdReporterStatus(c *cmdContext) (disclosure.Decision, error) {
	return onlyAnswer(templates.ReporterStatus{CaseID: c.c.ID.String(), Stage: c.c.Stage.Label(), Deadlines: deadlineRows(c.c, c.req.Policy, c.req.Now, false)}), nil
}
