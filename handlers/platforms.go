package handlers

import (
	"context"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// The chat platforms as the handlers use them: each room and person is
// handled by the platform its name says it is on.

// self is the bot on the platform of a room or person ("" when secbot is
// not on it).
func (h *Handlers) self(qualified string) disclosure.Person {
	p, err := h.platforms.Of(qualified)
	if err != nil {
		return ""
	}
	return p.Self()
}

// isSelf reports whether who is the bot (on any platform).
func (h *Handlers) isSelf(who disclosure.Person) bool { return h.platforms.IsSelf(who) }

// selfAtHome is the bot on the team room's platform, where case rooms are.
func (h *Handlers) selfAtHome() disclosure.Person {
	return h.self(h.Policy().TeamRoom)
}

// identities is the end-to-end identities of who's platform (nil when it
// publishes none).
func (h *Handlers) identities(who disclosure.Person) chat.Identities {
	p, err := h.platforms.Of(string(who))
	if err != nil {
		return nil
	}
	ids, _ := p.(chat.Identities)
	return ids
}

// hasEncryption reports whether who can take part in an end-to-end
// encrypted room; on a platform without end-to-end encryption in rooms
// the question does not arise (true).
func (h *Handlers) hasEncryption(ctx context.Context, who disclosure.Person) (bool, error) {
	p, err := h.platforms.Of(string(who))
	if err != nil {
		return false, err
	}
	enc, ok := p.(chat.Encryption)
	if !ok {
		return true, nil
	}
	return enc.HasEncryption(ctx, who)
}

// joinRoom, leaveRoom and joinedMemberCount act on the room's platform.
func (h *Handlers) joinRoom(ctx context.Context, room string) error {
	p, err := h.platforms.Of(room)
	if err != nil {
		return err
	}
	return p.JoinRoom(ctx, room)
}

func (h *Handlers) leaveRoom(ctx context.Context, room, reason string) error {
	p, err := h.platforms.Of(room)
	if err != nil {
		return err
	}
	return p.LeaveRoom(ctx, room, reason)
}

func (h *Handlers) joinedMemberCount(ctx context.Context, room string) (int, error) {
	p, err := h.platforms.Of(room)
	if err != nil {
		return 0, err
	}
	return p.JoinedMemberCount(ctx, room)
}

// roomLink is a link to a room that its platform's clients open ("" for
// a room of a platform secbot is not on).
func (h *Handlers) roomLink(room string) string {
	p, err := h.platforms.Of(room)
	if err != nil {
		return ""
	}
	return p.RoomLink(room)
}

// showRoom is a room as a reader of the team room knows it: by its name
// where its platform has one (#announcements on Rocket.Chat), else as
// disclosure.Show writes it.
func (h *Handlers) showRoom(room string) string {
	if p, err := h.platforms.Of(room); err == nil {
		if names, ok := p.(chat.RoomNames); ok {
			if name := names.RoomName(room); name != "" {
				return name
			}
		}
	}
	return disclosure.Show(room)
}

// personIn reads a word of a command typed in room as a person: in the
// form of the room's platform (Matrix: @bob:example.org), or qualified
// with a platform secbot is on (rocketchat:bob).
func (h *Handlers) personIn(room string) func(word string) (disclosure.Person, bool) {
	return func(word string) (disclosure.Person, bool) {
		if disclosure.RoomPlatform(word) != "" {
			return h.platforms.ParsePerson(word)
		}
		p, err := h.platforms.Of(room)
		if err != nil {
			return "", false
		}
		return p.ParsePerson(word)
	}
}

// caseRoomPlatform is the platform a case's room is (or will be) on: the
// team room's when it was made.
func (h *Handlers) caseRoomPlatform(cs *store.Case, p *disclosure.Policy) disclosure.Platform {
	if cs.CaseRoom != "" {
		return chat.PlatformOf(cs.CaseRoom)
	}
	return p.TeamPlatform()
}
