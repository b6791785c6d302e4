package config

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
)

// Summary describes a validated configuration in a few lines for
// check-config: who the bot is, the team, GitHub, the promises and the
// ladder. It never shows a secret.
func (c *Config) Summary() string {
	var b strings.Builder
	if c.Matrix.Enabled() {
		login := "password"
		if c.Matrix.AccessToken != "" {
			login = "access token"
		}
		fmt.Fprintf(&b, "matrix: %s as %s, device %q, login by %s, commands start with %s and run up to %s after they were sent\n",
			c.Matrix.Homeserver, c.Matrix.UserID, c.Matrix.DeviceName, login, c.Matrix.CommandPrefix, c.Matrix.CommandMaxAgeValue)
	}
	if c.RocketChat.Enabled() {
		fmt.Fprintf(&b, "rocketchat: %s as user %s, personal access token, commands start with %s; rooms there are private but not end-to-end encrypted\n",
			c.RocketChat.Server, c.RocketChat.UserID, c.RocketChat.CommandPrefix)
	}
	db := "SQLite " + c.Database.Path
	if c.Database.Postgres() {
		db = "PostgreSQL " + c.Database.URL
		if c.Database.Password != "" {
			db += " (with a password)"
		}
	}
	fmt.Fprintf(&b, "database: %s, finished work kept %s\n", db, c.Database.RetentionSpan)
	rotation := ""
	if c.Team.Rotation {
		rotation = "; handlers suggested in rotation"
	}
	fmt.Fprintf(&b, "team: %d members in %s; coordinator %s, backup %s%s\n",
		len(c.Team.Members), c.Team.Room, c.Team.Coordinator, c.Team.Backup, rotation)
	fmt.Fprintf(&b, "github: %s\n", c.githubSummary())
	fmt.Fprintf(&b, "email: %s\n", c.emailSummary())
	fmt.Fprintf(&b, "promises: acknowledge in %s, detailed response in %s, updates every %s; reminders %s before\n",
		c.Policy.Acknowledge, c.Policy.DetailedResponse, c.Policy.UpdateInterval, c.Policy.RemindBefore)
	fmt.Fprintf(&b, "calendar: %s, working days %s, %d holiday(s)\n",
		c.SLA.Timezone, strings.Join(c.SLA.WorkingDays, " "), len(c.SLA.Holidays))
	fmt.Fprintf(&b, "escalation: %s; the last step repeats every %s\n", ladderSummary(c.Ladder), c.Policy.RepeatEvery)
	fmt.Fprintf(&b, "embargo: a warning beyond %s\n", c.Embargo.WarnAfterSpan)
	fmt.Fprintf(&b, "announcements: %d room(s)\n", len(c.Announce.Rooms))
	templates := "embedded"
	if c.Templates.Dir != "" {
		templates = "embedded, overridden from " + c.Templates.Dir
	}
	fmt.Fprintf(&b, "templates: %s\n", templates)
	listen := "off"
	if c.HTTP.Listen != "" {
		listen = "/metrics and /healthz on " + c.HTTP.Listen
	}
	fmt.Fprintf(&b, "http: %s", listen)
	return b.String()
}

func (c *Config) githubSummary() string {
	if !c.GitHub.Enabled() {
		return "disabled (no [github] repositories)"
	}
	how := "no credentials"
	switch c.GitHub.AuthMode() {
	case AuthToken:
		how = "a token"
	case AuthApp:
		how = fmt.Sprintf("a GitHub App (app %d, installation %d)", c.GitHub.AppID, c.GitHub.InstallationID)
	}
	watch := "private vulnerability reports not watched"
	if c.GitHub.WatchReports {
		watch = "private vulnerability reports watched every " + c.GitHub.PollInterval.String()
		if len(c.GitHub.Organizations) > 0 {
			watch += " in organizations " + strings.Join(c.GitHub.Organizations, ", ") + " and"
		}
		watch += " in the repositories"
	}
	return fmt.Sprintf("%s at %s, authenticated as %s; new cases' advisories in %s; %s", strings.Join(c.GitHub.Repos, ", "), c.GitHub.APIURL, how, c.GitHub.DefaultRepository(), watch)
}

func ladderSummary(l disclosure.Ladder) string {
	steps := make([]string, len(l))
	for i, s := range l {
		who := s.Notify.Role
		if who == "user" {
			who = s.Notify.User
		}
		steps[i] = fmt.Sprintf("%s after %s", who, s.After)
	}
	return strings.Join(steps, ", ")
}

// MarshalZerologObject logs the configuration's shape, never a secret:
// log.Info().Object("config", cfg).
func (c *Config) MarshalZerologObject(e *zerolog.Event) {
	mode := AuthNone
	if c.GitHub.Enabled() {
		mode = c.GitHub.AuthMode()
	}
	e.Str("homeserver", c.Matrix.Homeserver).
		Str("user_id", c.Matrix.UserID).
		Str("device_name", c.Matrix.DeviceName).
		Str("database", c.Database.Where()).
		Str("team_room", c.Team.Room).
		Int("team_size", len(c.Team.Members)).
		Str("coordinator", c.Team.Coordinator).
		Str("backup", c.Team.Backup).
		Bool("github", c.GitHub.Enabled()).
		Str("github_auth", mode).
		Str("ladder", ladderSummary(c.Ladder)).
		Int("announce_rooms", len(c.Announce.Rooms)).
		Str("http_listen", c.HTTP.Listen)
}

func (c *Config) emailSummary() string {
	e := c.Email
	if !e.Enabled() {
		return "off (no [email])"
	}
	return fmt.Sprintf("%s, folder %q on %s, answers through %s, attachments up to %s", e.Address, e.Mailbox, e.IMAP.Redacted(), e.SMTP.Redacted(), e.MaxAttachment)
}
