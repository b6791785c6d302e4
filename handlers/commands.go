package handlers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// caseArg says how a command finds its case.
type caseArg int

const (
	noCase      caseArg = iota
	impliedCase         // the case room's case, else named
	allCases            // shows every case: only where only the team reads
)

// command is one registered command; the help is generated from these
// registrations, so it cannot drift from what exists.
type command struct {
	name    string
	args    string // syntax after the name, e.g. "[CASE] REASON"
	summary string
	caseArg caseArg
	// bang commands change something, so the reporter must type them with
	// a leading "!": a chat reply of "agree" agrees to nothing.
	bang bool
	// github commands are left out of help when GitHub is off.
	github bool
	// subs are the subcommands, each with its own help line.
	subs []helpLine
	// run parses the arguments and asks the domain. It reads and never
	// writes: what it returns is applied (or refused) by runCommand.
	run func(c *cmdContext) (disclosure.Decision, error)
}

// scope is what the command reaches, for the policy's place check.
func (cmd *command) scope() disclosure.Scope {
	switch cmd.caseArg {
	case impliedCase:
		return disclosure.OneCase
	case allCases:
		return disclosure.AllCases
	}
	return disclosure.NoCase
}

// cmdContext is one command invocation.
type cmdContext struct {
	context.Context
	h   *Handlers
	msg chat.Message
	req disclosure.Request
	cmd *command
	sc  *store.Case      // the case as stored, nil for commands without one
	c   *disclosure.Case // the same case as the domain sees it
	// args are the words after the command name (and case ID); rest is
	// the raw text after them, with its own spacing.
	args []string
	rest string
}

// usageError is a command given the wrong way: the answer shows the
// command's syntax and, if set, a hint.
type usageError struct{ hint string }

func (e usageError) Error() string { return "usage: " + e.hint }

func usage(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// tokenize splits a command line into words, keeping for each the raw text
// that follows it (free text like an update keeps its own spacing).
func tokenize(s string) (words []string, rests []string) {
	i := 0
	for i < len(s) {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		words = append(words, s[start:i])
		rests = append(rests, strings.TrimSpace(s[i:]))
	}
	return words, rests
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// maxCommandLength bounds what the parser looks at; longer input is refused.
const maxCommandLength = disclosure.MaxCommandLength

// parsedCommand is a command line taken apart, before it runs.
type parsedCommand struct {
	name   string
	caseID disclosure.CaseID
	named  bool // the case ID was given
	args   []string
	rest   string
	// where the command was typed, and how far the device it came from
	// speaks for its sender.
	where disclosure.Place
	trust disclosure.DeviceTrust
}

// parseCommand parses the text after the prefix for a command of the
// registry. Case IDs are recognised in the first argument position.
func parseCommand(text string, registry map[string]*command) (*command, parsedCommand, error) {
	if len(text) > maxCommandLength {
		return nil, parsedCommand{}, usageLine("that command is too long (at most %d characters)", maxCommandLength)
	}
	words, rests := tokenize(text)
	if len(words) == 0 {
		return registry["help"], parsedCommand{name: "help"}, nil
	}
	name := strings.ToLower(words[0])
	cmd, ok := registry[name]
	if !ok {
		return nil, parsedCommand{}, usageLine("there is no command %q; `help` lists them", templates.EscapeMarkdown(templates.Truncate(words[0], 40)))
	}
	p := parsedCommand{name: name, args: words[1:], rest: rests[0]}
	if cmd.caseArg != noCase && len(p.args) > 0 {
		if caseID, err := disclosure.ParseCaseID(p.args[0]); err == nil {
			p.caseID, p.named = caseID, true
			p.args, p.rest = p.args[1:], rests[1]
		} else if looksLikeCaseID(p.args[0]) {
			return nil, parsedCommand{}, usageLine("%q is not a case ID; they look like SR-2026-0007", templates.EscapeMarkdown(templates.Truncate(p.args[0], 40)))
		}
	}
	return cmd, p, nil
}

func looksLikeCaseID(s string) bool { return len(s) > 3 && strings.EqualFold(s[:3], "SR-") }

// helpLine is one line of help: what follows the prefix, and what it does.
type helpLine struct{ syntax, summary string }

// help lists the registry's commands with their syntax, a line for each
// subcommand; GitHub's commands only when GitHub is on.
func help(prefix string, registry map[string]*command, title string, github bool) templates.Help {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	out := templates.Help{Title: title}
	for _, name := range names {
		if registry[name].github && !github {
			continue
		}
		out.Commands = append(out.Commands, helpLines(prefix, registry[name])...)
	}
	return out
}

// helpLines are a command's lines of help: one, or one per subcommand.
func helpLines(prefix string, cmd *command) []templates.HelpLine {
	if len(cmd.subs) == 0 {
		return []templates.HelpLine{{Syntax: syntax(prefix, cmd), Summary: cmd.summary}}
	}
	var out []templates.HelpLine
	for _, sub := range cmd.subs {
		out = append(out, templates.HelpLine{Syntax: strings.TrimSpace(prefix + " " + cmd.name + " " + sub.syntax), Summary: sub.summary})
	}
	return out
}

// syntax is how a command is written.
func syntax(prefix string, cmd *command) string {
	name := cmd.name
	if cmd.bang {
		name = "!" + name
	}
	return strings.TrimSpace(prefix + " " + name + " " + cmd.args)
}

// runCommand resolves the case, asks the domain and applies its decision in
// one transaction with marking the event handled. A refusal or a usage
// error records its audit line and its answer, and nothing else.
func (h *Handlers) runCommand(ctx context.Context, msg chat.Message, cmd *command, p parsedCommand, caseID disclosure.CaseID, reporter bool) error {
	var pinned *disclosure.Pin
	err := h.once(ctx, msg.ID, func(ctx context.Context) error {
		c := &cmdContext{Context: ctx, h: h, msg: msg, cmd: cmd, args: p.args, rest: p.rest}
		c.req = h.request(msg, p.trust, p.where)
		if !caseID.IsZero() {
			found, err := h.store.Case(ctx, caseID)
			if errors.Is(err, store.ErrNotFound) {
				return h.refuse(ctx, c, &disclosure.Refusal{Action: "command " + cmd.name, Reason: fmt.Sprintf("there is no case %s.", caseID)})
			} else if err != nil {
				return err
			}
			if c.c, err = h.domainCase(ctx, found); err != nil {
				return err
			}
			c.sc = found
		}
		if !reporter {
			if r, err := h.replayed(ctx, msg); err != nil {
				return err
			} else if r != nil {
				return h.refuse(ctx, c, r)
			}
		}
		d, err := cmd.run(c)
		var refusal *disclosure.Refusal
		var bad usageError
		switch {
		case errors.As(err, &refusal):
			return h.refuse(ctx, c, refusal)
		case errors.As(err, &bad):
			return h.refuseUsage(ctx, c, bad, reporter)
		case err != nil:
			return err
		}
		pinned = d.Pin
		if err := h.apply(ctx, msg, c.sc, c.req, d); err != nil || reporter {
			return err
		}
		return h.noteCommand(ctx, msg)
	})
	if err == nil && pinned != nil {
		if ids := h.identities(pinned.Member); ids != nil {
			ids.TrustChanged(ctx, pinned.Member)
		}
	}
	return err
}

// usageLine refuses a command line that cannot be parsed.
func usageLine(format string, args ...any) error {
	return &disclosure.Refusal{Action: "command", Reason: fmt.Sprintf(format, args...) + "."}
}

// commandText returns the text after the team command prefix, if text
// starts with it (ASCII, case-insensitive, followed by a space or nothing;
// look-alike characters are not the prefix).
func (h *Handlers) commandText(room, text string) (string, bool) {
	text = strings.TrimSpace(text)
	prefix := h.Policy().Prefix(chat.PlatformOf(room))
	if prefix == "" || len(text) < len(prefix) || !strings.EqualFold(text[:len(prefix)], prefix) {
		return "", false
	}
	rest := text[len(prefix):]
	if rest != "" && !isSpace(rest[0]) {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// CommandOf names the team or reporter command a message in room gives,
// for the log: only a command's name, never a word of anything else
// ("" when the text gives none).
func (h *Handlers) CommandOf(room, text string) string {
	if rest, ok := h.commandText(room, text); ok {
		if cmd, _, err := parseCommand(rest, h.teamCmds); err == nil && cmd != nil {
			return cmd.name
		}
		return ""
	}
	if cmd, _, ok := h.reporterCommand(text); ok {
		return cmd.name
	}
	return ""
}
