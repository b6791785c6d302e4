package handlers

import (
	"context"
	"strings"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/scheduler"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Announce is the executor of KindAnnounce: it posts a published
// advisory's announcement in every announcement room where it is not yet
// posted (each room its own lane, so one failing room holds up no other),
// and tells the team room where it went.
func (h *Handlers) Announce(ctx context.Context, e store.Effect) (any, error) {
	effect, caseID, err := decodeCaseEffect(e)
	if err != nil {
		return nil, err
	}
	return nil, h.store.Tx(ctx, func(ctx context.Context) error {
		c, err := h.store.Case(ctx, caseID)
		if err != nil {
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
				posted = append(posted, room)
				continue
			}
			if pending {
				continue
			}
			if err := scheduler.Say(ctx, h.store, h.templates, lane, store.SendEffect{To: store.Target{Room: room}, IfRefused: p.TeamRoom}, announcement, now, false); err != nil {
				return err
			}
			queued = append(queued, room)
		}
		if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: effect.CaseID, Action: "announce", Detail: strings.Join(queued, ", "), Allowed: true}); err != nil {
			return err
		}
		if p.TeamRoom == "" {
			return nil
		}
		return h.enqueue(ctx, store.CaseLane(caseID), store.Target{Room: p.TeamRoom}, templates.Announced{CaseID: caseID.String(), Queued: queued, Posted: posted}, store.SendEffect{}, false)
	})
}

func creditName(credit string) string {
	if credit == "none" {
		return ""
	}
	return credit
}

// Published is the executor of KindPublished: GitHub confirmed that a
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
		msg := Message{ID: effect.ReplyTo, Room: effect.ReplyIn, Sender: "secbot"}
		return h.apply(ctx, msg, cs, req, c.Published(req))
	})
	h.kick()
	return nil, err
}

// decodeCaseEffect reads an effect about a case (an announcement, GitHub's
// confirmation) and its case ID.
func decodeCaseEffect(e store.Effect) (store.AnnounceEffect, disclosure.CaseID, error) {
	var effect store.AnnounceEffect
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
