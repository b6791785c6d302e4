package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// intake opens a case for a request to report a security issue, made in a
// direct chat (direct) or a public room. Nothing of the message's text is
// kept: only that a request was made, by whom and where.
func (h *Handlers) intake(ctx context.Context, msg Message, direct bool) error {
	looksLikeDetails := disclosure.LooksLikeDetails(msg.Text, false)
	// A reporter without an encryption device cannot read the case room:
	// they are told where their private area is instead. Asked before the
	// transaction; when the homeserver cannot say, the usual answer goes.
	encrypted, err := h.chat.HasEncryption(ctx, msg.Sender)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not look up the reporter's encryption devices")
		encrypted = true
	}
	var opened *store.Case
	err = h.once(ctx, msg.ID, func(ctx context.Context) error {
		now := h.clock.Now()
		if existing, err := h.store.OpenCaseOf(ctx, msg.Sender); err == nil {
			// Asking again and again gets one case and, past a few, one
			// polite limit message.
			switch h.chatter.check(msg.Sender, now) {
			case stayQuiet:
				return nil
			case warnOnce:
				return h.enqueue(ctx, store.CaseLane(existing.ID), store.Target{Room: msg.Room}, templates.SlowDown{}, store.SendEffect{ReplyTo: msg.ID}, false)
			}
			return h.pointToExisting(ctx, msg, existing, direct, looksLikeDetails)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var dmRoom string
		if direct {
			dmRoom = msg.Room
		}
		c, _, err := h.openCase(ctx, msg.Sender, msg.Room, dmRoom)
		if err != nil {
			return err
		}
		opened = c
		lane := store.CaseLane(c.ID)
		replyLane := store.ReplyLane(c.ID)
		p := h.Policy()
		noEncryption := templates.NoEncryption{CaseID: c.ID.String(), Address: p.Email, GitHub: p.GitHub}
		if direct {
			dm := store.Target{Room: msg.Room}
			var ack templates.Data = templates.DMAck(caseRoomData(c))
			if !encrypted {
				ack = noEncryption
			}
			if err := h.enqueue(ctx, replyLane, dm, ack, store.SendEffect{ReplyTo: msg.ID}, true); err != nil {
				return err
			}
			if looksLikeDetails {
				if err := h.enqueue(ctx, replyLane, dm, templates.DMDetailsWarning(caseRoomData(c)), store.SendEffect{}, true); err != nil {
					return err
				}
			}
		} else {
			// Nothing of the case happens in public: a pointer in a thread,
			// then everything else in a direct chat the bot opens itself.
			if err := h.enqueue(ctx, replyLane, store.Target{Room: msg.Room}, templates.PublicThread{CaseID: lane}, store.SendEffect{ThreadRoot: msg.ID}, true); err != nil {
				return err
			}
			if _, err := h.store.EnqueueUrgent(ctx, replyLane, store.KindOpenDM, store.OpenDMEffect{User: msg.Sender, CaseID: lane}, now); err != nil {
				return err
			}
			var ack templates.Data = templates.DMFromPublic{CaseID: lane}
			if !encrypted {
				ack = noEncryption
			}
			if err := h.enqueue(ctx, replyLane, store.Target{DMWith: msg.Sender}, ack, store.SendEffect{}, true); err != nil {
				return err
			}
		}
		return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: msg.Sender, CaseID: lane, Action: "case.open", Detail: map[bool]string{true: "direct message", false: "public room"}[direct], Allowed: true})
	})
	if err == nil && opened != nil {
		zerolog.Ctx(ctx).Info().Stringer("case_id", opened.ID).Bool("direct", direct).Msg("Opened case")
	}
	return err
}

// pointToExisting answers a reporter who asks again while a case is open.
func (h *Handlers) pointToExisting(ctx context.Context, msg Message, c *store.Case, direct, looksLikeDetails bool) error {
	lane := store.CaseLane(c.ID)
	if !direct {
		if err := h.enqueue(ctx, lane, store.Target{Room: msg.Room}, templates.PublicThread{CaseID: c.ID.String()}, store.SendEffect{ThreadRoot: msg.ID}, true); err != nil {
			return err
		}
		return h.enqueue(ctx, lane, store.Target{DMWith: msg.Sender}, templates.DMExistingCase(caseRoomData(c)), store.SendEffect{}, false)
	}
	if looksLikeDetails {
		if err := h.enqueue(ctx, lane, store.Target{Room: msg.Room}, templates.DMDetailsWarning(caseRoomData(c)), store.SendEffect{ReplyTo: msg.ID}, false); err != nil {
			return err
		}
	}
	return h.enqueue(ctx, lane, store.Target{Room: msg.Room}, templates.DMExistingCase(caseRoomData(c)), store.SendEffect{ReplyTo: msg.ID}, false)
}

// openCase opens a case for reporter, whatever their channel: the case
// and its clocks, its set-up in its turn (the case room, the advisory),
// the room's welcome and the team's note. The answer to the reporter is
// the channel's, and the caller's. source is where the request was made;
// dmRoom the reporter's direct chat ("" if none).
func (h *Handlers) openCase(ctx context.Context, reporter disclosure.Person, source, dmRoom string) (*store.Case, disclosure.Opening, error) {
	now := h.clock.Now()
	p := h.Policy()
	c, err := h.store.CreateCase(ctx, reporter, source, dmRoom, now)
	if err != nil {
		return nil, disclosure.Opening{}, err
	}
	lane := store.CaseLane(c.ID)
	open := p.Open(reporter, h.chat.UserID(), c.ID.Seq, c.CreatedAt)
	for _, dc := range open.Deadlines {
		if err := h.applyDeadline(ctx, c.ID, reporter, dc, p); err != nil {
			return nil, open, err
		}
	}
	// Many throwaway accounts must not make hundreds of rooms, advisories
	// and ladders at once: past the hourly cap the set-up waits its turn
	// (the answer to the reporter does not).
	recent, err := h.store.SetupsSince(ctx, now.Add(-time.Hour))
	if err != nil {
		return nil, open, err
	}
	slot, burst := p.SetupSlot(recent, now)
	if err := h.store.SetSetupAt(ctx, c.ID, slot); err != nil {
		return nil, open, err
	}
	if burst && p.TeamRoom != "" {
		note := templates.IntakeBurst{Cap: p.MaxNewCasesPerHour, Next: p.Local(slot)}
		if err := h.enqueue(ctx, store.RoomLane(p.TeamRoom), store.Target{Room: p.TeamRoom}, note, store.SendEffect{}, false); err != nil {
			return nil, open, err
		}
	}
	// The room (then its welcome and the team's note, routine) is urgent in
	// its lane; the answer to the reporter goes in another, so that neither
	// waits on the other.
	if _, err := h.store.EnqueueAt(ctx, lane, store.KindCreateCaseRoom, store.CreateCaseRoomEffect{
		CaseID: lane, Name: "Security report " + lane, Invite: open.Invite, Team: open.Team,
	}, now, slot, true); err != nil {
		return nil, open, err
	}
	team := make([]string, 0, len(p.Team))
	for _, u := range p.Team {
		team = append(team, string(u))
	}
	welcome := templates.Welcome{CaseID: lane, Reporter: c.Reporter.String(), Team: team, AcknowledgeBy: open.AcknowledgeBy, RespondBy: open.RespondBy,
		UpdateInterval: p.SLA.UpdateInterval.String(), Email: reporter.Address(), Prefix: p.CommandPrefix}
	if err := h.enqueue(ctx, lane, store.Target{CaseRoomOf: lane}, welcome, store.SendEffect{}, false); err != nil {
		return nil, open, err
	}
	if p.TeamRoom != "" {
		note := templates.TeamNewCase{CaseID: lane, Reporter: c.Reporter.String(), AcknowledgeBy: open.AcknowledgeBy, RespondBy: open.RespondBy, Suggested: string(open.Suggested)}
		if err := h.enqueue(ctx, lane, store.Target{Room: p.TeamRoom}, note, store.SendEffect{}, false); err != nil {
			return nil, open, err
		}
	}
	if p.GitHub {
		if _, err := h.store.EnqueueAt(ctx, store.GitHubLane(c.ID), store.KindAdvisoryCreate, store.AdvisoryEffect{CaseID: lane}, now, slot, false); err != nil {
			return nil, open, err
		}
	}
	return c, open, nil
}
