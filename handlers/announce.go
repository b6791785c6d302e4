package handlers

import (
	"context"
	"errors"
	"strings"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// AnnounceEffect is the payload of outbox.KindAnnounce (post a published
// advisory's announcement wherever it has not been posted yet) and of
// outbox.KindPublished (GitHub's confirmation, to decide on).
type AnnounceEffect struct {
	CaseID  string `json:"case_id"`
	ReplyIn string `json:"reply_in,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
	// Force is the coordinator's override of an embargo: of the announce
	// command, or (outbox.KindPublished) of the publish GitHub confirmed.
	Force *disclosure.Force `json:"force,omitempty"`
}

// Announce is the executor of outbox.KindAnnounce: it posts a published
// advisory's announcement in every announcement room where it is not yet
// posted (each room its own lane, so one failing room holds up no other),
// and tells the team room where it went.
func (h *Handlers) Announce(ctx context.Context, e store.Effect) (any, error) {
	effect, caseID, err := decodeCaseEffect(e)
	if err != nil {
		return nil, err
	}
	var refused error
	err = h.store.Tx(ctx, func(ctx context.Context) error {
		refused = nil // a retried transaction starts again
		c, err := h.store.Case(ctx, caseID)
		if err != nil {
			return err
		}
		// Decided again now, in the transaction that queues the posts: the
		// case may have moved on since the announcement was queued.
		if err := h.redecide(ctx, e, c, disclosure.Queued{Kind: disclosure.QueuedAnnounce, Force: effect.Force}); err != nil {
			if errors.As(err, new(*outbox.RefusedError)) {
				refused = err
				return nil // the refusal is recorded: commit it
			}
			return err
		}
		now := h.clock.Now()
		p := h.Policy()
		announcement := templates.Announcement{
			GHSAID: c.GHSAID, URL: c.GHSAURL, CVE: c.CVEID, Summary: c.PublicSummary, Severity: c.Severity,
			Affected: c.Affected, Patched: c.Patched, Credit: creditName(c.Credit), Repository: repositoryOf(c, p),
		}
		var posted, queued []string
		for _, room := range p.AnnounceRooms {
			lane := store.AnnounceLane(caseID, room)
			done, err := h.store.EffectDoneInLane(ctx, lane)
			if err != nil {
				return err
			}
			pending, err := h.store.EffectPendingInLane(ctx, lane)
			if err != nil {
				return err
			}
			if done {
				posted = append(posted, h.showRoom(room))
				continue
			}
			if pending {
				continue
			}
			if err := outbox.Say(ctx, h.store, h.templates, lane, outbox.SendEffect{To: outbox.Target{Room: room}, IfRefused: p.TeamRoom}, announcement, now, false); err != nil {
				return err
			}
			queued = append(queued, h.showRoom(room))
		}
		if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: effect.CaseID, Action: "announce", Detail: strings.Join(queued, ", "), Allowed: true}); err != nil {
			return err
		}
		if p.TeamRoom == "" {
			return nil
		}
		return h.enqueue(ctx, store.CaseLane(caseID), outbox.Target{Room: p.TeamRoom}, templates.Announced{CaseID: caseID.String(), Queued: queued, Posted: posted}, outbox.SendEffect{}, false)
	})
	if err == nil {
		err = refused
	}
	return nil, err
}

func creditName(credit string) string {
	if credit == "none" {
		return ""
	}
	return credit
}

// Published is the executor of outbox.KindPublished: GitHub confirmed that a
// case's advisory is public, and the domain decides what follows.
func (h *Handlers) Published(ctx context.Context, e store.Effect) (any, error) {
	effect, caseID, err := decodeCaseEffect(e)
	if err != nil {
		return nil, err
	}
	err = h.store.Tx(ctx, func(ctx context.Context) error {
		cs, err := h.store.Case(ctx, caseID)
		if err != nil {
			return err
		}
		c, err := h.domainCase(ctx, cs)
		if err != nil {
			return err
		}
		req := disclosure.Request{By: "secbot", Now: h.clock.Now(), Policy: h.Policy()}
		// The confirmation answers the publish command where it was typed.
		msg := chat.Message{ID: effect.ReplyTo, Room: effect.ReplyIn, Sender: "secbot"}
		return h.apply(ctx, msg, cs, req, c.Published(req, effect.Force))
	})
	h.kick()
	return nil, err
}

// decodeCaseEffect reads an effect about a case (an announcement, GitHub's
// confirmation) and its case ID.
func decodeCaseEffect(e store.Effect) (AnnounceEffect, disclosure.CaseID, error) {
	var effect AnnounceEffect
	if err := e.Decode(&effect); err != nil {
		return effect, disclosure.CaseID{}, err
	}
	caseID, err := disclosure.ParseCaseID(effect.CaseID)
	return effect, caseID, err
}

// repositoryOf is the repository of the case's advisory, named in its
// announcement.
func repositoryOf(c *store.Case, p *disclosure.Policy) string {
	if c.GHSARepo != "" {
		return c.GHSARepo
	}
	return p.Repository
}

// redecide asks the domain, right before a queued effect is made, whether
// the case as it is now still allows it (outbox.Redecide).
func (h *Handlers) redecide(ctx context.Context, e store.Effect, cs *store.Case, q disclosure.Queued) error {
	return outbox.Redecide(ctx, h.store, h.templates, e, cs, q, h.Policy(), h.clock.Now())
}

// GateInvite wraps the executor of outbox.KindInvite: an invitation to a case
// room is decided again before it is sent, so that someone who left the
// team or the need-to-know list meanwhile, or a closed case, gets none.
func (h *Handlers) GateInvite(next outbox.Executor) outbox.Executor {
	return func(ctx context.Context, e store.Effect) (any, error) {
		var p outbox.InviteEffect
		if err := e.Decode(&p); err != nil || p.To.CaseRoomOf == "" {
			return next(ctx, e) // not a case room: the executor's to judge
		}
		caseID, err := disclosure.ParseCaseID(p.To.CaseRoomOf)
		if err != nil {
			return next(ctx, e)
		}
		cs, err := h.store.Case(ctx, caseID)
		if err != nil {
			return nil, err
		}
		if err := h.redecide(ctx, e, cs, disclosure.Queued{Kind: disclosure.QueuedInvite, Who: p.User}); err != nil {
			return nil, err
		}
		return next(ctx, e)
	}
}

// CaseRoomUnusable is told that a case's room could not be made for good
// (why: the platform's reason, as the team reads it): the team room and
// the reporter hear of it once, with where the reporter is answered
// instead. A message for the case room still reaches a chat reporter in
// their direct chat (see say), so nothing the team writes is lost.
func (h *Handlers) CaseRoomUnusable(ctx context.Context, e store.Effect, why string) error {
	var p outbox.CreateCaseRoomEffect
	if err := e.Decode(&p); err != nil {
		return err
	}
	caseID, err := disclosure.ParseCaseID(p.CaseID)
	if err != nil {
		return err
	}
	err = h.store.Tx(ctx, func(ctx context.Context) error {
		return h.markRoomUnusable(ctx, caseID, why)
	})
	if err == nil {
		h.kick()
	}
	return err
}

// markRoomUnusable records, in the caller's transaction, that a case's
// room cannot be used, the first time only: audited, the team room told,
// and a chat reporter told in their DM where to go instead. Later
// messages for the case room go to the reporter's DM.
func (h *Handlers) markRoomUnusable(ctx context.Context, caseID disclosure.CaseID, why string) error {
	first, err := h.store.MarkRoomUnusable(ctx, caseID, h.clock.Now())
	if err != nil || !first {
		return err
	}
	cs, err := h.store.Case(ctx, caseID)
	if err != nil {
		return err
	}
	now, pol := h.clock.Now(), h.Policy()
	if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: h.selfAtHome(), CaseID: caseID.String(), Action: "case-room.unusable", Detail: templates.Truncate(why, 120), Allowed: false}); err != nil {
		return err
	}
	if pol.TeamRoom != "" {
		if err := h.enqueue(ctx, store.CaseLane(caseID), outbox.Target{Room: pol.TeamRoom}, templates.CaseRoomUnusable{CaseID: caseID.String(), Why: why}, outbox.SendEffect{}, false); err != nil {
			return err
		}
	}
	if cs.Reporter.Channel() != disclosure.ChannelChat {
		return nil
	}
	lane := store.CaseLane(caseID)
	if _, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindOpenDM, outbox.OpenDMEffect{User: cs.Reporter, CaseID: caseID.String()}, now); err != nil {
		return err
	}
	return h.enqueue(ctx, lane, outbox.Target{DMWith: cs.Reporter}, templates.NoEncryption{CaseID: caseID.String(), Address: pol.Email, GitHub: pol.GitHub, Unusable: why}, outbox.SendEffect{}, false)
}
