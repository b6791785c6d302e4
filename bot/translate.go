package bot

import (
	"context"
	"fmt"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/handlers"
)

// ChatHandler is what handles chat messages and invites once they are
// translated out of Matrix: the handlers never see a Matrix event.
type ChatHandler interface {
	IsTeam(who disclosure.Person) bool
	HandleMessage(ctx context.Context, msg handlers.Message) error
	HandleInvite(ctx context.Context, inv handlers.Invite) error
	HandleUndecryptable(ctx context.Context, msg handlers.Message, session string)
}

// Translate adapts a ChatHandler to the events the bot syncs.
func (b *Bot) Translate(h ChatHandler) Handler { return translator{h: h, b: b} }

type translator struct {
	h ChatHandler
	b *Bot
}

// HandleEvent translates one synced (and decrypted) event: a message, or
// an invite of the bot. Reactions, redactions, stickers, edits and other
// bots' notices change nothing.
func (t translator) HandleEvent(ctx context.Context, evt *event.Event) error {
	switch evt.Type {
	case event.StateMember:
		member := evt.Content.AsMember()
		if evt.GetStateKey() == t.b.UserID().String() && member.Membership == event.MembershipInvite {
			return t.h.HandleInvite(ctx, handlers.Invite{Room: evt.RoomID.String(), Sender: disclosure.Person(evt.Sender), Direct: member.IsDirect})
		}
	case event.EventMessage:
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		if !ok || msg.MsgType == event.MsgNotice {
			return nil
		}
		if msg.RelatesTo != nil && msg.RelatesTo.Type == event.RelReplace {
			return nil // an edit: the original was handled
		}
		m := handlers.Message{ID: evt.ID.String(), Room: evt.RoomID.String(), Sender: disclosure.Person(evt.Sender), Sent: time.UnixMilli(evt.Timestamp), Attachment: msg.MsgType != event.MsgText && msg.MsgType != event.MsgEmote}
		if msg.MsgType == event.MsgText {
			m.Text = msg.Body
		}
		if !evt.Mautrix.WasEncrypted {
			// Only the bot's own state store says whether the room is
			// encrypted; anyone who can inject events could send these.
			encrypted, err := t.b.Client.StateStore.IsEncrypted(ctx, evt.RoomID)
			if err != nil {
				return fmt.Errorf("is %s encrypted: %w", evt.RoomID, err)
			}
			m.Plaintext = encrypted
		}
		if t.h.IsTeam(m.Sender) {
			ident, err := t.b.senderIdentity(ctx, evt)
			if err != nil {
				return fmt.Errorf("check the sender's device: %w", err)
			}
			m.Identity = ident
		}
		return t.h.HandleMessage(ctx, m)
	}
	return nil
}

// HandleUndecryptable passes on a message that could not be decrypted,
// with its encryption session.
func (t translator) HandleUndecryptable(ctx context.Context, evt *event.Event) {
	content, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
	if !ok {
		return
	}
	t.h.HandleUndecryptable(ctx, handlers.Message{ID: evt.ID.String(), Room: evt.RoomID.String(), Sender: disclosure.Person(evt.Sender), Sent: time.UnixMilli(evt.Timestamp)}, string(content.SessionID))
}

// Chat is the bot as the handlers use it, in their channel-neutral terms.
func (b *Bot) Chat() handlers.Chat { return chat{b} }

type chat struct{ b *Bot }

func (c chat) UserID() disclosure.Person { return disclosure.Person(c.b.UserID()) }

func (c chat) JoinRoom(ctx context.Context, room string) error {
	return c.b.JoinRoom(ctx, id.RoomID(room))
}

func (c chat) LeaveRoom(ctx context.Context, room, reason string) error {
	return c.b.LeaveRoom(ctx, id.RoomID(room), reason)
}

func (c chat) JoinedMemberCount(ctx context.Context, room string) (int, error) {
	return c.b.JoinedMemberCount(ctx, id.RoomID(room))
}

func (c chat) HasEncryption(ctx context.Context, user disclosure.Person) (bool, error) {
	return c.b.HasEncryption(ctx, id.UserID(user))
}
