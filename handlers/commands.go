package handlers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// caseArg says how a command finds its case.
type caseArg int

const (
	noCase       caseArg = iota
	impliedCase          // optional: the case room's case, else named
	requiredCase         // must be named, even in a case room
)

// command is one registered command; the help is generated from these
// registrations, so it cannot drift from what exists.
type command struct {
	name    string
	args    string // syntax after the name, e.g. "[CASE] REASON"
	summary string
	caseArg caseArg
	// quiet commands answer with a reaction instead of a reply.
	quiet bool
	run   func(c *cmdContext) error
}

// cmdContext is one command invocation.
type cmdContext struct {
	context.Context
	h      *Handlers
	evt    *event.Event
	sender id.UserID
	now    time.Time
	c      *store.Case // nil for commands without a case
	args   []string
	rest   string // the raw text after the command name (and case ID)
	lane   string
	// reporter is true for the reporter's own commands.
	reporter bool
}

// errUsage is a wrong invocation; its message is shown as the answer.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usagef(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

func (c *cmdContext) reply(md string) error {
	return c.h.send(c, c.lane, store.Target{Room: c.evt.RoomID}, md, c.evt.ID)
}

func (c *cmdContext) react(key string) error {
	_, err := c.h.store.Enqueue(c, c.lane, store.KindReact, store.ReactEffect{Room: c.evt.RoomID, Event: c.evt.ID, Key: key}, c.now)
	return err
}

func (c *cmdContext) audit(action, detail string, allowed bool) error {
	caseID := ""
	if c.c != nil {
		caseID = c.c.ID.String()
	}
	return c.h.store.Audit(c, store.AuditEntry{At: c.now, Actor: c.sender, CaseID: caseID, Action: action, Detail: detail, Allowed: allowed})
}

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
const maxCommandLength = 4000

// parsedCommand is a command line taken apart, before it runs.
type parsedCommand struct {
	name   string
	caseID disclosure.CaseID
	named  bool // the case ID was given
	args   []string
	rest   string
}

// parseCommand parses the text after the prefix for a command of the
// registry. Case IDs are recognised in the first argument position.
func parseCommand(text string, registry map[string]*command) (*command, parsedCommand, error) {
	if len(text) > maxCommandLength {
		return nil, parsedCommand{}, usagef("that command is too long (at most %d characters)", maxCommandLength)
	}
	words, rests := tokenize(text)
	if len(words) == 0 {
		return registry["help"], parsedCommand{name: "help"}, nil
	}
	name := strings.ToLower(words[0])
	cmd, ok := registry[name]
	if !ok {
		return nil, parsedCommand{}, usagef("there is no command %q; `help` lists them", templates.EscapeMarkdown(truncate(words[0], 40)))
	}
	p := parsedCommand{name: name, args: words[1:], rest: rests[0]}
	if cmd.caseArg != noCase && len(p.args) > 0 {
		if caseID, err := disclosure.ParseCaseID(p.args[0]); err == nil {
			p.caseID, p.named = caseID, true
			p.args, p.rest = p.args[1:], rests[1]
		} else if looksLikeCaseID(p.args[0]) {
			return nil, parsedCommand{}, usagef("%q is not a case ID; they look like SR-2026-0007", templates.EscapeMarkdown(truncate(p.args[0], 40)))
		}
	}
	return cmd, p, nil
}

func looksLikeCaseID(s string) bool { return len(s) > 3 && strings.EqualFold(s[:3], "SR-") }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// helpText lists the registry's commands with their syntax.
func helpText(prefix string, registry map[string]*command, title string) string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(title + "\n\n")
	for _, name := range names {
		cmd := registry[name]
		syntax := strings.TrimSpace(prefix + " " + name + " " + cmd.args)
		fmt.Fprintf(&b, "- `%s` — %s\n", syntax, cmd.summary)
	}
	return b.String()
}

// commandHelp is the help of one command.
func commandHelp(prefix string, cmd *command) string {
	return fmt.Sprintf("`%s` — %s", strings.TrimSpace(prefix+" "+cmd.name+" "+cmd.args), cmd.summary)
}

// runCommand resolves the case, runs the command in one transaction with
// marking the event handled, and turns usage errors into one-line answers.
func (h *Handlers) runCommand(ctx context.Context, evt *event.Event, cmd *command, p parsedCommand, roomCase *store.Case, reporter bool) error {
	return h.once(ctx, evt, func(ctx context.Context) error {
		c := &cmdContext{Context: ctx, h: h, evt: evt, sender: evt.Sender, now: h.clock.Now(), args: p.args, rest: p.rest, lane: "room:" + evt.RoomID.String(), reporter: reporter}
		switch {
		case cmd.caseArg == noCase:
		case reporter && roomCase == nil:
			return c.reply("You have no open report. To open one, say \"I want to report a security issue\" — without any details.")
		case p.named && reporter && (roomCase == nil || roomCase.ID != p.caseID):
			return c.reply("You can only ask about your own report.")
		case p.named:
			found, err := h.store.Case(ctx, p.caseID)
			if errors.Is(err, store.ErrNotFound) {
				return c.reply(fmt.Sprintf("There is no case %s.", p.caseID))
			} else if err != nil {
				return err
			}
			c.c = found
		case roomCase != nil:
			c.c = roomCase
		default:
			return c.reply(fmt.Sprintf("Which case? Name it: `%s`.", strings.TrimSpace(h.opts().CommandPrefix+" "+cmd.name+" SR-2026-0007 "+cmd.args)))
		}
		if c.c != nil {
			c.lane = c.c.ID.String()
		}
		err := cmd.run(c)
		var usage errUsage
		if errors.As(err, &usage) {
			return c.reply(usage.msg)
		}
		if err != nil {
			return err
		}
		if cmd.quiet {
			return c.react("✅")
		}
		return nil
	})
}
