package handlers

import (
	"context"
	"errors"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/scheduler"
	"github.com/enarx/secbot/store"
)

// intake opens a case for a request to report a security issue, made in a
// direct chat (direct) or a public room. Nothing of the message's text is
// kept: only that a request was made, by whom and where.
func (h *Handlers) intake(ctx context.Context, evt *event.Event, msg *event.MessageEventContent, direct bool) error {
	looksLikeDetails := disclosure.LooksLikeDetails(msg.Body, false)
	var opened *store.Case
	err := h.once(ctx, evt, func(ctx context.Context) error {
		now := h.clock.Now()
		if existing, err := h.store.OpenCaseOf(ctx, evt.Sender); err == nil {
			// Asking again and again gets one case and, past a few, one
			// polite limit message.
			switch h.chatter.check(evt.Sender, now) {
			case stayQuiet:
				return nil
			case warnOnce:
				return h.render(ctx, existing.ID.String(), store.Target{Room: evt.RoomID}, "slow_down", nil, evt.ID)
			}
			return h.pointToExisting(ctx, evt, existing, direct, looksLikeDetails)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var dmRoom id.RoomID
		if direct {
			dmRoom = evt.RoomID
		}
		c, err := h.store.CreateCase(ctx, evt.Sender, evt.RoomID, dmRoom, now)
		if err != nil {
			return err
		}
		opened = c
		lane := c.ID.String()
		for _, kind := range []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse} {
			if err := h.store.SetDeadline(ctx, scheduler.NewDeadline(c.ID, kind, c.CreatedAt, h.timers.Policy())); err != nil {
				return err
			}
		}
		data := h.intakeData(c)
		// Two lanes, both urgent: the room (then its welcome and the team's
		// note, routine) and the answer to the reporter, so that neither
		// waits on the other.
		invite := []id.UserID{evt.Sender}
		for _, member := range h.teamMembers() {
			if member != evt.Sender && member != h.chat.UserID() {
				invite = append(invite, member)
			}
		}
		if _, err := h.store.EnqueueUrgent(ctx, lane, store.KindCreateCaseRoom, store.CreateCaseRoomEffect{
			CaseID: lane, Name: "Security report " + lane, Invite: invite,
		}, now); err != nil {
			return err
		}
		replyLane := "reply:" + lane
		if direct {
			dm := store.Target{Room: evt.RoomID}
			if err := h.answer(ctx, replyLane, dm, "dm_ack", data, store.SendEffect{ReplyTo: evt.ID}); err != nil {
				return err
			}
			if looksLikeDetails {
				if err := h.answer(ctx, replyLane, dm, "dm_details_warning", data, store.SendEffect{}); err != nil {
					return err
				}
			}
		} else {
			// Nothing of the case happens in public: a pointer in a thread,
			// then everything else in a direct chat the bot opens itself.
			if err := h.threadReply(ctx, replyLane, evt, data); err != nil {
				return err
			}
			if _, err := h.store.EnqueueUrgent(ctx, replyLane, store.KindOpenDM, store.OpenDMEffect{User: evt.Sender, CaseID: lane}, now); err != nil {
				return err
			}
			if err := h.answer(ctx, replyLane, store.Target{DMWith: evt.Sender}, "dm_from_public", data, store.SendEffect{}); err != nil {
				return err
			}
		}
		if err := h.render(ctx, lane, store.Target{CaseRoomOf: lane}, "welcome", data, ""); err != nil {
			return err
		}
		if h.opts().TeamRoom != "" {
			if err := h.render(ctx, lane, store.Target{Room: h.opts().TeamRoom}, "team_new_case", data, ""); err != nil {
				return err
			}
		}
		if h.opts().GitHub {
			if _, err := h.store.Enqueue(ctx, "github:"+lane, store.KindAdvisoryCreate, store.AdvisoryEffect{CaseID: lane}, now); err != nil {
				return err
			}
		}
		return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: evt.Sender, CaseID: lane, Action: "case.open", Detail: map[bool]string{true: "direct message", false: "public room"}[direct], Allowed: true})
	})
	if err == nil && opened != nil {
		zerolog.Ctx(ctx).Info().Stringer("case_id", opened.ID).Bool("direct", direct).Msg("Opened case")
	}
	return err
}

// pointToExisting answers a reporter who asks again while a case is open.
func (h *Handlers) pointToExisting(ctx context.Context, evt *event.Event, c *store.Case, direct, looksLikeDetails bool) error {
	lane := c.ID.String()
	data := caseData(c)
	if !direct {
		if err := h.threadReply(ctx, lane, evt, data); err != nil {
			return err
		}
		if err := h.render(ctx, lane, store.Target{DMWith: evt.Sender}, "dm_existing_case", data, ""); err != nil {
			return err
		}
		return nil
	}
	if looksLikeDetails {
		if err := h.render(ctx, lane, store.Target{Room: evt.RoomID}, "dm_details_warning", data, evt.ID); err != nil {
			return err
		}
	}
	return h.render(ctx, lane, store.Target{Room: evt.RoomID}, "dm_existing_case", data, evt.ID)
}

func (h *Handlers) intakeData(c *store.Case) map[string]any {
	p := h.timers.Policy()
	cal := p.Calendar
	data := caseData(c)
	team := make([]string, 0, len(h.teamMembers()))
	for _, u := range h.teamMembers() {
		team = append(team, u.String())
	}
	data["Reporter"] = c.Reporter.String()
	data["Team"] = team
	data["AcknowledgeBy"] = h.local(p.SLA.Due(disclosure.DeadlineAcknowledge, c.CreatedAt, cal))
	data["RespondBy"] = h.local(p.SLA.Due(disclosure.DeadlineResponse, c.CreatedAt, cal))
	data["UpdateInterval"] = p.SLA.UpdateInterval.String()
	data["Suggested"] = ""
	if members := h.teamMembers(); h.opts().Rotation && len(members) > 0 {
		// Round-robin by case number, as Kubernetes rotates its fix lead.
		data["Suggested"] = members[(c.ID.Seq-1)%len(members)].String()
	}
	return data
}

// threadReply answers a public request in a thread under it.
func (h *Handlers) threadReply(ctx context.Context, lane string, evt *event.Event, data any) error {
	return h.answer(ctx, lane, store.Target{Room: evt.RoomID}, "public_thread", data, store.SendEffect{ThreadRoot: evt.ID})
}
