package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/templates"
)

// teamCommands are the `!sec` commands, for team members only: the
// domain's, run by asking it, and the views answered from the store.
func (h *Handlers) teamCommands() map[string]*command {
	return registry(disclosure.TeamCommands(), map[string]func(*cmdContext) (disclosure.Decision, error){
		"help": h.cmdHelp, "list": h.cmdList, "stats": h.cmdStats, "contacts": h.cmdContacts, "status": h.cmdStatus, "trust": h.cmdTrust,
	})
}

// registry is the handlers' command table for the domain's commands:
// views run the handlers' own function, the rest ask the domain.
func registry(specs []disclosure.CommandSpec, views map[string]func(*cmdContext) (disclosure.Decision, error)) map[string]*command {
	out := make(map[string]*command, len(specs))
	for _, spec := range specs {
		cmd := &command{name: spec.Name, args: spec.Syntax, summary: spec.Summary, bang: spec.Bang, github: spec.GitHub}
		for _, sub := range spec.Subs {
			cmd.subs = append(cmd.subs, helpLine{syntax: spec.SubSyntax(sub), summary: sub.Summary})
		}
		switch spec.Scope {
		case disclosure.OneCase:
			cmd.caseArg = impliedCase
		case disclosure.AllCases:
			cmd.caseArg = allCases
		}
		if run, ok := views[spec.Name]; ok {
			cmd.run = run
		} else {
			cmd.run = askDomain(spec)
		}
		out[spec.Name] = cmd
	}
	return out
}

// askDomain runs a command by asking the domain, with the command's words
// and the platform's reading of a person.
func askDomain(spec disclosure.CommandSpec) func(*cmdContext) (disclosure.Decision, error) {
	return func(c *cmdContext) (disclosure.Decision, error) {
		if spec.Decide == nil || c.c == nil {
			return disclosure.Decision{}, fmt.Errorf("command %s has no case to decide on", spec.Name)
		}
		d, err := spec.Decide(c.c, c.req, disclosure.Args{Words: c.args, Rest: c.rest, Person: c.h.personIn(c.msg.Room)})
		return d, fromDomain(err)
	}
}

// fromDomain is the domain's usage error as the handlers answer it (with
// the command's syntax); any other error as it is.
func fromDomain(err error) error {
	var bad disclosure.UsageError
	if errors.As(err, &bad) {
		return usageError{bad.Hint}
	}
	return err
}

// teamCommand runs a `!sec` command once the policy has said it may run
// where it was typed, and on which case.
func (h *Handlers) teamCommand(ctx context.Context, msg chat.Message, trust disclosure.DeviceTrust, where disclosure.Place, text string) error {
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
	caseID, placeErr := h.Policy().TeamCommand(name, scope, msg.Sender, trust, where, named)
	if placeErr == nil && err != nil {
		placeErr = err
	}
	if placeErr != nil {
		return h.once(ctx, msg.ID, func(ctx context.Context) error {
			c := &cmdContext{Context: ctx, h: h, msg: msg, cmd: cmd}
			c.req = h.request(msg, trust, where)
			return h.refuse(ctx, c, placeErr.(*disclosure.Refusal))
		})
	}
	p.where, p.trust = where, trust
	return h.runCommand(ctx, msg, cmd, p, caseID, false)
}

func (c *cmdContext) prefix() string { return c.req.Policy.CommandPrefix }

func (h *Handlers) cmdHelp(c *cmdContext) (disclosure.Decision, error) {
	github := c.req.Policy.GitHub
	if len(c.args) > 0 {
		cmd, ok := h.teamCmds[strings.ToLower(c.args[0])]
		if !ok {
			return disclosure.Decision{}, usageLine("there is no command %q; `%s help` lists them", templates.EscapeMarkdown(templates.Truncate(c.args[0], 40)), c.prefix())
		}
		if cmd.github && !github {
			return disclosure.Decision{}, &disclosure.Refusal{Action: "command help", Reason: fmt.Sprintf("`%s` works on the case's GitHub advisory, and GitHub is not configured for secbot.", cmd.name)}
		}
		return onlyAnswer(templates.Help{Commands: helpLines(c.prefix(), cmd)}), nil
	}
	return onlyAnswer(help(c.prefix(), h.teamCmds, "**secbot commands** (in a case room the case is implied and only that case is reached; elsewhere name it, e.g. `SR-2026-0007`):", github)), nil
}

// onlyAnswer is a decision that only answers.
func onlyAnswer(d templates.Data) disclosure.Decision {
	return disclosure.Decision{Say: []disclosure.Message{{To: disclosure.Audience{Kind: disclosure.Here}, Data: d}}}
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
func (h *Handlers) replayed(ctx context.Context, msg chat.Message) (*disclosure.Refusal, error) {
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
func (h *Handlers) noteCommand(ctx context.Context, msg chat.Message) error {
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
