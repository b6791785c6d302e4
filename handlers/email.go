package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// mailGate admits at most ChatterBurst emails per ChatterWindow from one
// sender; the rest wait (they stay unhandled in the mailbox). It counts
// only what it admits, so a delayed email that is handed over again and
// again does not push its own turn back. It is in memory: after a restart
// everyone starts afresh.
type mailGate struct {
	mu      sync.Mutex
	senders map[disclosure.Person]*mailWindow
}

type mailWindow struct {
	start, noted time.Time
	count        int
	refused      bool
}

// floodNoteEvery bounds the team's notes about one sender's flood.
const floodNoteEvery = time.Hour

// admit reports whether an email from sender is handled now; if not, until
// when it waits, whether it is the window's first refusal (audited) and
// whether the team is to be told (once an hour per sender).
func (g *mailGate) admit(sender disclosure.Person, now time.Time) (ok bool, until time.Time, first, note bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.senders == nil || len(g.senders) > 10000 {
		g.senders = map[disclosure.Person]*mailWindow{} // forget everyone rather than grow without bound
	}
	w := g.senders[sender]
	if w == nil {
		w = &mailWindow{start: now}
		g.senders[sender] = w
	}
	if now.Sub(w.start) >= ChatterWindow {
		w.start, w.count, w.refused = now, 0, false
	}
	if w.count < ChatterBurst {
		w.count++
		return true, time.Time{}, false, false
	}
	first = !w.refused
	w.refused = true
	if first && (w.noted.IsZero() || now.Sub(w.noted) >= floodNoteEvery) {
		w.noted, note = now, true
	}
	return false, w.start.Add(ChatterWindow), first, note
}

// HandleEmail handles one message of the security mailbox, once (by its
// UIDVALIDITY and UID). secbot's own mail and mail without a sender are
// only audited. A delivery report of secbot's mail about a case is told
// to the case room (without its text). A message in a case's thread from
// its reporter is posted into the case room; from anyone else, the team is
// told, without its text. Any other message opens a case for its sender
// (or, from a reporter with an open case, is posted into it), and a new
// reporter who is a person gets an answer by email; mail a program sent
// opens its case all the same, marked machine-sent, and is not answered.
//
// A sender's flood is delayed, never dropped: past the limit it returns a
// *chat.LaterError and commits nothing, and the channel hands it over again.
// Otherwise it returns an error only when nothing was committed.
func (h *Handlers) HandleEmail(ctx context.Context, msg chat.Message) error {
	m := msg.Mail
	if m == nil || (msg.Sender.Channel() != disclosure.ChannelEmail && m.Automatic == "") {
		return fmt.Errorf("not an email")
	}
	kind := m.Effective()
	if kind != chat.MailIgnored {
		if err := h.emailGate(ctx, msg); err != nil {
			return err
		}
	}
	var opened *store.Case
	err := h.once(ctx, msg.ID, func(ctx context.Context) error {
		now := h.clock.Now()
		p := h.Policy()
		audit := func(caseID, action, detail string, allowed bool) error {
			return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: msg.Sender, CaseID: caseID, Action: action, Detail: detail, Allowed: allowed})
		}
		switch kind {
		case chat.MailIgnored:
			return audit("", "email.ignored", m.Automatic, false)
		case chat.MailBounce:
			return h.emailBounce(ctx, msg, audit)
		case chat.MailAutoReply:
			if m.Case.IsZero() {
				// An answer to nothing of a case's: nobody is waiting on it.
				return audit("", "email.ignored", m.Automatic, false)
			}
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
				if err := h.enqueue(ctx, store.CaseLane(c.ID), outbox.Target{Room: p.TeamRoom}, note, outbox.SendEffect{}, false); err != nil {
					return err
				}
				return audit(c.ID.String(), "email.stranger", "not the reporter's address", false)
			default:
				cs = c
			}
		}
		if cs == nil && kind == chat.MailAutoReply {
			// An auto-reply opens nothing (RFC 3834: answering one is how
			// mail loops start).
			return audit("", "email.ignored", m.Automatic, false)
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
		machine := ""
		if kind == chat.MailMachine {
			machine = m.Automatic
		}
		c, open, err := h.openCase(ctx, newCase{channel: disclosure.ChannelEmail, reporter: msg.Sender, sourceRoom: "email", at: now, audit: "email", machine: machine, unverified: !m.SenderVerified})
		if err != nil {
			return err
		}
		opened = c
		if err := h.postEmail(ctx, msg, c, false); err != nil {
			return err
		}
		if kind == chat.MailMachine {
			// No automatic answer to a program: the team answers it, if
			// anyone, with `reply`.
			return audit(c.ID.String(), "email.machine", m.Automatic, true)
		}
		ack := templates.EmailAck{CaseID: c.ID.String(), AcknowledgeBy: open.AcknowledgeBy, RespondBy: open.RespondBy, UpdateInterval: p.SLA.UpdateInterval.String(), GitHub: p.GitHub}
		if err := outbox.MailReporter(ctx, h.store, h.templates, c.ID, msg.Sender, ack, now, true); err != nil {
			return err
		}
		return nil
	})
	if err == nil && opened != nil {
		zerolog.Ctx(ctx).Info().Stringer("case_id", opened.ID).Str("channel", "email").Msg("Opened case")
	}
	return err
}

// emailGate returns a *chat.LaterError for an email its sender's limit delays,
// after telling the team (once an hour per sender) and auditing (once a
// window). An email handled before (the mailbox was not marked) passes.
func (h *Handlers) emailGate(ctx context.Context, msg chat.Message) error {
	handled, err := h.store.WasHandled(ctx, msg.ID)
	if err != nil || handled {
		return err
	}
	now := h.clock.Now()
	ok, until, first, note := h.mailGate.admit(msg.Sender, now)
	if ok {
		return nil
	}
	if first {
		err := h.store.Tx(ctx, func(ctx context.Context) error {
			if p := h.Policy(); note && p.TeamRoom != "" {
				d := templates.EmailFlood{From: msg.Sender.Address(), Mailbox: h.mailbox, Burst: ChatterBurst}
				if err := h.enqueue(ctx, store.RoomLane(p.TeamRoom), outbox.Target{Room: p.TeamRoom}, d, outbox.SendEffect{}, false); err != nil {
					return err
				}
			}
			return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: msg.Sender, Action: "email.limited", Detail: "too many messages: delayed", Allowed: false})
		})
		if err != nil {
			return err
		}
		if note {
			h.kick()
		}
	}
	return &chat.LaterError{Until: until}
}

// emailBounce tells a case room that a delivery report returned secbot's
// mail about the case; a report of mail that is not ours opens nothing.
func (h *Handlers) emailBounce(ctx context.Context, msg chat.Message, audit func(caseID, action, detail string, allowed bool) error) error {
	m := msg.Mail
	if m.BounceOf.IsZero() {
		return audit("", "email.ignored", m.Automatic+": not of our mail", false)
	}
	c, err := h.store.Case(ctx, m.BounceOf)
	if errors.Is(err, store.ErrNotFound) {
		return audit("", "email.ignored", m.Automatic+": of no case", false)
	}
	if err != nil {
		return err
	}
	note := templates.EmailBounced{CaseID: c.ID.String(), From: msg.Sender.Address(), Mailbox: h.mailbox}
	if err := h.enqueue(ctx, store.CaseLane(c.ID), outbox.Target{CaseRoomOf: c.ID.String()}, note, outbox.SendEffect{}, false); err != nil {
		return err
	}
	return audit(c.ID.String(), "email.bounce", m.Automatic, true)
}

// postEmail records the reporter's message in the case's thread and the
// effect that posts it into the case room, fetched from the mailbox then.
func (h *Handlers) postEmail(ctx context.Context, msg chat.Message, cs *store.Case, reply bool) error {
	m, now := msg.Mail, h.clock.Now()
	if m.MessageID != "" {
		if err := h.store.SetMailThread(ctx, cs.ID, m.MessageID, now); err != nil {
			return err
		}
	}
	if _, err := outbox.Enqueue(ctx, h.store, store.CaseLane(cs.ID), outbox.KindMailPost, outbox.MailPostEffect{
		CaseID: cs.ID.String(), UIDValidity: m.UIDValidity, UID: m.UID, MessageID: m.MessageID, Reply: reply, Unverified: !m.SenderVerified, Machine: m.Machine(),
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
