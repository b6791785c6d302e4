package handlers

import (
	"context"
	"fmt"
	"slices"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// OwnDeviceSeen is a channel's news of a device of the bot's own account
// that the bot's identity did not sign (it gets no room keys): audited and
// told once to the team room, since someone logged in as the bot.
func (h *Handlers) OwnDeviceSeen(ctx context.Context, self disclosure.Person, device, name string) error {
	p, now := h.Policy(), h.clock.Now()
	told := false
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		told = false // a retried transaction starts again
		known, err := h.store.KnownDevices(ctx, self)
		if err != nil || slices.Contains(known, device) {
			return err
		}
		if err := h.store.KnowDevice(ctx, self, device, now); err != nil {
			return err
		}
		told = true
		if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: self, Action: "bot.device", Detail: "unsigned device on the bot's account, given no room keys: " + templates.Truncate(device, 40), Allowed: false}); err != nil {
			return err
		}
		if p.TeamRoom == "" {
			return nil
		}
		return h.enqueue(ctx, store.RoomLane(p.TeamRoom), outbox.Target{Room: p.TeamRoom},
			templates.BotNewDevice{Device: templates.Truncate(device, 40), Name: templates.Truncate(name, 60)}, outbox.SendEffect{Mentions: []disclosure.Person{p.Coordinator}}, false)
	})
	if err == nil && told {
		zerolog.Ctx(ctx).Warn().Str("device_id", device).Msg("Told the team about an unsigned device on the bot's account")
		h.kick()
	}
	return err
}

// EncryptionDowngraded is a channel's news that a room the bot knows to be
// encrypted lost its encryption in the state the homeserver sent (by is
// who sent the change, if known). The bot keeps encrypting. For the team
// room, a case's rooms and the bot's own direct chats the team room is
// told once per room and the audit log keeps it; a room of someone else's
// (a stranger's chat with no case) is only logged, so strangers cannot
// fill the team room by turning their own rooms' encryption off.
func (h *Handlers) EncryptionDowngraded(ctx context.Context, room, algorithm string, by disclosure.Person) error {
	p, now := h.Policy(), h.clock.Now()
	caseRef, dm, known, err := h.store.RoomUse(ctx, room)
	if err != nil {
		return err
	}
	team := room == p.TeamRoom && room != ""
	log := zerolog.Ctx(ctx).With().Str("room_id", room).Str("case_id", caseRef).Logger()
	if !team && !known {
		log.Warn().Msg("A stranger's room lost its encryption; secbot keeps encrypting there")
		return nil
	}
	told := false
	err = h.store.Tx(ctx, func(ctx context.Context) error {
		told = false // a retried transaction starts again
		first, err := h.store.TellDowngrade(ctx, room, now)
		if err != nil || !first {
			return err
		}
		told = true
		actor := by
		if actor == "" {
			actor = h.self(room)
		}
		detail := fmt.Sprintf("m.room.encryption of %s says %q; secbot keeps encrypting there", room, templates.Truncate(algorithm, 40))
		if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: actor, CaseID: caseRef, Action: "encryption.downgrade", Detail: detail, Allowed: false}); err != nil {
			return err
		}
		if p.TeamRoom == "" {
			return nil
		}
		return h.enqueue(ctx, store.RoomLane(p.TeamRoom), outbox.Target{Room: p.TeamRoom},
			templates.EncryptionDowngraded{Room: disclosure.Show(room), Algorithm: templates.Truncate(algorithm, 40), Sender: by.String(), CaseID: caseRef, DM: dm, Team: team},
			outbox.SendEffect{Mentions: []disclosure.Person{p.Coordinator}}, false)
	})
	if err == nil && told {
		log.Error().Msg("Told the team that a room lost its encryption")
		h.kick()
	}
	return err
}
