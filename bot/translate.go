package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// Translate adapts the core's inbound side to the events the bot syncs:
// the handlers never see a Matrix event. isTeam says whose device
// identity to look up (a team member's commands count by it).
func (b *Bot) Translate(in chat.Dispatch, isTeam func(disclosure.Person) bool) Handler {
	return translator{in: in, isTeam: isTeam, b: b}
}

type translator struct {
	in     chat.Dispatch
	isTeam func(disclosure.Person) bool
	b      *Bot
}

// HandleEvent translates one synced (and decrypted) event: a message, or
// an invite of the bot. Reactions, redactions, stickers, edits and other
// bots' notices change nothing.
func (t translator) HandleEvent(ctx context.Context, evt *event.Event) error {
	switch evt.Type {
	case event.StateMember:
		member := evt.Content.AsMember()
		if evt.GetStateKey() == t.b.UserID().String() && member.Membership == event.MembershipInvite {
			return t.in.Invite(ctx, chat.Invite{Room: coreRoom(evt.RoomID), Sender: corePerson(evt.Sender), Direct: member.IsDirect})
		}
	case event.EventMessage:
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		if !ok || msg.MsgType == event.MsgNotice {
			return nil
		}
		if msg.RelatesTo != nil && msg.RelatesTo.Type == event.RelReplace {
			return nil // an edit: the original was handled
		}
		m := chat.Message{ID: evt.ID.String(), Room: coreRoom(evt.RoomID), Sender: corePerson(evt.Sender), Sent: time.UnixMilli(evt.Timestamp), Attachment: msg.MsgType != event.MsgText && msg.MsgType != event.MsgEmote}
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
		if t.isTeam(m.Sender) {
			ident, err := t.b.senderIdentity(ctx, evt)
			if err != nil {
				return fmt.Errorf("check the sender's device: %w", err)
			}
			m.Identity = ident
		}
		return t.in.Message(ctx, m)
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
	t.in.Undecryptable(ctx, chat.Message{ID: evt.ID.String(), Room: coreRoom(evt.RoomID), Sender: corePerson(evt.Sender), Sent: time.UnixMilli(evt.Timestamp)}, string(content.SessionID))
}

// Platform is the bot as the core uses it: Matrix, in the port's terms.
func (b *Bot) Platform() chat.Platform { return platform{b} }

// platform implements chat.Platform, with end-to-end encryption
// (chat.Encryption) and cross-signing identities (chat.Identities).
type platform struct{ b *Bot }

var (
	_ chat.Platform   = platform{}
	_ chat.Encryption = platform{}
	_ chat.Identities = platform{}
	_ chat.Poster     = platform{}
)

// Ready, Post: the bot posts into encrypted rooms only (Bot.Post), files
// included.
func (p platform) Ready(ctx context.Context, to outbox.Target) error { return p.b.Ready(ctx, to) }

func (p platform) Post(ctx context.Context, e store.Effect, to outbox.Target, parts []chat.Part) error {
	return p.b.Post(ctx, e, to, parts)
}

func (platform) PostsFiles() bool { return true }

func (p platform) Name() disclosure.Platform { return disclosure.Matrix }

func (p platform) Self() disclosure.Person { return corePerson(p.b.UserID()) }

// Vouching: Matrix signs devices (cross-signing).
func (p platform) Vouching() chat.Vouching { return chat.VouchesForDevices }

func (p platform) JoinRoom(ctx context.Context, room string) error {
	return p.b.JoinRoom(ctx, matrixRoom(room))
}

func (p platform) LeaveRoom(ctx context.Context, room, reason string) error {
	return p.b.LeaveRoom(ctx, matrixRoom(room), reason)
}

func (p platform) JoinedMemberCount(ctx context.Context, room string) (int, error) {
	return p.b.JoinedMemberCount(ctx, matrixRoom(room))
}

func (p platform) Executors() map[string]outbox.Executor { return p.b.Executors() }

// ParsePerson reads a Matrix user ID (@alice:example.org).
func (p platform) ParsePerson(s string) (disclosure.Person, bool) {
	if _, _, err := id.UserID(s).Parse(); err != nil || !strings.HasPrefix(s, "@") {
		return "", false
	}
	return corePerson(id.UserID(s)), true
}

// RoomLink is the room's matrix.to link.
func (p platform) RoomLink(room string) string { return matrixRoom(room).URI().MatrixToURL() }

func (p platform) HasEncryption(ctx context.Context, user disclosure.Person) (bool, error) {
	return p.b.HasEncryption(ctx, matrixUser(user))
}

func (p platform) Identity(ctx context.Context, who disclosure.Person) (disclosure.Identity, error) {
	return p.b.Identity(ctx, who)
}

func (p platform) TrustChanged(ctx context.Context, member disclosure.Person) {
	p.b.TrustChanged(ctx, member)
}
