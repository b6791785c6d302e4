package handlers

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// HandleInvite joins the rooms the domain accepts invitations to (direct
// chats from anyone, the team room, other rooms from the team) and leaves a
// "direct chat" that has more than two members at once.
func (h *Handlers) HandleInvite(ctx context.Context, inv chat.Invite) error {
	log := zerolog.Ctx(ctx)
	now := h.clock.Now()
	if leave := h.Policy().AcceptInvite(inv.Sender, inv.Direct, inv.Room == h.Policy().TeamRoom); leave != nil {
		log.Info().Msg("Declining an invite to a group room from outside the team")
		if err := h.leaveRoom(ctx, inv.Room, leave.Reason); err != nil {
			return fmt.Errorf("decline invite: %w", err)
		}
		return h.auditRefusal(ctx, store.AuditEntry{At: now, Actor: inv.Sender, Action: leave.Action, Detail: leave.Detail, Allowed: false})
	}
	if err := h.joinRoom(ctx, inv.Room); err != nil {
		return fmt.Errorf("join %s: %w", inv.Room, err)
	}
	log.Info().Bool("direct", inv.Direct).Msg("Joined room")
	if inv.Direct {
		n, err := h.joinedMemberCount(ctx, inv.Room)
		if leave := disclosure.KeepDirectChat(n); err == nil && leave != nil {
			log.Warn().Int("members", n).Msg("Leaving a direct chat with more than two members")
			if err := h.leaveRoom(ctx, inv.Room, leave.Reason); err != nil {
				return fmt.Errorf("leave %s: %w", inv.Room, err)
			}
			// An earlier look (the same invite seen again) may have
			// counted two and kept the room as their direct chat.
			if err := h.store.ForgetDMRoom(ctx, inv.Sender, inv.Room); err != nil {
				return err
			}
			return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: inv.Sender, Action: leave.Action, Detail: leave.Detail, Allowed: false})
		}
		return h.store.SetDMRoomOf(ctx, inv.Sender, inv.Room, now)
	}
	return nil
}

// leaveCrowded leaves a "direct chat" with more than two members, forgets
// it as one, and records why; nothing said there is handled.
func (h *Handlers) leaveCrowded(ctx context.Context, msg chat.Message, members int) error {
	zerolog.Ctx(ctx).Warn().Msg("Leaving a direct chat with more than two members")
	leave := disclosure.KeepDirectChat(members)
	if leave == nil {
		return fmt.Errorf("a direct chat with %d members is not crowded", members)
	}
	return h.once(ctx, msg.ID, func(ctx context.Context) error {
		if err := h.store.ForgetDMRoom(ctx, msg.Sender, msg.Room); err != nil {
			return err
		}
		if err := h.store.Audit(ctx, store.AuditEntry{At: h.clock.Now(), Actor: msg.Sender, Action: leave.Action, Detail: leave.Detail, Allowed: false}); err != nil {
			return err
		}
		return h.leaveRoom(ctx, msg.Room, leave.Reason)
	})
}
