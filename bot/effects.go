package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/backoff"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// ErrNotReady means an effect depends on a room that does not exist yet;
// the outbox tries it again shortly.
var ErrNotReady = chat.ErrNotReady

// ErrPermanent wraps an error that no retry can mend (the homeserver
// refused the request); the outbox gives up on the effect.
var ErrPermanent = chat.ErrPermanent

// Executors returns the functions that make the bot's kinds of effect, by kind.
func (b *Bot) Executors() map[string]outbox.Executor {
	return map[string]outbox.Executor{
		outbox.KindSend:           b.execSend,
		outbox.KindCreateCaseRoom: b.execCreateCaseRoom,
		outbox.KindOpenDM:         b.execOpenDM,
		outbox.KindInvite:         b.execInvite,
		outbox.KindReact:          b.execReact,
		outbox.KindKick:           b.execKick,
	}
}

// CreateRoomResult is what creating a room returns (the result kept with
// a made chat.create_case_room or chat.open_dm).
type CreateRoomResult struct {
	Room string `json:"room"`
}

// SendResult is what sending a message returns (kept with a made
// chat.send).
type SendResult struct {
	Event string `json:"event"`
}

// resolve turns a target into a room ID, ErrNotReady if the room is still to come.
func (b *Bot) resolve(ctx context.Context, t outbox.Target) (id.RoomID, error) {
	switch {
	case strings.HasPrefix(chat.Native(t.Room), "#"):
		resp, err := b.Client.ResolveAlias(ctx, id.RoomAlias(chat.Native(t.Room)))
		if err != nil {
			return "", classify(err)
		}
		return resp.RoomID, nil
	case t.Room != "":
		return matrixRoom(t.Room), nil
	case t.CaseRoomOf != "":
		caseID, err := disclosure.ParseCaseID(t.CaseRoomOf)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		c, err := b.store.Case(ctx, caseID)
		if err != nil {
			return "", err
		}
		if c.CaseRoom == "" {
			return "", ErrNotReady
		}
		return matrixRoom(c.CaseRoom), nil
	case t.DMWith != "":
		dm, err := b.store.DMRoom(ctx, disclosure.Person(chat.Qualified(string(t.DMWith))))
		if errors.Is(err, store.ErrNotFound) {
			return "", ErrNotReady
		}
		return matrixRoom(dm), err
	}
	return "", fmt.Errorf("%w: effect names no room", ErrPermanent)
}

// effectMarker is the content field carrying the outbox row of a message.
const effectMarker = "org.secbot.effect"

// findSent looks through the room's latest events for the bot's message
// of the given outbox row, by the marker outside its ciphertext (or, for a
// message sent before the marker moved there, inside it).
func (b *Bot) findSent(ctx context.Context, roomID id.RoomID, effectID int64) (id.EventID, error) {
	resp, err := b.Client.Messages(ctx, roomID, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		return "", err
	}
	for _, evt := range resp.Chunk {
		if evt.Sender != b.Client.UserID {
			continue
		}
		if marked(evt.Content.Raw, effectID) {
			return evt.ID, nil
		}
		if evt.Type == event.EventEncrypted && b.crypto != nil {
			evt.RoomID = roomID
			if err := evt.Content.ParseRaw(evt.Type); err != nil {
				continue
			}
			if decrypted, err := b.crypto.Decrypt(ctx, evt); err == nil && marked(decrypted.Content.Raw, effectID) {
				return evt.ID, nil
			}
		}
	}
	return "", nil
}

func marked(content map[string]any, effectID int64) bool {
	v, ok := content[effectMarker].(float64)
	return ok && int64(v) == effectID
}

// retrySettle is how long a retried send or case room waits for an
// earlier attempt, cut off by a crash, to finish at the homeserver.
var retrySettle = 2 * time.Second // a var so that tests need not wait

// txnID derives the Matrix transaction ID from the outbox row, so that a
// retried send after a crash is dropped by the homeserver as a duplicate.
func txnID(e store.Effect) string { return fmt.Sprintf("secbot.%d", e.ID) }

// Notice renders Markdown as a notice: clients show it as a bot's and
// other bots do not answer it.
func Notice(markdown string) *event.MessageEventContent {
	content := format.RenderMarkdown(markdown, true, false)
	content.MsgType = event.MsgNotice
	return &content
}

func (b *Bot) execSend(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.SendEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	roomID, err := b.resolve(ctx, p.To)
	if err != nil {
		return nil, err
	}
	if e.Attempts > 1 {
		// An earlier attempt may have reached the room although secbot died
		// before recording it: Dendrite drops a repeated transaction ID only
		// if the first request finished while the client was still there.
		// Let any request still in flight finish, then look for the message.
		if err := backoff.Sleep(ctx, retrySettle); err != nil {
			return nil, err
		}
		if sent, err := b.findSent(ctx, roomID, e.ID); err != nil {
			return nil, b.classifyPost(roomID, e.Attempts, err)
		} else if sent != "" {
			return SendResult{Event: sent.String()}, nil
		}
	}
	content := Notice(p.Markdown)
	if p.ThreadRoot != "" {
		content.RelatesTo = (&event.RelatesTo{}).SetThread(id.EventID(p.ThreadRoot), id.EventID(p.ThreadRoot))
	} else if p.ReplyTo != "" {
		content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(id.EventID(p.ReplyTo))
	}
	content.Mentions = &event.Mentions{UserIDs: matrixUsers(p.Mentions)}
	// The effect's ID travels with the message, so a retry can recognise
	// the message it already sent. In an encrypted room it goes outside the
	// ciphertext too (like the transaction ID, it tells the homeserver only
	// a row number): a retry must not depend on decrypting its own message.
	evtType, body := event.EventMessage, any(&event.Content{Parsed: content, Raw: map[string]any{effectMarker: e.ID}})
	if b.crypto != nil {
		encrypted, err := b.Client.StateStore.IsEncrypted(ctx, roomID)
		if err != nil {
			return nil, err
		}
		if encrypted {
			sealed, err := b.crypto.Encrypt(ctx, roomID, event.EventMessage, body)
			if err != nil {
				return nil, fmt.Errorf("encrypt: %w", err)
			}
			evtType, body = event.EventEncrypted, &event.Content{Parsed: sealed, Raw: map[string]any{effectMarker: e.ID}}
		}
	}
	if err := b.teamRoomReady(roomID, evtType, e.Attempts); err != nil {
		return nil, err
	}
	resp, err := b.Client.SendMessageEvent(ctx, roomID, evtType, body, mautrix.ReqSendEvent{TransactionID: txnID(e)})
	if err = b.classifyPost(roomID, e.Attempts, err); err != nil {
		if errors.Is(err, ErrPermanent) && p.IfRefused != "" {
			// Say where it could not go; the effect itself fails.
			notice := fmt.Sprintf("⚠️ I could not post in %s: the homeserver refused (%s). Invite me there (with permission to post), then run the command again: it posts only where it failed.", chat.Native(p.To.Room), httpReason(err))
			if _, qerr := outbox.Enqueue(ctx, b.store, store.RoomLane(p.IfRefused), outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: p.IfRefused}, Markdown: notice}, time.Now()); qerr != nil {
				return nil, qerr
			}
		}
		return nil, err
	}
	zerolog.Ctx(ctx).Debug().Stringer("room_id", roomID).Stringer("sent_event_id", resp.EventID).Msg("Sent notice")
	return SendResult{Event: resp.EventID.String()}, nil
}

func (b *Bot) execCreateCaseRoom(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.CreateCaseRoomEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	caseID, err := disclosure.ParseCaseID(p.CaseID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	c, err := b.store.Case(ctx, caseID)
	if err != nil {
		return nil, err
	}
	localpart, alias, err := b.caseRoomAlias(ctx, e.ID, p.CaseID)
	if err != nil {
		return nil, err
	}
	if c.CaseRoom != "" {
		if e.Attempts > 1 {
			// Recorded before a crash: the alias may have outlived it.
			b.forgetCaseRoomAlias(ctx, alias)
		}
		return CreateRoomResult{Room: c.CaseRoom}, nil
	}
	var roomID id.RoomID
	var aliased bool // the room holds the alias in its state
	if e.Attempts > 1 {
		// An earlier attempt may have created the room before a crash, or
		// be creating it still: the homeserver goes on with a request whose
		// client died, and a standby retries within a second of the kill.
		// Let it finish, then look for the room (at its alias first).
		if err := backoff.Sleep(ctx, retrySettle); err != nil {
			return nil, err
		}
		if roomID, aliased, err = b.findCaseRoom(ctx, alias, p.CaseID); err != nil {
			return nil, classify(err)
		}
	}
	created := roomID == ""
	if created {
		if roomID, created, aliased, err = b.makeCaseRoom(ctx, p, localpart, alias); err != nil {
			return nil, classify(err)
		}
	}
	if !created {
		// Invites are part of creation; make sure none was lost with the crash.
		b.inviteMissing(ctx, roomID, matrixUsers(p.Invite))
	}
	// Made encrypted (or adopted only so): never sent to in the clear.
	if err := b.recordEncrypted(ctx, roomID); err != nil {
		return nil, err
	}
	if aliased {
		b.clearCanonicalAlias(ctx, roomID)
	}
	if err := b.store.SetCaseRoom(ctx, caseID, coreRoom(roomID), time.Now()); err != nil {
		return nil, err
	}
	// Only now, with the room recorded, may a retry no longer need the alias.
	b.forgetCaseRoomAlias(ctx, alias)
	return CreateRoomResult{Room: coreRoom(roomID)}, nil
}

// makeCaseRoom creates a case's room under its alias; created is false
// when the homeserver refused because an earlier attempt's room holds the
// alias, which is returned instead.
func (b *Bot) makeCaseRoom(ctx context.Context, p outbox.CreateCaseRoomEffect, localpart string, alias id.RoomAlias) (roomID id.RoomID, created, aliased bool, err error) {
	invite, team := matrixUsers(p.Invite), matrixUsers(p.Team)
	roomID, err = b.createCaseRoom(ctx, p.CaseID, localpart, p.Name, invite, team)
	switch {
	case err == nil:
		crashpoint.Hit("bot.case_room_created")
		return roomID, true, true, nil
	case errors.Is(err, mautrix.MRoomInUse):
		// The alias is taken: by this row's earlier attempt, which the
		// homeserver finished after the bot last looked.
		if roomID, aliased, err = b.aliasedCaseRoom(ctx, alias, p.CaseID); err == nil && roomID == "" {
			err = fmt.Errorf("the alias of %s's room is taken but resolves to no room", p.CaseID)
		}
		return roomID, false, aliased, err
	case errors.Is(err, mautrix.MForbidden) || errors.Is(err, mautrix.MExclusive):
		// Refused: a room made before an invite was (Dendrite answers so),
		// or the alias (the homeserver's rules for aliases, an appservice's
		// namespace). A made room holds the alias.
		if found, foundAliased, ferr := b.aliasedCaseRoom(ctx, alias, p.CaseID); ferr != nil || found != "" {
			return found, false, foundAliased, ferr
		}
		b.log.Warn().Err(err).Str("case_id", p.CaseID).Msg("The homeserver refused the case room with an alias; making it without one (a crash while it is made can then make a second room)")
		roomID, err = b.createCaseRoom(ctx, p.CaseID, "", p.Name, invite, team)
		if err == nil {
			crashpoint.Hit("bot.case_room_created")
		}
		return roomID, err == nil, false, err
	}
	return "", false, false, err
}

func (b *Bot) inviteMissing(ctx context.Context, roomID id.RoomID, users []id.UserID) {
	members, err := b.Client.Members(ctx, roomID)
	present := map[id.UserID]bool{}
	if err == nil {
		for _, evt := range members.Chunk {
			if m := evt.Content.AsMember(); m.Membership == event.MembershipJoin || m.Membership == event.MembershipInvite {
				present[id.UserID(evt.GetStateKey())] = true
			}
		}
	}
	for _, u := range users {
		if !present[u] {
			if _, err := b.Client.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: u}); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Stringer("user_id", u).Msg("Could not invite")
			}
		}
	}
}

func (b *Bot) execOpenDM(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.OpenDMEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	user := disclosure.Person(chat.Qualified(string(p.User)))
	stored, err := b.store.DMRoom(ctx, user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	roomID := matrixRoom(stored)
	if roomID != "" {
		// A contact who left the stored chat would be written to in vain.
		if there, err := b.stillThere(ctx, roomID, matrixUser(p.User)); err != nil {
			return nil, classify(err)
		} else if !there {
			b.log.Info().Stringer("room_id", roomID).Msg("The direct chat's other member left it; opening a new one")
			if err := b.store.ForgetDMRoom(ctx, user, stored); err != nil {
				return nil, err
			}
			roomID = ""
		}
	}
	if roomID == "" {
		if roomID, err = b.findDM(ctx, matrixUser(p.User)); err != nil {
			return nil, classify(err)
		}
	}
	if roomID == "" {
		if roomID, err = b.createDM(ctx, matrixUser(p.User)); err != nil {
			return nil, classify(err)
		}
	}
	now := time.Now()
	err = b.store.Tx(ctx, func(ctx context.Context) error {
		if err := b.store.SetDMRoomOf(ctx, user, coreRoom(roomID), now); err != nil {
			return err
		}
		if p.CaseID == "" {
			return nil
		}
		caseID, err := disclosure.ParseCaseID(p.CaseID)
		if err != nil {
			return err
		}
		return b.store.SetDMRoom(ctx, caseID, coreRoom(roomID), now)
	})
	if err != nil {
		return nil, err
	}
	return CreateRoomResult{Room: coreRoom(roomID)}, nil
}

func (b *Bot) execInvite(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.InviteEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	roomID, err := b.resolve(ctx, p.To)
	if err != nil {
		return nil, err
	}
	_, err = b.Client.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: matrixUser(p.User)})
	if err != nil && isAlreadyMember(err) {
		return nil, nil
	}
	return nil, classify(err)
}

func (b *Bot) execReact(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.ReactEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	content := &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: id.EventID(p.Event), Key: p.Key}}
	_, err := b.Client.SendMessageEvent(ctx, matrixRoom(p.Room), event.EventReaction, content, mautrix.ReqSendEvent{TransactionID: txnID(e)})
	return nil, classify(err)
}

func isAlreadyMember(err error) bool {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.RespError == nil {
		return false
	}
	return httpErr.RespError.ErrCode == mautrix.MForbidden.ErrCode && slices.Contains([]string{"user is already joined to room", "user already in room"}, httpErr.RespError.Err)
}

// classify marks client errors (4xx other than 429) as permanent: the
// homeserver will refuse them again. Network errors and 5xx are retried.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		code := httpErr.Response.StatusCode
		if code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout {
			return fmt.Errorf("%w: %w", ErrPermanent, err)
		}
	}
	return err
}

func (b *Bot) execKick(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.KickEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	roomID, err := b.resolve(ctx, p.To)
	if err != nil {
		return nil, err
	}
	_, err = b.Client.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: matrixUser(p.User), Reason: p.Reason})
	if err != nil && (isHTTPStatus(err, http.StatusForbidden) || isHTTPStatus(err, http.StatusNotFound)) {
		// Not (or no longer) in the room.
		return nil, nil
	}
	return nil, classify(err)
}

func httpReason(err error) string {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.RespError != nil {
		return httpErr.RespError.ErrCode
	}
	return "error"
}
