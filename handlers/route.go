package handlers

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// HandleUndecryptable tells the sender once per encryption session that a
// message could not be read, so they are not left waiting.
func (h *Handlers) HandleUndecryptable(ctx context.Context, msg chat.Message, session string) {
	if h.isSelf(msg.Sender) {
		return
	}
	// Only a reporter writing to the bot is owed an answer; in group rooms
	// (the team room, where messages from before the bot joined cannot be
	// read) it would be noise.
	if p, err := h.place(ctx, msg); err != nil || p.where.Kind != disclosure.PrivateChat {
		return
	}
	key := "undecryptable:" + session
	if told, err := h.store.WasHandled(ctx, key); err != nil || told {
		return // told about this session already: no answer to count
	}
	if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
		return
	}
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := h.store.MarkHandledBriefly(ctx, key, h.clock.Now())
		if err != nil || !first {
			return err
		}
		return h.enqueue(ctx, store.RoomLane(msg.Room), outbox.Target{Room: msg.Room}, templates.Undecryptable{}, outbox.SendEffect{ReplyTo: msg.ID}, false)
	})
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not tell the sender about an undecryptable message")
	}
	h.kick()
}

// HandleMessage handles one chat message. It returns an error only when
// nothing was committed, so the message can be handled again.
func (h *Handlers) HandleMessage(ctx context.Context, msg chat.Message) error {
	if h.isSelf(msg.Sender) {
		return nil
	}
	p, err := h.place(ctx, msg)
	if err != nil {
		return err
	}
	if p.crowded {
		return h.leaveCrowded(ctx, msg, p.members)
	}
	where, cs := p.where, p.cs
	if msg.Plaintext {
		caseRef := ""
		if cs != nil {
			caseRef = cs.ID.String()
		}
		return h.ignorePlaintext(ctx, msg, caseRef)
	}
	trust, err := h.deviceTrust(ctx, msg)
	if err != nil {
		return err
	}
	if rest, ok := h.commandText(msg.Room, msg.Text); ok {
		if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
			return err
		}
		return h.teamCommand(ctx, msg, trust, where, rest)
	}
	switch where.Kind {
	case disclosure.CaseRoom:
		if h.IsTeam(msg.Sender) {
			return h.teamSpoke(ctx, msg, trust, cs)
		}
		if msg.Sender == cs.Reporter {
			if cmd, p, ok := h.reporterCommand(msg.Text); ok {
				if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
					return err
				}
				return h.runReporterCommand(ctx, msg, trust, where, cmd, p, cs)
			}
		}
	case disclosure.PrivateChat:
		if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
			return err
		}
		if cmd, p, ok := h.reporterCommand(msg.Text); ok {
			open, err := h.store.OpenCaseOf(ctx, msg.Sender)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return h.runReporterCommand(ctx, msg, trust, where, cmd, p, open)
		}
		return h.handleDirect(ctx, msg)
	case disclosure.Elsewhere:
		if disclosure.IsReportIntent(msg.Text) {
			if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
				return err
			}
			return h.intake(ctx, msg, false)
		}
	}
	return nil
}

// teamSpoke handles a team member's ordinary message in a case room: the
// domain decides what it meets or restarts (nothing, for a finished case).
func (h *Handlers) teamSpoke(ctx context.Context, msg chat.Message, trust disclosure.DeviceTrust, cs *store.Case) error {
	return h.once(ctx, msg.ID, func(ctx context.Context) error {
		c, err := h.domainCase(ctx, cs)
		if err != nil {
			return err
		}
		req := h.request(msg, trust, disclosure.Place{Kind: disclosure.CaseRoom, Case: cs.ID})
		return h.apply(ctx, msg, cs, req, c.TeamSpoke(req))
	})
}

// placed is what a room is to the policy, and the case it belongs to.
type placed struct {
	where disclosure.Place
	cs    *store.Case
	// crowded marks the sender's stored direct chat once it has more than
	// two members: is_direct is only the inviter's word, and what the bot
	// says in a direct chat is for one person.
	crowded bool
	members int
}

// place says what a room is to the policy: the team room, a case room, a
// private chat with the sender, or anywhere else.
func (h *Handlers) place(ctx context.Context, msg chat.Message) (placed, error) {
	if team := h.Policy().TeamRoom; team != "" && msg.Room == team {
		return placed{where: disclosure.Place{Kind: disclosure.TeamRoom}}, nil
	}
	if c, err := h.store.CaseByRoom(ctx, msg.Room); err == nil {
		return placed{where: disclosure.Place{Kind: disclosure.CaseRoom, Case: c.ID}, cs: c}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return placed{}, err
	}
	dm, err := h.store.DMRoom(ctx, msg.Sender)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return placed{}, err
	}
	n, countErr := h.joinedMemberCount(ctx, msg.Room)
	switch {
	case dm == msg.Room && countErr == nil && disclosure.KeepDirectChat(n) != nil:
		return placed{where: disclosure.Place{Kind: disclosure.Elsewhere}, crowded: true, members: n}, nil
	case dm == msg.Room:
		return placed{where: disclosure.Place{Kind: disclosure.PrivateChat}}, nil
	case countErr == nil && n == 2 && !h.IsTeam(msg.Sender):
		// A two-person room a reporter made without is_direct is a DM in
		// all but name. Not for team commands: a room with two members now
		// may have more (and read its history) later; only the member's own
		// direct chat shows every case.
		return placed{where: disclosure.Place{Kind: disclosure.PrivateChat}}, nil
	}
	return placed{where: disclosure.Place{Kind: disclosure.Elsewhere}}, nil
}

func (h *Handlers) handleDirect(ctx context.Context, msg chat.Message) error {
	if msg.Text != "" && disclosure.IsReportIntent(msg.Text) {
		return h.intake(ctx, msg, true)
	}
	// Chatter changes nothing but its answer: its record is pruned.
	return h.onceBriefly(ctx, msg.ID, func(ctx context.Context) error {
		here := outbox.Target{Room: msg.Room}
		lane := store.RoomLane(msg.Room)
		open, err := h.store.OpenCaseOf(ctx, msg.Sender)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		details := disclosure.LooksLikeDetails(msg.Text, msg.Attachment)
		if open != nil {
			lane = store.CaseLane(open.ID)
			if details {
				if err := h.enqueue(ctx, lane, here, templates.DMDetailsWarning(h.caseRoomData(open)), outbox.SendEffect{ReplyTo: msg.ID}, false); err != nil {
					return err
				}
			}
			return h.enqueue(ctx, lane, here, templates.DMExistingCase(h.caseRoomData(open)), outbox.SendEffect{}, false)
		}
		if details {
			return h.enqueue(ctx, lane, here, templates.DMDetailsNoCase{}, outbox.SendEffect{ReplyTo: msg.ID}, false)
		}
		return h.enqueue(ctx, lane, here, templates.NotUnderstood{}, outbox.SendEffect{}, false)
	})
}
