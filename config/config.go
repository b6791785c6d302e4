// Package config loads secbot's TOML configuration, applies its defaults, reads its secrets and validates it, listing every problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
)

// The environment variables secrets are read from when their *_file key is
// empty. When the *_file key is set, the file must be readable and the
// variable is ignored.
const (
	EnvMatrixPassword    = "SECBOT_MATRIX_PASSWORD"
	EnvMatrixAccessToken = "SECBOT_MATRIX_ACCESS_TOKEN"
	EnvMatrixPickleKey   = "SECBOT_MATRIX_PICKLE_KEY"
	EnvGitHubToken       = "SECBOT_GITHUB_TOKEN"
	EnvGitHubPrivateKey  = "SECBOT_GITHUB_PRIVATE_KEY"
)

// MinPickleKeyLength is the shortest pickle key accepted, in characters.
const MinPickleKeyLength = 16

// MinRetention is the shortest [database] retention: the longest window
// that depends on handled-event IDs. An encrypted event noted before its
// key came is fetched again for up to 7 days, and a team command runs up to
// [matrix] command_max_age (at most MaxCommandMaxAge) after it was sent.
const MinRetention = 7 * 24 * time.Hour

// MaxCommandMaxAge bounds [matrix] command_max_age.
const MaxCommandMaxAge = 7 * 24 * time.Hour

// Config is the whole configuration: the TOML keys, then what validation
// derived from them (typed IDs, parsed durations, secrets), which are
// tagged toml:"-" and only filled by Load and Parse.
type Config struct {
	Matrix     Matrix       `toml:"matrix"`
	RocketChat RocketChat   `toml:"rocketchat"`
	Database   Database     `toml:"database"`
	GitHub     GitHub       `toml:"github"`
	Email      Email        `toml:"email"`
	Team       Team         `toml:"team"`
	Announce   Announce     `toml:"announce"`
	SLA        SLA          `toml:"sla"`
	Escalation []Escalation `toml:"escalation"`
	Embargo    Embargo      `toml:"embargo"`
	Intake     Intake       `toml:"intake"`
	Templates  Templates    `toml:"templates"`
	HTTP       HTTP         `toml:"http"`

	// Policy is [sla]'s promises, parsed.
	Policy disclosure.SLA `toml:"-"`
	// Calendar is [sla]'s timezone, working_days and holidays.
	Calendar disclosure.Calendar `toml:"-"`
	// Ladder is the [[escalation]] steps, parsed.
	Ladder disclosure.Ladder `toml:"-"`
	// Deprecations are keys still read but to be replaced, one line each
	// for check-config and the log.
	Deprecations []string `toml:"-"`
	// Warnings are what is allowed but unsafe (a secret file other users
	// can read), one line each for check-config and the log.
	Warnings []string `toml:"-"`
}

// Matrix is the [matrix] section: the bot's account.
type Matrix struct {
	Homeserver      string `toml:"homeserver"`
	UserID          string `toml:"user_id"`
	PasswordFile    string `toml:"password_file"`
	AccessTokenFile string `toml:"access_token_file"`
	DeviceName      string `toml:"device_name"`
	PickleKeyFile   string `toml:"pickle_key_file"`
	// RecoveryKeyFile holds the recovery key of the bot's cross-signing
	// identity: written on first start, read on later ones.
	RecoveryKeyFile string `toml:"recovery_key_file"`
	CommandPrefix   string `toml:"command_prefix"`
	// CommandMaxAge is how long after it was sent a team command still
	// runs: an older one (secbot was down, its key came late, or the
	// homeserver delivered it again) is refused.
	CommandMaxAge string `toml:"command_max_age"`

	// CommandMaxAgeValue is CommandMaxAge, parsed.
	CommandMaxAgeValue time.Duration `toml:"-"`
	// UserIDValue is UserID, validated.
	UserIDValue id.UserID `toml:"-"`
	// Password and AccessToken: exactly one is set.
	Password    Secret `toml:"-"`
	AccessToken Secret `toml:"-"`
	// PickleKey encrypts the end-to-end keys at rest.
	PickleKey Secret `toml:"-"`
}

// Database is the [database] section.
type Database struct {
	// Path is the SQLite file; after validation it is absolute when the
	// configuration was loaded from a file. It is "" when URL is set.
	Path string `toml:"path"`
	// URL is a PostgreSQL database (postgres://…), instead of Path.
	URL string `toml:"url"`
	// PasswordFile holds the PostgreSQL password (else the environment's
	// SECBOT_DATABASE_PASSWORD; none: the server needs no password).
	PasswordFile string `toml:"password_file"`
	// Password is the PostgreSQL password, read by validation.
	Password Secret `toml:"-"`
	// Retention is how long finished work (handled-event IDs, made or
	// failed outbox rows) is kept before a timer prunes it.
	Retention string `toml:"retention"`
	// RetentionSpan is Retention, parsed.
	RetentionSpan disclosure.Span `toml:"-"`
}

// GitHub is the [github] section: the repositories whose advisories
// secbot drafts and watches, and how it authenticates.
type GitHub struct {
	APIURL         string `toml:"api_url"`
	TokenFile      string `toml:"token_file"`
	AppID          int64  `toml:"app_id"`
	InstallationID int64  `toml:"installation_id"`
	PrivateKeyFile string `toml:"private_key_file"`
	// Repositories are owner/name; the first is where new chat cases'
	// advisories are drafted, and cases may move between them.
	Repositories []string `toml:"repositories"`
	// Organizations are watched whole for private vulnerability reports.
	Organizations []string `toml:"organizations"`
	// WatchReports opens a case for each private vulnerability report.
	WatchReports bool `toml:"watch_reports"`
	// PollEvery is how often the watched repositories are asked.
	PollEvery string `toml:"poll_every"`
	// Owner and Repo are the one repository of older configs (deprecated
	// for repositories).
	Owner string `toml:"owner"`
	Repo  string `toml:"repo"`

	// Repos is Repositories (or Owner/Repo), validated: the first is the
	// default.
	Repos []string `toml:"-"`
	// PollInterval is PollEvery, parsed.
	PollInterval time.Duration `toml:"-"`
	// Token is set in token mode.
	Token Secret `toml:"-"`
	// PrivateKey is the GitHub App's PEM private key, set in app mode.
	PrivateKey Secret `toml:"-"`
}

// Enabled reports whether a repository is configured for advisories; with
// none, secbot runs without GitHub.
func (g GitHub) Enabled() bool {
	return len(g.Repositories) > 0 || len(g.Organizations) > 0 || g.Owner != "" || g.Repo != ""
}

// DefaultRepository is where new chat cases' advisories are drafted.
func (g GitHub) DefaultRepository() string {
	if len(g.Repos) == 0 {
		return ""
	}
	return g.Repos[0]
}

// The values of AuthMode.
const (
	AuthToken = "token"
	AuthApp   = "app"
	AuthNone  = "none"
)

// AuthMode says how secbot authenticates to GitHub: "token", "app" (a
// GitHub App installation) or "none".
func (g GitHub) AuthMode() string {
	switch {
	case g.AppID != 0 || g.InstallationID != 0 || g.PrivateKey != "":
		return AuthApp
	case g.Token != "":
		return AuthToken
	}
	return AuthNone
}

// Team is the [team] section: the security team.
type Team struct {
	Room        string   `toml:"room"`
	Members     []string `toml:"members"`
	Rotation    bool     `toml:"rotation"`
	Coordinator string   `toml:"coordinator"`
	Backup      string   `toml:"backup"`
	// Identities are members' cross-signing master keys (unpadded
	// base64); when set, no identity is pinned on first sight.
	Identities map[string]string `toml:"identities"`

	// People, CoordinatorPerson, BackupPerson and RoomName are the keys
	// above, validated, with their platforms (a Rocket.Chat room by its
	// name, which the platform finds at start). Identities is then keyed
	// by the person with their platform.
	People                          []disclosure.Person `toml:"-"`
	CoordinatorPerson, BackupPerson disclosure.Person   `toml:"-"`
	RoomName                        string              `toml:"-"`
	// RoomID, MemberIDs, CoordinatorID and BackupID are the Matrix ones
	// among them.
	RoomID        id.RoomID   `toml:"-"`
	MemberIDs     []id.UserID `toml:"-"`
	CoordinatorID id.UserID   `toml:"-"`
	BackupID      id.UserID   `toml:"-"`
}

// Announce is the [announce] section: where published advisories are
// announced.
type Announce struct {
	// Rooms are Matrix room IDs (!id:server) or aliases (#name:server),
	// or Rocket.Chat channels (rocketchat:NAME).
	Rooms []string `toml:"rooms"`
	// Qualified are Rooms, validated, with their platforms.
	Qualified []string `toml:"-"`
}

// SLA is the [sla] section: the policy's promises and the calendar working
// days are counted in. Config.Policy and Config.Calendar hold them parsed.
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

// Escalation is one [[escalation]] step; Config.Ladder holds them parsed.
type Escalation struct {
	After  string `toml:"after"`
	Notify string `toml:"notify"`
}

// Intake is the [intake] section.
type Intake struct {
	// MaxNewCasesPerHour caps how many new cases get their rooms, advisories
	// and team invites per hour, across all reporters (0: no cap). Past it,
	// every reporter still gets their answer and case ID at once; the rest
	// follows in order as the cap allows.
	MaxNewCasesPerHour int `toml:"max_new_cases_per_hour"`
}

// Embargo is the [embargo] section.
type Embargo struct {
	WarnAfter string `toml:"warn_after"`

	// WarnAfterSpan is WarnAfter, parsed.
	WarnAfterSpan disclosure.Span `toml:"-"`
}

// Templates is the [templates] section.
type Templates struct {
	// Dir overrides the embedded templates; "" uses them as they are.
	Dir string `toml:"dir"`
}

// HTTP is the [http] section.
type HTTP struct {
	// Listen is host:port for /metrics and /healthz; "" disables them.
	Listen string `toml:"listen"`
}

// Defaults returns the configuration before the file is read. The ladder is
// not in it: DefaultEscalation applies only when the file has no
// [[escalation]].
func Defaults() Config {
	return Config{
		Matrix:   Matrix{DeviceName: "secbot", CommandPrefix: "!sec", CommandMaxAge: "6h"},
		Database: Database{Path: "secbot.db", Retention: "30 days"},
		GitHub:   GitHub{APIURL: "https://api.github.com/", WatchReports: true, PollEvery: "2m", Repositories: []string{}, Organizations: []string{}},
		Email:    Email{Mailbox: "INBOX", MaxAttachment: "20MB", PollEvery: "1m"},
		SLA: SLA{
			Acknowledge: "48h", DetailedResponse: "96h", UpdateInterval: "5 working days",
			RemindBefore: "12h", RepeatEvery: "24h", Timezone: "UTC",
			WorkingDays: []string{"Mon", "Tue", "Wed", "Thu", "Fri"},
			Holidays:    []string{},
		},
		Embargo: Embargo{WarnAfter: "14 days"},
		Intake:  Intake{MaxNewCasesPerHour: 30},
		HTTP:    HTTP{Listen: "127.0.0.1:9464"},
	}
}

// DefaultEscalation is the ladder when the file names none: the
// coordinator at once, the backup a day later, the team a day after that.
var DefaultEscalation = []Escalation{
	{After: "0s", Notify: "coordinator"},
	{After: "24h", Notify: "backup"},
	{After: "48h", Notify: "team"},
}

// Load reads and validates the file at path with the process environment.
// Relative paths in it (database.path, templates.dir, every *_file) are
// taken from the file's folder. A secret comes from the file its *_file key
// names when that key is set (the file must then be readable; one trailing
// newline is trimmed), otherwise from its SECBOT_* environment variable.
// The error is always Problems.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{Key: "config", Value: path, Why: "cannot read the file: " + pathReason(err)}}
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, Problems{{Key: "config", Value: path, Why: err.Error()}}
	}
	return Parse(data, dir, os.Getenv)
}

// Parse reads, defaults and validates TOML; relative paths are taken from
// baseDir and environment variables from getenv (nil: none). It returns
// either the configuration or Problems listing everything wrong with it.
func Parse(data []byte, baseDir string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg := Defaults()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return nil, Problems{tomlProblem(data, err)}
	}
	v := &validator{cfg: &cfg, baseDir: baseDir, getenv: getenv}
	unknown := map[string]bool{}
	for _, key := range md.Undecoded() {
		unknown[key.String()] = true
		// An unknown table is one problem, not one per key in it too.
		if len(key) == 1 || !unknown[key[:len(key)-1].String()] {
			v.unknown(key)
		}
	}
	if cfg.Database.URL != "" && !md.IsDefined("database", "path") {
		// The default SQLite file gives way to PostgreSQL.
		cfg.Database.Path = ""
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

// secretKeys are keys someone might write a secret under by mistake, with
// where the secret belongs instead.
var secretKeys = map[string]string{
	"password":      "password_file or " + EnvMatrixPassword,
	"access_token":  "access_token_file or " + EnvMatrixAccessToken,
	"pickle_key":    "pickle_key_file or " + EnvMatrixPickleKey,
	"token":         "token_file or " + EnvGitHubToken,
	"private_key":   "private_key_file or " + EnvGitHubPrivateKey,
	"smtp_password": "[email] password_file or " + EnvEmailPassword,
	"imap_password": "[email] password_file or " + EnvEmailPassword,
}

func (v *validator) unknown(key toml.Key) {
	why := "unknown key (config.example.toml lists every key there is)"
	if where, ok := secretKeys[strings.ToLower(key[len(key)-1])]; ok {
		why = "unknown key: secrets never go in this file; use " + where
	}
	v.add(key.String(), "", why)
}

// secretish finds words that suggest a line of TOML holds a secret.
var secretish = regexp.MustCompile(`(?i)pass|token|secret|key|pickle|pem`)

// quoted finds quoted text in a TOML parser message, which may be a value.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)

// tomlError is how the decoder words a type error, which is not a
// toml.ParseError.
var tomlError = regexp.MustCompile(`^toml: line (\d+)(?: \(last key "((?:[^"\\]|\\.)*)"\))?: (.*)$`)

// tomlProblem turns a TOML syntax or type error into a Problem. Parser
// messages may quote the text they choke on; when that text is on a line
// that looks like it holds a secret, the quotes are blanked.
func tomlProblem(data []byte, err error) Problem {
	msg, line, last := oneLine(err.Error()), 0, ""
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg, line, last = oneLine(pe.Message), pe.Position.Line, pe.LastKey
	} else if m := tomlError.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		last, msg = m[2], m[3]
	}
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) || secretish.MatchString(lines[line-1]) || secretish.MatchString(last) {
		msg = quoted.ReplaceAllString(msg, `"…"`)
	}
	key, where := "config", "not valid TOML"
	if line > 0 {
		where += fmt.Sprintf(" at line %d", line)
	}
	switch {
	case strings.HasPrefix(msg, "incompatible types") && last != "":
		key, where, msg = last, fmt.Sprintf("wrong type at line %d", line), strings.TrimPrefix(msg, "incompatible types: ")
	case last != "":
		where += " (after key " + last + ")"
	}
	return Problem{Key: key, Why: where + ": " + msg}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
