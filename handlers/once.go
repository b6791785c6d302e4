package handlers

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// once runs fn in a transaction that also marks the event handled, for
// good; if it was handled before, however long ago, fn does not run.
func (h *Handlers) once(ctx context.Context, eventID string, fn func(ctx context.Context) error) error {
	return h.onceMarked(ctx, eventID, h.store.MarkHandled, fn)
}

// onceBriefly is once for an event whose handling changes nothing but an
// answer: its record is pruned after the retention.
func (h *Handlers) onceBriefly(ctx context.Context, eventID string, fn func(ctx context.Context) error) error {
	return h.onceMarked(ctx, eventID, h.store.MarkHandledBriefly, fn)
}

func (h *Handlers) onceMarked(ctx context.Context, eventID string, mark func(context.Context, string, time.Time) (bool, error), fn func(ctx context.Context) error) error {
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := mark(ctx, eventID, h.clock.Now())
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

// enqueue renders d and records it as a message to send: the one way the
// handlers say anything. effect carries threading and mentions; urgent
// messages (the answer a reporter waits on) go before routine ones.
func (h *Handlers) enqueue(ctx context.Context, lane string, to outbox.Target, d templates.Data, effect outbox.SendEffect, urgent bool) error {
	effect.To = to
	return outbox.Say(ctx, h.store, h.templates, lane, effect, d, h.clock.Now(), urgent)
}

type caseRoomFields struct {
	CaseID, CaseRoom, CaseRoomLink string
	Plain, Elsewhere, GitHub       bool
	Address                        string
}

// caseRoomData names a case's room as its platform's people see it: the
// platform's own ID and a link its clients open.
//
// A reporter who cannot be in the case room (on another chat than the
// case room's, or the room proved unusable) is shown none of it: it is
// the team's alone; they are pointed to their private area instead.
func (h *Handlers) caseRoomData(c *store.Case) caseRoomFields {
	p := h.Policy()
	home := h.caseRoomPlatform(c, p)
	if c.Reporter.Channel() == disclosure.ChannelChat && (c.RoomUnusable || !disclosure.ReadsCaseRoom(c.Reporter, home)) {
		return caseRoomFields{CaseID: c.ID.String(), Elsewhere: true, GitHub: p.GitHub, Address: p.Email}
	}
	plain := p.PlainRooms[home]
	return caseRoomFields{CaseID: c.ID.String(), CaseRoom: disclosure.Show(c.CaseRoom), CaseRoomLink: h.roomLink(c.CaseRoom), Plain: plain}
}
