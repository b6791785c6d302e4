package handlers

import (
	"context"
	"errors"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// reroutedReason is what a post for a case room that was sent to the
// reporter's direct chat instead ends with in the outbox.
const reroutedReason = "the case room cannot be used; sent to the reporter's direct chat instead"

// unusableSince is why a case room that refused a post as unusable cannot
// be used, as the team and the reporter read it.
const unusableSince = "the chat server now refuses my messages in it (it was made end-to-end encrypted, which is not open to bots)"

// RerouteUnusable wraps the executor of outbox.KindSend: a post for a
// case's room that the room refused for good because the bot cannot use
// it (chat.ErrRoomUnusable: a Rocket.Chat group the server encrypts),
// queued before secbot learnt that (the welcome, an answer typed in those
// seconds), reaches the reporter in their direct chat instead, as say
// routes what is decided once the room is marked unusable. Only for a
// reporter who reads the case room: everything posted there is theirs to
// read. For anyone else (a reporter on another chat or by email, who got
// their copy when it was decided) the room was the team's alone, and its
// post fails as before: a text of the team's never reaches a reporter,
// nor one of the reporter's the team room.
//
// The post ends (refused, its text dropped from the outbox) in the
// transaction that queues the direct chat's copy: a crash before it
// commits sends the post again, refused again, and re-routed then, so the
// reporter gets it once.
func (h *Handlers) RerouteUnusable(next outbox.Executor) outbox.Executor {
	return func(ctx context.Context, e store.Effect) (any, error) {
		result, err := next(ctx, e)
		if !errors.Is(err, chat.ErrRoomUnusable) {
			return result, err
		}
		var s outbox.SendEffect
		if derr := e.Decode(&s); derr != nil || s.To.CaseRoomOf == "" {
			return result, err
		}
		caseID, perr := disclosure.ParseCaseID(s.To.CaseRoomOf)
		if perr != nil {
			return result, err
		}
		rerouted := false
		txErr := h.store.Tx(ctx, func(ctx context.Context) error {
			rerouted = false // a retried transaction starts again
			// A room that was usable when it was made (the server, or an
			// owner, turned encryption on since) is unusable from now on:
			// told once, as if it had been so from the start.
			if err := h.markRoomUnusable(ctx, caseID, unusableSince); err != nil {
				return err
			}
			cs, err := h.store.Case(ctx, caseID)
			if err != nil {
				return err
			}
			if cs.CaseRoom == "" || !disclosure.ReadsCaseRoom(cs.Reporter, chat.PlatformOf(cs.CaseRoom)) {
				return nil
			}
			now := h.clock.Now()
			ended, err := h.store.RefuseEffect(ctx, e.ID, reroutedReason, now)
			if err != nil || !ended {
				return err // not pending any more: handled already
			}
			lane := store.CaseLane(caseID)
			if _, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindOpenDM, outbox.OpenDMEffect{User: cs.Reporter, CaseID: caseID.String()}, now); err != nil {
				return err
			}
			// The text as it was to be posted, under a line that says where
			// it was meant to go (a welcome speaks of "this room"); not as a
			// reply or a thread of the room it was for.
			head, err := h.templates.RenderData(templates.MeantForTheCaseRoom{CaseID: caseID.String()})
			if err != nil {
				return err
			}
			if _, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindSend, outbox.SendEffect{To: outbox.Target{DMWith: cs.Reporter}, Markdown: head + "\n\n" + s.Markdown}, now); err != nil {
				return err
			}
			rerouted = true
			return nil
		})
		if txErr != nil {
			return nil, txErr // tried again: refused again, re-routed then
		}
		if !rerouted {
			return result, err
		}
		h.kick()
		return nil, &outbox.RefusedError{Reason: reroutedReason}
	}
}
