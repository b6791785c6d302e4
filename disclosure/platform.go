package disclosure

import "strings"

// Platform names a chat platform ("matrix", "rocketchat"): where a chat
// person or room lives. The domain compares platforms, never looks into
// what a platform's IDs mean.
type Platform string

// The chat platforms secbot speaks. A new platform is a new name here only
// because the config names people with it; nothing in the policy depends
// on which one it is.
const (
	Matrix     Platform = "matrix"
	RocketChat Platform = "rocketchat"
)

// On names native (a platform's own ID of a user or a room) on a
// platform: "matrix:@alice:example.org", "rocketchat:alice".
func On(platform Platform, native string) string { return string(platform) + ":" + native }

// PersonOn is the chat person native on platform.
func PersonOn(platform Platform, native string) Person { return Person(On(platform, native)) }

// Split parses a platform-qualified ID (a person or a room) into its
// platform and the platform's own ID. An ID without a platform (an email
// or GitHub person, or a malformed one) has platform "".
func Split(qualified string) (Platform, string) {
	name, native, ok := strings.Cut(qualified, ":")
	if !ok || !isPlatformName(name) || name == "mailto" || name == "github" {
		return "", qualified
	}
	return Platform(name), native
}

// isPlatformName is true for a name made of lowercase ASCII letters only,
// which no Matrix ID's sigil (@, !, #) nor any mail or GitHub name is.
func isPlatformName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// Platform is the chat platform a chat person lives on ("" for email and
// GitHub people).
func (p Person) Platform() Platform {
	platform, _ := Split(string(p))
	return platform
}

// Native is the person's ID on their own platform (their address for an
// email person, their login for a GitHub person).
func (p Person) Native() string {
	switch p.Channel() {
	case ChannelEmail:
		return p.Address()
	case ChannelGitHub:
		return strings.TrimPrefix(string(p), githubPrefix)
	}
	_, native := Split(string(p))
	return native
}

// RoomPlatform is the platform a room lives on ("" when the room names
// none).
func RoomPlatform(room string) Platform {
	platform, _ := Split(room)
	return platform
}

// ReadsCaseRoom reports whether who can be in a case room made on home: a
// chat person of that platform. Anyone else (an email or GitHub reporter,
// a chat reporter on another platform) reads only what is sent to them.
func ReadsCaseRoom(who Person, home Platform) bool {
	return who.Channel() == ChannelChat && who.Platform() == home
}

// TeamPlatform is the platform of the team's room: where case rooms live
// ("" when no team room is configured).
func (p *Policy) TeamPlatform() Platform { return RoomPlatform(p.TeamRoom) }

// Prefix is the command prefix on platform (the default one when the
// platform names none of its own).
func (p *Policy) Prefix(platform Platform) string {
	if prefix, ok := p.CommandPrefixes[platform]; ok && prefix != "" {
		return prefix
	}
	return p.CommandPrefix
}
