// Package chat is the port between secbot's core and the chat platforms,
// declared by the core as mautrix bridgev2 declares its NetworkAPI: what
// the core needs of a platform (Platform, and optional capabilities found
// by type assertion), the vocabulary every channel hands the core
// (Message, Invite, GitHubAdvisory), the one inbound interface the core
// implements (Inbound) and the one wrapper every channel calls it through
// (Dispatch). People and rooms carry their platform in their names
// (matrix:@alice:example.org, rocketchat:GENERAL), so a platform is a
// package implementing Platform plus one registration, never a change to
// the handlers or the domain.
package chat

import (
	"context"
	"fmt"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// Platform is what the core needs of a chat platform. Rooms and people
// are platform-qualified names; a platform is only ever handed its own.
type Platform interface {
	// Name is the platform's name, the prefix of its people and rooms.
	Name() disclosure.Platform
	// Self is the bot's own account on the platform.
	Self() disclosure.Person
	// Vouching is what the platform can vouch for about who sent a
	// message: the stated trust a team command counts with there.
	Vouching() Vouching
	// JoinRoom accepts an invitation to a room; LeaveRoom leaves it.
	JoinRoom(ctx context.Context, room string) error
	LeaveRoom(ctx context.Context, room, reason string) error
	// JoinedMemberCount is the number of people in a room, as the bot
	// last saw it.
	JoinedMemberCount(ctx context.Context, room string) (int, error)
	// Executors make the chat kinds of effect (outbox.KindSend, …) for
	// rooms and people of this platform.
	Executors() map[string]outbox.Executor
	// ParsePerson reads a person of this platform as the team writes one
	// in a command (Matrix: @bob:example.org); ok is false for anything
	// else.
	ParsePerson(s string) (p disclosure.Person, ok bool)
	// RoomLink is a link to a room that the platform's clients open.
	RoomLink(room string) string
}

// Vouching is how far a platform speaks for who sent a message.
type Vouching int

const (
	// VouchesForDevices: the platform signs devices (Matrix
	// cross-signing). A team member's identity is pinned, and a command
	// counts from a device that identity signed.
	VouchesForDevices Vouching = iota
	// VouchesForAccount: no device signing. A team member's account ID is
	// pinned as their identity, and a command counts from that account:
	// this trusts the server and the member's login.
	VouchesForAccount
)

// Encryption is a platform with end-to-end encrypted rooms, that can tell
// whether a person can take part in one.
type Encryption interface {
	HasEncryption(ctx context.Context, user disclosure.Person) (bool, error)
}

// Identities is a platform that publishes its people's identities: the
// core pins team members' and counts their commands by them.
type Identities interface {
	// Identity is who's identity as published now (DeviceSigned unset).
	Identity(ctx context.Context, who disclosure.Person) (disclosure.Identity, error)
	// TrustChanged is told after member's pinned identity changed, so
	// room keys reach the devices it signs from the next message on.
	TrustChanged(ctx context.Context, member disclosure.Person)
}

// RoomNames is a platform whose users know a room by its name
// (Rocket.Chat: #announcements) rather than by the ID its messages carry.
type RoomNames interface {
	// RoomName is how a reader names room ("#announcements"); "" when
	// the platform does not know it.
	RoomName(room string) string
}

// Platforms are the chat platforms secbot is on, by name.
type Platforms map[disclosure.Platform]Platform

// NewPlatforms registers the given platforms.
func NewPlatforms(platforms ...Platform) Platforms {
	out := Platforms{}
	for _, p := range platforms {
		out[p.Name()] = p
	}
	return out
}

// Of returns the platform a person or room is on.
func (ps Platforms) Of(qualified string) (Platform, error) {
	name := PlatformOf(qualified)
	if p, ok := ps[name]; ok {
		return p, nil
	}
	if name == "" {
		return nil, fmt.Errorf("%q names no chat platform", qualified)
	}
	return nil, fmt.Errorf("%q is on %s, which secbot is not on", qualified, name)
}

// IsSelf reports whether who is the bot on any of its platforms.
func (ps Platforms) IsSelf(who disclosure.Person) bool {
	p, err := ps.Of(string(who))
	return err == nil && p.Self() == who
}

// ParsePerson reads a person as the team writes one: platform-qualified,
// or in the native form of one of the platforms.
func (ps Platforms) ParsePerson(s string) (disclosure.Person, bool) {
	if p, err := ps.Of(s); err == nil && disclosure.RoomPlatform(s) != "" {
		_, native := disclosure.Split(s)
		return p.ParsePerson(native)
	}
	for _, p := range ps {
		if who, ok := p.ParsePerson(s); ok {
			return who, true
		}
	}
	return "", false
}

// PlatformOf is the platform a person or room is on. A name without one
// that starts with a Matrix sigil is from before platforms had names (a row
// queued by an older secbot, which spoke only Matrix): it is Matrix's.
func PlatformOf(qualified string) disclosure.Platform {
	if p := disclosure.RoomPlatform(qualified); p != "" {
		return p
	}
	if qualified != "" && (qualified[0] == '!' || qualified[0] == '@' || qualified[0] == '#') {
		return disclosure.Matrix
	}
	return ""
}

// Native is the platform's own ID in a qualified name (an unqualified
// Matrix name from an older secbot as it is).
func Native(qualified string) string {
	if disclosure.RoomPlatform(qualified) == "" {
		return qualified
	}
	_, native := disclosure.Split(qualified)
	return native
}

// Qualified is a name with its platform, also for an unqualified Matrix
// name from an older secbot.
func Qualified(name string) string {
	if p := PlatformOf(name); p != "" {
		return disclosure.On(p, Native(name))
	}
	return name
}

// Poster is a platform that posts a message of many parts into a room (an
// email's head, texts and files into its case room), each part once per
// outbox effect however often the effect is retried.
type Poster interface {
	// Ready returns nil once the target room exists (ErrNotReady before).
	Ready(ctx context.Context, to outbox.Target) error
	// Post posts parts into the target room for the effect e.
	Post(ctx context.Context, e store.Effect, to outbox.Target, parts []Part) error
	// PostsFiles reports whether Post takes files. A platform that does
	// not is never handed one: what would be a file is named instead (and
	// a text that would be one is cut).
	PostsFiles() bool
}

// Part is one piece of a post: a notice (Markdown, then Verbatim text
// shown as it is, never read as markup), or a file.
type Part struct {
	Markdown, Verbatim string
	File               *File
	// Else, if set, is posted instead when the part would be too large
	// for one message of the platform that cannot split it (a long text:
	// a short notice, then the text as a file).
	Else []Part
}

// File is a file to post.
type File struct {
	Name, Type string
	Data       []byte
}
