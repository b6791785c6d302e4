package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/scheduler"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// HandleEmail handles one message of the security mailbox, once (by its
// UIDVALIDITY and UID). Machine-made mail is only audited. A message in a
// case's thread from its reporter is posted into the case room; from
// anyone else, the team is told, without its text. Any other message
// opens a case for its sender (or, from a reporter with an open case, is
// posted into it), and a new reporter gets an answer by email.
// It returns an error only when nothing was committed.
func (h *Handlers) HandleEmail(ctx context.Context, msg Message) error {
	m := msg.Mail
	if m == nil || (msg.Sender.Channel() != disclosure.ChannelEmail && m.Automatic == "") {
		return fmt.Errorf("not an email")
	}
	var opened *store.Case
	err := h.once(ctx, msg.ID, func(ctx context.Context) error {
		now := h.clock.Now()
		p := h.Policy()
		audit := func(caseID, action, detail string, allowed bool) error {
			return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: msg.Sender, CaseID: caseID, Action: action, Detail: detail, Allowed: allowed})
		}
		if m.Automatic != "" {
			return audit("", "email.ignored", m.Automatic, false)
		}
		// Every sender is limited like a chat reporter, strangers writing
		// about a case included: a flood is left in the mailbox, and the
		// team told once.
		switch h.chatter.check(msg.Sender, now) {
		case stayQuiet:
			return audit("", "email.limited", "too many messages", false)
		case warnOnce:
			if p.TeamRoom != "" {
				if err := h.enqueue(ctx, store.RoomLane(p.TeamRoom), store.Target{Room: p.TeamRoom}, templates.EmailFlood{From: msg.Sender.Address(), Mailbox: h.mailbox}, store.SendEffect{}, false); err != nil {
					return err
				}
			}
			return audit("", "email.limited", "too many messages", false)
		}
		var cs *store.Case
		if !m.Case.IsZero() {
			c, err := h.store.Case(ctx, m.Case)
			switch {
			case errors.Is(err, store.ErrNotFound), err == nil && c.Reporter.Channel() != disclosure.ChannelEmail:
				// A case ID that is none of ours, or a chat reporter's case
				// (one without encryption is told to write by email): the
				// message is a report by email of its own, which the team
				// can tell by the case ID in its subject.
			case err != nil:
				return err
			case c.Reporter != msg.Sender:
				// Someone else writing about a case opens nothing, and what
				// they wrote stays in the mailbox.
				if p.TeamRoom == "" {
					return audit(c.ID.String(), "email.stranger", "not the reporter's address", false)
				}
				note := templates.EmailStranger{CaseID: c.ID.String(), From: msg.Sender.Address(), Mailbox: h.mailbox}
				if err := h.enqueue(ctx, store.CaseLane(c.ID), store.Target{Room: p.TeamRoom}, note, store.SendEffect{}, false); err != nil {
					return err
				}
				return audit(c.ID.String(), "email.stranger", "not the reporter's address", false)
			default:
				cs = c
			}
		}
		if cs == nil {
			c, err := h.store.OpenCaseOf(ctx, msg.Sender)
			switch {
			case err == nil:
				cs = c
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		if cs != nil {
			return h.postEmail(ctx, msg, cs, true)
		}
		c, open, err := h.openCase(ctx, newCase{channel: disclosure.ChannelEmail, reporter: msg.Sender, sourceRoom: "email", at: now, audit: "email", unverified: !m.SenderVerified})
		if err != nil {
			return err
		}
		opened = c
		if err := h.postEmail(ctx, msg, c, false); err != nil {
			return err
		}
		ack := templates.EmailAck{CaseID: c.ID.String(), AcknowledgeBy: open.AcknowledgeBy, RespondBy: open.RespondBy, UpdateInterval: p.SLA.UpdateInterval.String(), GitHub: p.GitHub}
		if err := scheduler.MailReporter(ctx, h.store, h.templates, c.ID, msg.Sender, ack, now, true); err != nil {
			return err
		}
		return nil
	})
	if err == nil && opened != nil {
		zerolog.Ctx(ctx).Info().Stringer("case_id", opened.ID).Str("channel", "email").Msg("Opened case")
	}
	return err
}

// postEmail records the reporter's message in the case's thread and the
// effect that posts it into the case room, fetched from the mailbox then.
func (h *Handlers) postEmail(ctx context.Context, msg Message, cs *store.Case, reply bool) error {
	m, now := msg.Mail, h.clock.Now()
	if m.MessageID != "" {
		if err := h.store.SetMailThread(ctx, cs.ID, m.MessageID, now); err != nil {
			return err
		}
	}
	if _, err := h.store.Enqueue(ctx, store.CaseLane(cs.ID), store.KindMailPost, store.MailPostEffect{
		CaseID: cs.ID.String(), UIDValidity: m.UIDValidity, UID: m.UID, MessageID: m.MessageID, Reply: reply, Unverified: !m.SenderVerified,
	}, now); err != nil {
		return err
	}
	if !reply {
		return nil
	}
	// A reporter's email meets none of the team's clocks; one from an
	// unverified sender is not even taken as the reporter's (audited so).
	detail := ""
	if !m.SenderVerified {
		detail = "unverified sender: " + m.SenderCheck
	}
	return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: msg.Sender, CaseID: cs.ID.String(), Action: "email.reply", Detail: detail, Allowed: true})
}
