package config

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/enarx/secbot/disclosure"
)

// EnvRocketChatToken is where the Rocket.Chat personal access token comes
// from when [rocketchat] token_file is empty.
const EnvRocketChatToken = "SECBOT_ROCKETCHAT_TOKEN"

// RocketChat is the [rocketchat] section: the bot's user on a Rocket.Chat
// server. Optional; secbot needs [matrix], [rocketchat] or both.
type RocketChat struct {
	Server    string `toml:"server"`
	UserID    string `toml:"user_id"`
	TokenFile string `toml:"token_file"`
	// CommandPrefix starts a command on Rocket.Chat (default !sec).
	CommandPrefix string `toml:"command_prefix"`

	// Token is the bot user's personal access token.
	Token Secret `toml:"-"`
}

// Enabled reports whether the config names a Rocket.Chat server.
func (r RocketChat) Enabled() bool { return r.Server != "" || r.UserID != "" || r.TokenFile != "" }

// Enabled reports whether the config names a Matrix account.
func (m Matrix) Enabled() bool {
	return m.Homeserver != "" || m.UserID != "" || m.PasswordFile != "" || m.AccessTokenFile != "" || m.PickleKeyFile != ""
}

// rocketChatName is a Rocket.Chat username, or a channel's or private
// group's name: letters, digits and . _ - (Rocket.Chat's default rule).
var rocketChatName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (v *validator) validateRocketChat() {
	r := &v.cfg.RocketChat
	if !r.Enabled() {
		return
	}
	if u, err := url.Parse(r.Server); err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname()))) {
		v.add("rocketchat.server", r.Server, "must be an https:// URL like https://chat.example.org (http:// only on a loopback address: the token goes in every request)")
	}
	if strings.TrimSpace(r.UserID) == "" || strings.ContainsFunc(r.UserID, unicode.IsSpace) {
		v.add("rocketchat.user_id", r.UserID, "must be the bot user's ID (Administration → Users, or /api/v1/me)")
	}
	var where string
	if r.Token, where = v.secret("rocketchat.token_file", r.TokenFile, EnvRocketChatToken); where == "" {
		v.add("rocketchat.token_file", "", "the bot needs its personal access token (token_file or "+EnvRocketChatToken+")")
	}
	if r.CommandPrefix == "" {
		r.CommandPrefix = v.cfg.Matrix.CommandPrefix
	}
	if r.CommandPrefix == "" {
		r.CommandPrefix = "!sec"
	}
	if strings.ContainsFunc(r.CommandPrefix, unicode.IsSpace) {
		v.add("rocketchat.command_prefix", r.CommandPrefix, "must be one word, like !sec")
	}
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// person reads a person as the config names them: a Matrix user
// (@alice:example.org, or matrix:@alice:example.org) or a Rocket.Chat
// username (rocketchat:alice), on a platform the config sets up. It
// returns the person with their platform ("" after a problem).
func (v *validator) person(key, value string) disclosure.Person {
	if name, ok := strings.CutPrefix(value, "rocketchat:"); ok {
		switch {
		case !rocketChatName.MatchString(name):
			v.add(key, value, "not a Rocket.Chat username like rocketchat:alice")
		case !v.cfg.RocketChat.Enabled():
			v.add(key, value, "names a Rocket.Chat user, but there is no [rocketchat] section")
		default:
			return disclosure.PersonOn(disclosure.RocketChat, name)
		}
		return ""
	}
	u := v.userID(key, value)
	if u == "" {
		return ""
	}
	if !v.cfg.Matrix.Enabled() {
		v.add(key, value, "names a Matrix user, but there is no [matrix] section")
		return ""
	}
	return disclosure.PersonOn(disclosure.Matrix, string(u))
}

// room reads a room as the config names it: a Matrix room ID or alias
// (alone or with matrix:), or rocketchat:NAME, a channel's or private
// group's name. aliases says whether a Matrix alias will do.
func (v *validator) room(key, value string, aliases bool) string {
	if name, ok := strings.CutPrefix(value, "rocketchat:"); ok {
		switch {
		case !rocketChatName.MatchString(name):
			v.add(key, value, "not a Rocket.Chat room name like rocketchat:security-team")
		case !v.cfg.RocketChat.Enabled():
			v.add(key, value, "names a Rocket.Chat room, but there is no [rocketchat] section")
		default:
			return disclosure.On(disclosure.RocketChat, name)
		}
		return ""
	}
	room := matrixName(value)
	switch {
	case validRoomID(room), aliases && validAlias(room):
		if !v.cfg.Matrix.Enabled() {
			v.add(key, value, "names a Matrix room, but there is no [matrix] section")
			return ""
		}
		return disclosure.On(disclosure.Matrix, room)
	case aliases:
		v.add(key, value, "not a room ID (!id:example.org), an alias (#name:example.org) or rocketchat:NAME")
	default:
		v.add(key, value, "must be the team room's ID (not an alias), like !abc:example.org, or rocketchat:NAME (a private group)")
	}
	return ""
}
