package disclosure

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Person is someone the bot deals with, as their channel names them: a
// chat user with their platform (matrix:@alice:example.org,
// rocketchat:alice), mailto:ADDRESS for someone who writes by email, or
// github:LOGIN. The domain looks no further inside it than its channel and
// platform.
type Person string

// Channel is how a reporter reached the team; the policy is the same,
// only the way the bot talks to the reporter differs.
type Channel string

// The channels.
const (
	// ChannelChat is a chat (any platform): the reporter reads the case
	// room, or their DM when the case room is on another platform.
	ChannelChat Channel = "chat"
	// ChannelGitHub is a GitHub private vulnerability report: the reporter
	// is on the advisory, which has no API for comments, so the team
	// answers there.
	ChannelGitHub Channel = "github"
	// ChannelEmail is the security mailbox: the reporter reads only what
	// is mailed to them, and is never in a room.
	ChannelEmail Channel = "email"
)

// GitHubPerson is a GitHub user as a person of the domain.
func GitHubPerson(login string) Person { return Person(githubPrefix + login) }

// String is how the person is shown to people (string(p) is their ID): a
// chat person by their platform's own ID when that ID names its server, as
// a Matrix ID does (@alice:example.org), else with their platform
// (rocketchat:alice); email and GitHub people as they are.
func (p Person) String() string { return Show(string(p)) }

// Show is how a platform-qualified person or room is shown to people: by
// the platform's own ID when that ID names its server (Matrix's do:
// @alice:example.org, !room:example.org), else qualified
// (rocketchat:alice); anything else as it is.
func Show(qualified string) string {
	platform, native := Split(qualified)
	if platform != "" && strings.Contains(native, ":") {
		return native
	}
	return qualified
}

// The prefixes of people who are not chat users.
const (
	mailto       = "mailto:"
	githubPrefix = "github:"
)

// EmailPerson is the person writing from an email address.
func EmailPerson(address string) Person { return Person(mailto + strings.ToLower(address)) }

// Channel is how the bot reaches the person.
func (p Person) Channel() Channel {
	switch {
	case strings.HasPrefix(string(p), mailto):
		return ChannelEmail
	case strings.HasPrefix(string(p), githubPrefix):
		return ChannelGitHub
	}
	return ChannelChat
}

// Address is an email person's address ("" for anyone else).
func (p Person) Address() string {
	addr, _ := strings.CutPrefix(string(p), mailto)
	if p.Channel() != ChannelEmail {
		return ""
	}
	return addr
}

// Policy is everything the policy decides with, from the config: the
// promises and the calendar they count in, who is on the team and the
// ladder, and where the team works. It is replaced whole on a reload.
type Policy struct {
	SLA      SLA
	Calendar Calendar
	Ladder   Ladder

	Team        []Person
	Coordinator Person
	Backup      Person
	// Identities are team members' cross-signing master keys from the
	// config; when set, no identity is pinned on first sight.
	Identities map[Person]string
	// PlainRooms are the platforms whose rooms are not end-to-end
	// encrypted (Rocket.Chat's, to a bot): what is said there is told so.
	PlainRooms map[Platform]bool
	// TeamRoom is the team's room ("" when none is configured), with its
	// platform; case rooms are made on that platform.
	TeamRoom string
	// Email is the security address reporters may write to ("" when
	// secbot reads no mailbox).
	Email string
	// Rotation suggests a handler round-robin for each new case.
	Rotation bool

	// CommandPrefix starts a command on the team's platform, and on any
	// platform that has none of its own in CommandPrefixes.
	CommandPrefix   string
	CommandPrefixes map[Platform]string
	// GitHub is true when cases get advisories.
	GitHub bool
	// Repository is owner/repo, named in announcements: the default
	// repository, where new chat cases' advisories are drafted.
	Repository string
	// Repositories are where a case's advisory may move (owner/name); a
	// repository of Organizations may be a target too.
	Repositories, Organizations []string
	// AnnounceRooms get the announcement of a published advisory.
	AnnounceRooms []string
	// EmbargoWarnAfter is how long an embargo may be before a warning.
	EmbargoWarnAfter Span
	// MaxNewCasesPerHour caps new cases' set-up per hour (0: no cap).
	MaxNewCasesPerHour int
}

// IsTeam reports whether who is on the security team.
func (p *Policy) IsTeam(who Person) bool { return who != "" && slices.Contains(p.Team, who) }

// Local is t in the policy's time zone.
func (p *Policy) Local(t time.Time) time.Time { return t.In(p.Calendar.loc()) }

// FormatTime is how times appear in the bot's answers.
func (p *Policy) FormatTime(t time.Time) string { return p.Local(t).Format("2006-01-02 15:04 MST") }

// Contact is the person (or the team room) a ladder step reaches, and the
// role the policy gives them.
func (p *Policy) Contact(step LadderStep) (role string, who Person) {
	switch step.Notify.Role {
	case "coordinator":
		return "security coordinator", p.Coordinator
	case "backup":
		return "backup contact", p.Backup
	case "user":
		return "escalation contact", Person(step.Notify.User)
	}
	return "whole security team", ""
}

// InForce holds the one policy in force, read by the handlers, the timers
// and the GitHub effects alike and swapped whole by a reload, so no copy
// can lag behind.
type InForce struct{ p atomic.Pointer[Policy] }

// NewInForce puts p in force.
func NewInForce(p Policy) *InForce {
	f := &InForce{}
	f.Set(p)
	return f
}

// Get returns the policy in force; callers must not modify it.
func (f *InForce) Get() *Policy { return f.p.Load() }

// Set replaces the policy in force.
func (f *InForce) Set(p Policy) { f.p.Store(&p) }
