// Package handlers turns incoming Matrix events into the domain's decisions:
// intake, reporter and team commands, and who may do what.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/scheduler"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Chat is what the handlers need of the Matrix side beyond the outbox:
// answering invites, which is safe to repeat and so is done directly.
type Chat interface {
	UserID() id.UserID
	JoinRoom(ctx context.Context, roomID id.RoomID) error
	LeaveRoom(ctx context.Context, roomID id.RoomID, reason string) error
	// JoinedMemberCount is the number of users joined to a room, as the
	// bot last saw it.
	JoinedMemberCount(ctx context.Context, roomID id.RoomID) (int, error)
}

// Options are the facts the handlers act on, taken from the config. The
// policy (promises, calendar, ladder) is the timers', so a reload changes both.
type Options struct {
	CommandPrefix string
	TeamRoom      id.RoomID
	Team          []id.UserID
	// GitHub is true when cases get advisories.
	GitHub bool
	// Repository is owner/repo, named in announcements.
	Repository string
	// AnnounceRooms get the announcement of a published advisory.
	AnnounceRooms []string
	// EmbargoWarnAfter is how long an embargo may be before a warning.
	EmbargoWarnAfter disclosure.Span
	// Rotation suggests a handler round-robin for each new case.
	Rotation bool
}

// Handlers implements bot.Handler.
type Handlers struct {
	// options are swapped whole by SetOptions (a config reload).
	options   atomic.Pointer[Options]
	store     *store.Store
	chat      Chat
	templates *templates.Set
	clock     clockwork.Clock
	timers    *scheduler.Timers
	// kick tells the outbox runner that effects were recorded.
	kick func()

	teamCmds     map[string]*command
	reporterCmds map[string]*command
	chatter      limiter
}

// New returns the handlers.
func New(opts Options, st *store.Store, chat Chat, tmpl *templates.Set, clock clockwork.Clock, timers *scheduler.Timers, kick func()) *Handlers {
	if kick == nil {
		kick = func() {}
	}
	h := &Handlers{store: st, chat: chat, templates: tmpl, clock: clock, timers: timers, kick: kick}
	h.options.Store(&opts)
	h.teamCmds = h.teamCommands()
	h.reporterCmds = h.reporterCommands()
	return h
}

// SetOptions puts reloaded options in force (a SIGHUP).
func (h *Handlers) SetOptions(opts Options) { h.options.Store(&opts) }

// opts returns the options in force.
func (h *Handlers) opts() *Options { return h.options.Load() }

// IsTeam reports whether user is on the security team.
func (h *Handlers) IsTeam(user id.UserID) bool { return slices.Contains(h.teamMembers(), user) }

// teamMembers is the team as the config in force names it: the timers'
// policy, which a SIGHUP reload replaces.
func (h *Handlers) teamMembers() []id.UserID {
	if h.timers != nil {
		return h.timers.Policy().Team
	}
	return h.opts().Team
}

// HandleEvent handles one synced (and decrypted) event. It returns an error
// only when nothing was committed, so the event can be handled again.
func (h *Handlers) HandleEvent(ctx context.Context, evt *event.Event) error {
	if evt.Sender == h.chat.UserID() && evt.Type != event.StateMember {
		return nil
	}
	switch evt.Type {
	case event.StateMember:
		if evt.GetStateKey() == h.chat.UserID().String() && evt.Content.AsMember().Membership == event.MembershipInvite {
			return h.handleInvite(ctx, evt)
		}
	case event.EventMessage:
		return h.handleMessage(ctx, evt)
	}
	// Reactions, redactions, stickers and everything else change nothing.
	return nil
}

// handleInvite accepts direct chats from anyone (that is how reporters
// reach the bot) and other rooms only from the security team.
func (h *Handlers) handleInvite(ctx context.Context, evt *event.Event) error {
	log := zerolog.Ctx(ctx)
	member := evt.Content.AsMember()
	now := h.clock.Now()
	if !member.IsDirect && !h.IsTeam(evt.Sender) {
		log.Info().Msg("Declining an invite to a group room from outside the team")
		if err := h.chat.LeaveRoom(ctx, evt.RoomID, "secbot joins group rooms only when the security team invites it"); err != nil {
			return fmt.Errorf("decline invite: %w", err)
		}
		return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: evt.Sender, Action: "invite", Detail: "group room invite declined", Allowed: false})
	}
	if err := h.chat.JoinRoom(ctx, evt.RoomID); err != nil {
		return fmt.Errorf("join %s: %w", evt.RoomID, err)
	}
	log.Info().Bool("direct", member.IsDirect).Msg("Joined room")
	if member.IsDirect {
		return h.store.SetDMRoomOf(ctx, evt.Sender, evt.RoomID, now)
	}
	return nil
}

// HandleUndecryptable tells the sender once per encryption session that a
// message could not be read, so they are not left waiting.
func (h *Handlers) HandleUndecryptable(ctx context.Context, evt *event.Event) {
	content, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
	if !ok || evt.Sender == h.chat.UserID() {
		return
	}
	// Only a reporter writing to the bot is owed an answer; in group rooms
	// (the team room, where messages from before the bot joined cannot be
	// read) it would be noise.
	if kind, _, err := h.roomKind(ctx, evt); err != nil || kind != roomDirect {
		return
	}
	key := id.EventID("undecryptable:" + string(content.SessionID))
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := h.store.MarkHandled(ctx, key, h.clock.Now())
		if err != nil || !first {
			return err
		}
		md, err := h.templates.Render("undecryptable", nil)
		if err != nil {
			return err
		}
		return h.send(ctx, "room:"+evt.RoomID.String(), store.Target{Room: evt.RoomID}, md, evt.ID)
	})
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not tell the sender about an undecryptable message")
	}
	h.kick()
}

func (h *Handlers) handleMessage(ctx context.Context, evt *event.Event) error {
	msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
	if !ok {
		return nil
	}
	if msg.RelatesTo != nil && msg.RelatesTo.Type == event.RelReplace {
		return nil // an edit: the original was handled
	}
	if msg.MsgType == event.MsgNotice {
		return nil // other bots
	}
	kind, cs, err := h.roomKind(ctx, evt)
	if err != nil {
		return err
	}
	text := ""
	if msg.MsgType == event.MsgText {
		text = msg.Body
	}
	if rest, ok := h.commandText(text); ok {
		return h.teamCommand(ctx, evt, rest, cs)
	}
	switch kind {
	case roomCase:
		if h.IsTeam(evt.Sender) {
			return h.teamSpoke(ctx, evt, cs)
		}
		if evt.Sender == cs.Reporter {
			if cmd, p, ok := h.reporterCommand(text); ok {
				return h.runCommand(ctx, evt, cmd, p, cs, true)
			}
		}
	case roomDirect:
		if cmd, p, ok := h.reporterCommand(text); ok {
			open, err := h.store.OpenCaseOf(ctx, evt.Sender)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return h.runCommand(ctx, evt, cmd, p, open, true)
		}
		return h.handleDirect(ctx, evt, msg)
	case roomPublic:
		if disclosure.IsReportIntent(text) {
			return h.intake(ctx, evt, msg, false)
		}
	}
	return nil
}

// commandText returns the text after the team command prefix, if text
// starts with it (ASCII, case-insensitive, followed by a space or nothing;
// look-alike characters are not the prefix).
func (h *Handlers) commandText(text string) (string, bool) {
	text = strings.TrimSpace(text)
	prefix := h.opts().CommandPrefix
	if len(text) < len(prefix) || !strings.EqualFold(text[:len(prefix)], prefix) {
		return "", false
	}
	rest := text[len(prefix):]
	if rest != "" && !isSpace(rest[0]) {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// reporterCommand recognises a reporter's command: a single command word,
// or one with a leading "!" followed by its arguments.
func (h *Handlers) reporterCommand(text string) (*command, parsedCommand, bool) {
	text = strings.TrimSpace(text)
	bang := strings.HasPrefix(text, "!")
	text = strings.TrimPrefix(text, "!")
	words, _ := tokenize(text)
	if len(words) == 0 || (!bang && len(words) > 1) {
		return nil, parsedCommand{}, false
	}
	if _, ok := h.reporterCmds[strings.ToLower(words[0])]; !ok {
		return nil, parsedCommand{}, false
	}
	cmd, p, err := parseCommand(text, h.reporterCmds)
	if err != nil {
		return nil, parsedCommand{}, false
	}
	return cmd, p, true
}

// teamCommand runs a `!sec` command, or refuses it to anyone not on the team.
func (h *Handlers) teamCommand(ctx context.Context, evt *event.Event, text string, roomCase *store.Case) error {
	if !h.IsTeam(evt.Sender) {
		return h.once(ctx, evt, func(ctx context.Context) error {
			caseID := ""
			if roomCase != nil {
				caseID = roomCase.ID.String()
			}
			words, _ := tokenize(text)
			action := "command"
			if len(words) > 0 {
				action = "command " + truncate(strings.ToLower(words[0]), 32)
			}
			if err := h.store.Audit(ctx, store.AuditEntry{At: h.clock.Now(), Actor: evt.Sender, CaseID: caseID, Action: action, Detail: "refused: not on the security team", Allowed: false}); err != nil {
				return err
			}
			md, err := h.templates.Render("not_team", map[string]any{"Prefix": h.opts().CommandPrefix})
			if err != nil {
				return err
			}
			return h.send(ctx, "room:"+evt.RoomID.String(), store.Target{Room: evt.RoomID}, md, evt.ID)
		})
	}
	cmd, p, err := parseCommand(text, h.teamCmds)
	if err != nil {
		return h.once(ctx, evt, func(ctx context.Context) error {
			return h.send(ctx, "room:"+evt.RoomID.String(), store.Target{Room: evt.RoomID}, err.Error(), evt.ID)
		})
	}
	return h.runCommand(ctx, evt, cmd, p, roomCase, false)
}

// teamSpoke handles a team member's ordinary message in a case room: the
// first one acknowledges the report, and each restarts the update clock.
func (h *Handlers) teamSpoke(ctx context.Context, evt *event.Event, cs *store.Case) error {
	return h.once(ctx, evt, func(ctx context.Context) error {
		now := h.clock.Now()
		met, err := h.store.MeetDeadline(ctx, cs.ID, disclosure.DeadlineAcknowledge, evt.Sender, now)
		if err != nil {
			return err
		}
		if met {
			if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: evt.Sender, CaseID: cs.ID.String(), Action: "acknowledge", Detail: "first team message", Allowed: true}); err != nil {
				return err
			}
		}
		c := &cmdContext{Context: ctx, h: h, evt: evt, sender: evt.Sender, now: now, c: cs, lane: cs.ID.String()}
		return h.restartUpdateClock(c, cs, false)
	})
}

type roomKind int

const (
	roomPublic roomKind = iota
	roomDirect
	roomTeam
	roomCase
)

// roomKind says what a room is to the bot: the team room, a case room, a
// direct chat with the sender, or any other (public) room.
func (h *Handlers) roomKind(ctx context.Context, evt *event.Event) (roomKind, *store.Case, error) {
	if evt.RoomID == h.opts().TeamRoom {
		return roomTeam, nil, nil
	}
	if c, err := h.store.CaseByRoom(ctx, evt.RoomID); err == nil {
		return roomCase, c, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, nil, err
	}
	if dm, err := h.store.DMRoom(ctx, evt.Sender); err == nil && dm == evt.RoomID {
		return roomDirect, nil, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, nil, err
	}
	// A two-person room the sender made without is_direct is a DM in all but name.
	if n, err := h.chat.JoinedMemberCount(ctx, evt.RoomID); err == nil && n == 2 {
		return roomDirect, nil, nil
	}
	return roomPublic, nil, nil
}

func (h *Handlers) handleDirect(ctx context.Context, evt *event.Event, msg *event.MessageEventContent) error {
	hasAttachment := msg.MsgType != event.MsgText && msg.MsgType != event.MsgEmote
	if msg.MsgType == event.MsgText && disclosure.IsReportIntent(msg.Body) {
		return h.intake(ctx, evt, msg, true)
	}
	return h.once(ctx, evt, func(ctx context.Context) error {
		switch h.chatter.check(evt.Sender, h.clock.Now()) {
		case stayQuiet:
			return nil
		case warnOnce:
			return h.render(ctx, "room:"+evt.RoomID.String(), store.Target{Room: evt.RoomID}, "slow_down", nil, evt.ID)
		}
		open, err := h.store.OpenCaseOf(ctx, evt.Sender)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		lane := "room:" + evt.RoomID.String()
		if open != nil {
			lane = open.ID.String()
			if disclosure.LooksLikeDetails(msg.Body, hasAttachment) {
				if err := h.render(ctx, lane, store.Target{Room: evt.RoomID}, "dm_details_warning", caseData(open), evt.ID); err != nil {
					return err
				}
			}
			return h.render(ctx, lane, store.Target{Room: evt.RoomID}, "dm_existing_case", caseData(open), "")
		}
		if disclosure.LooksLikeDetails(msg.Body, hasAttachment) {
			return h.render(ctx, lane, store.Target{Room: evt.RoomID}, "dm_details_no_case", nil, evt.ID)
		}
		return h.render(ctx, lane, store.Target{Room: evt.RoomID}, "not_understood", nil, "")
	})
}

// once runs fn in a transaction that also marks evt handled; if evt was
// handled before, fn does not run.
func (h *Handlers) once(ctx context.Context, evt *event.Event, fn func(ctx context.Context) error) error {
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := h.store.MarkHandled(ctx, evt.ID, h.clock.Now())
		if err != nil {
			return err
		}
		if !first {
			zerolog.Ctx(ctx).Debug().Msg("Event already handled")
			return nil
		}
		if err := fn(ctx); err != nil {
			return err
		}
		crashpoint.Hit("handler.before_commit")
		return nil
	})
	if err == nil {
		h.kick()
	}
	return err
}

func (h *Handlers) render(ctx context.Context, lane string, to store.Target, name string, data any, replyTo id.EventID) error {
	md, err := h.templates.Render(name, data)
	if err != nil {
		return err
	}
	return h.send(ctx, lane, to, md, replyTo)
}

func (h *Handlers) send(ctx context.Context, lane string, to store.Target, markdown string, replyTo id.EventID) error {
	_, err := h.store.Enqueue(ctx, lane, store.KindSend, store.SendEffect{To: to, Markdown: markdown, ReplyTo: replyTo}, h.clock.Now())
	return err
}

// answer renders a template as the answer a reporter is waiting on: it is
// urgent, so a burst of routine messages does not hold it back. effect
// carries the threading; the target and text are filled in.
func (h *Handlers) answer(ctx context.Context, lane string, to store.Target, name string, data any, effect store.SendEffect) error {
	md, err := h.templates.Render(name, data)
	if err != nil {
		return err
	}
	effect.To, effect.Markdown = to, md
	_, err = h.store.EnqueueUrgent(ctx, lane, store.KindSend, effect, h.clock.Now())
	return err
}

func caseData(c *store.Case) map[string]any {
	return map[string]any{"CaseID": c.ID.String(), "CaseRoom": string(c.CaseRoom), "CaseRoomLink": c.CaseRoom.URI().MatrixToURL()}
}

// local renders a time in the policy's timezone.
func (h *Handlers) local(t time.Time) time.Time {
	if loc := h.timers.Policy().Calendar.Location; loc != nil {
		return t.In(loc)
	}
	return t
}
