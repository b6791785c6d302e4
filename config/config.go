// Package config loads secbot's TOML configuration, applies defaults,
// reads secrets from files or the environment, and validates everything,
// listing every problem at once.
package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
)

// Secret is a value that must never be printed or logged.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalText hides the secret from encoders (loggers included).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is the whole configuration: the TOML keys, then what validation
// derived from them (typed IDs, parsed durations, secrets).
type Config struct {
	Matrix     Matrix       `toml:"matrix"`
	Database   Database     `toml:"database"`
	GitHub     GitHub       `toml:"github"`
	Team       Team         `toml:"team"`
	Announce   Announce     `toml:"announce"`
	SLA        SLA          `toml:"sla"`
	Escalation []Escalation `toml:"escalation"`
	Embargo    Embargo      `toml:"embargo"`
	Templates  Templates    `toml:"templates"`
	HTTP       HTTP         `toml:"http"`

	// Derived by validation.
	Policy   disclosure.SLA      `toml:"-"`
	Calendar disclosure.Calendar `toml:"-"`
	Ladder   disclosure.Ladder   `toml:"-"`
}

// Matrix is the [matrix] section.
type Matrix struct {
	Homeserver      string `toml:"homeserver"`
	UserID          string `toml:"user_id"`
	PasswordFile    string `toml:"password_file"`
	AccessTokenFile string `toml:"access_token_file"`
	DeviceName      string `toml:"device_name"`
	PickleKeyFile   string `toml:"pickle_key_file"`
	CommandPrefix   string `toml:"command_prefix"`

	UserIDValue id.UserID `toml:"-"`
	Password    Secret    `toml:"-"`
	AccessToken Secret    `toml:"-"`
	PickleKey   Secret    `toml:"-"`
}

// Database is the [database] section.
type Database struct {
	Path string `toml:"path"`
}

// GitHub is the [github] section.
type GitHub struct {
	APIURL         string `toml:"api_url"`
	TokenFile      string `toml:"token_file"`
	AppID          int64  `toml:"app_id"`
	InstallationID int64  `toml:"installation_id"`
	PrivateKeyFile string `toml:"private_key_file"`
	Owner          string `toml:"owner"`
	Repo           string `toml:"repo"`

	Token      Secret `toml:"-"`
	PrivateKey Secret `toml:"-"`
}

// Enabled reports whether a repository is configured for advisories.
func (g GitHub) Enabled() bool { return g.Owner != "" && g.Repo != "" }

// AuthMode is "token", "app" or "none".
func (g GitHub) AuthMode() string {
	switch {
	case g.AppID != 0 || g.InstallationID != 0 || g.PrivateKey != "":
		return "app"
	case g.Token != "":
		return "token"
	}
	return "none"
}

// Team is the [team] section.
type Team struct {
	Room        string   `toml:"room"`
	Members     []string `toml:"members"`
	Rotation    bool     `toml:"rotation"`
	Coordinator string   `toml:"coordinator"`
	Backup      string   `toml:"backup"`

	RoomID        id.RoomID   `toml:"-"`
	MemberIDs     []id.UserID `toml:"-"`
	CoordinatorID id.UserID   `toml:"-"`
	BackupID      id.UserID   `toml:"-"`
}

// Announce is the [announce] section.
type Announce struct {
	Rooms []string `toml:"rooms"`
}

// SLA is the [sla] section.
type SLA struct {
	Acknowledge      string   `toml:"acknowledge"`
	DetailedResponse string   `toml:"detailed_response"`
	UpdateInterval   string   `toml:"update_interval"`
	RemindBefore     string   `toml:"remind_before"`
	RepeatEvery      string   `toml:"repeat_every"`
	Timezone         string   `toml:"timezone"`
	WorkingDays      []string `toml:"working_days"`
	Holidays         []string `toml:"holidays"`
}

// Escalation is one [[escalation]] step.
type Escalation struct {
	After  string `toml:"after"`
	Notify string `toml:"notify"`
}

// Embargo is the [embargo] section.
type Embargo struct {
	WarnAfter string `toml:"warn_after"`

	WarnAfterSpan disclosure.Span `toml:"-"`
}

// Templates is the [templates] section.
type Templates struct {
	Dir string `toml:"dir"`
}

// HTTP is the [http] section.
type HTTP struct {
	Listen string `toml:"listen"`
}

// Defaults returns the configuration before the file is read.
func Defaults() Config {
	return Config{
		Matrix:   Matrix{DeviceName: "secbot", CommandPrefix: "!sec"},
		Database: Database{Path: "secbot.db"},
		GitHub:   GitHub{APIURL: "https://api.github.com/"},
		SLA: SLA{
			Acknowledge: "48h", DetailedResponse: "96h", UpdateInterval: "5 working days",
			RemindBefore: "12h", RepeatEvery: "24h", Timezone: "UTC",
			WorkingDays: []string{"Mon", "Tue", "Wed", "Thu", "Fri"},
		},
		Embargo: Embargo{WarnAfter: "14 days"},
		HTTP:    HTTP{Listen: "127.0.0.1:9464"},
	}
}

// DefaultEscalation is the ladder when the file names none: the
// coordinator at once, the backup a day later, the team a day after that.
var DefaultEscalation = []Escalation{{After: "0s", Notify: "coordinator"}, {After: "24h", Notify: "backup"}, {After: "48h", Notify: "team"}}

// Load reads and validates the file at path. Secrets come from the files
// its *_file keys name (relative to the config file) or from SECBOT_*
// environment variables.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{Key: "config", Value: path, Why: err.Error()}}
	}
	return Parse(data, filepath.Dir(path), os.Getenv)
}

// Parse reads and validates TOML; relative paths are taken from baseDir
// and environment variables from getenv.
func Parse(data []byte, baseDir string, getenv func(string) string) (*Config, error) {
	cfg := Defaults()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return nil, Problems{{Key: "config", Value: "", Why: "not valid TOML: " + oneLine(err.Error())}}
	}
	v := &validator{cfg: &cfg, baseDir: baseDir, getenv: getenv}
	for _, key := range md.Undecoded() {
		v.add(key.String(), "", "unknown key (see config.example.toml for the keys there are)")
	}
	if !md.IsDefined("escalation") {
		cfg.Escalation = append([]Escalation(nil), DefaultEscalation...)
	}
	v.validate()
	if len(v.problems) > 0 {
		return nil, v.problems
	}
	return &cfg, nil
}

// Summary describes the configuration in a few lines, without secrets.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "homeserver: %s as %s (login by %s)\n", c.Matrix.Homeserver, c.Matrix.UserID, map[bool]string{true: "access token", false: "password"}[c.Matrix.AccessToken != ""])
	fmt.Fprintf(&b, "database: %s\n", c.Database.Path)
	fmt.Fprintf(&b, "team: %d members in %s; coordinator %s, backup %s\n", len(c.Team.Members), c.Team.Room, c.Team.Coordinator, c.Team.Backup)
	if c.GitHub.Enabled() {
		fmt.Fprintf(&b, "github: %s/%s at %s, authenticated as a %s\n", c.GitHub.Owner, c.GitHub.Repo, c.GitHub.APIURL, map[string]string{"token": "token", "app": "GitHub App"}[c.GitHub.AuthMode()])
	} else {
		b.WriteString("github: disabled (no [github] owner and repo)\n")
	}
	fmt.Fprintf(&b, "promises: acknowledge in %s, detailed response in %s, updates every %s (%s)\n", c.Policy.Acknowledge, c.Policy.DetailedResponse, c.Policy.UpdateInterval, c.SLA.Timezone)
	steps := make([]string, 0, len(c.Escalation))
	for _, e := range c.Escalation {
		steps = append(steps, e.Notify+" after "+e.After)
	}
	fmt.Fprintf(&b, "escalation: %s; the last repeats every %s\n", strings.Join(steps, ", "), c.Policy.RepeatEvery)
	fmt.Fprintf(&b, "announcements: %d room(s)", len(c.Announce.Rooms))
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
