package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	Key   string
	Value string
	Why   string
}

// Problems is every problem found; it is the error Load and Parse return.
type Problems []Problem

func (p Problems) Error() string {
	lines := make([]string, len(p))
	for i, pr := range p {
		if pr.Value == "" {
			lines[i] = fmt.Sprintf("%s: %s", pr.Key, pr.Why)
		} else {
			lines[i] = fmt.Sprintf("%s = %q: %s", pr.Key, pr.Value, pr.Why)
		}
	}
	return strings.Join(lines, "\n")
}

type validator struct {
	cfg      *Config
	baseDir  string
	getenv   func(string) string
	problems Problems
}

func (v *validator) add(key, value, why string) {
	v.problems = append(v.problems, Problem{Key: key, Value: value, Why: why})
}

func (v *validator) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.baseDir, p)
}

// secret reads a secret from the file named by key (if set) or else from
// the environment variable env. The value itself is never reported.
func (v *validator) secret(key, file, env string) Secret {
	if file != "" {
		data, err := os.ReadFile(v.path(file))
		if err != nil {
			v.add(key, file, "cannot read the secret file: "+strings.TrimPrefix(err.Error(), "open "+v.path(file)+": "))
			return ""
		}
		s := strings.TrimRight(string(data), "\r\n")
		if s == "" {
			v.add(key, file, "the secret file is empty")
		}
		return Secret(s)
	}
	return Secret(v.getenv(env))
}

func (v *validator) userID(key, value string) id.UserID {
	u := id.UserID(value)
	if _, _, err := u.Parse(); err != nil || !strings.HasPrefix(value, "@") {
		v.add(key, value, "not a Matrix user ID like @alice:example.org")
		return ""
	}
	return u
}

func (v *validator) span(key, value string) disclosure.Span {
	s, err := disclosure.ParseSpan(value)
	if err != nil {
		v.add(key, value, "not a duration like 48h, 3 days or 5 working days")
	}
	return s
}

func (v *validator) validate() {
	c := v.cfg
	m := &c.Matrix
	if u, err := url.Parse(m.Homeserver); m.Homeserver == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("matrix.homeserver", m.Homeserver, "must be the homeserver's http(s) URL")
	}
	m.UserIDValue = v.userID("matrix.user_id", m.UserID)
	m.Password = v.secret("matrix.password_file", m.PasswordFile, "SECBOT_MATRIX_PASSWORD")
	m.AccessToken = v.secret("matrix.access_token_file", m.AccessTokenFile, "SECBOT_MATRIX_ACCESS_TOKEN")
	if m.Password == "" && m.AccessToken == "" {
		v.add("matrix.password_file", "", "the bot needs a password (password_file or SECBOT_MATRIX_PASSWORD) or an access token (access_token_file or SECBOT_MATRIX_ACCESS_TOKEN)")
	}
	m.PickleKey = v.secret("matrix.pickle_key_file", m.PickleKeyFile, "SECBOT_MATRIX_PICKLE_KEY")
	switch {
	case m.PickleKey == "" && m.PickleKeyFile == "":
		v.add("matrix.pickle_key_file", "", "a pickle key is required (pickle_key_file or SECBOT_MATRIX_PICKLE_KEY): it encrypts the end-to-end keys at rest")
	case m.PickleKey != "" && len(m.PickleKey) < 16:
		v.add("matrix.pickle_key_file", m.PickleKeyFile, "the pickle key must be at least 16 characters")
	}
	if m.DeviceName == "" {
		v.add("matrix.device_name", "", "must not be empty")
	}
	if m.CommandPrefix == "" || strings.ContainsAny(m.CommandPrefix, " \t\n") {
		v.add("matrix.command_prefix", m.CommandPrefix, "must be one word, like !sec")
	}

	if c.Database.Path == "" {
		v.add("database.path", "", "must name the SQLite file")
	}
	c.Database.Path = v.path(c.Database.Path)

	v.validateTeam()
	for i, r := range c.Announce.Rooms {
		if !(strings.HasPrefix(r, "!") || strings.HasPrefix(r, "#")) || !strings.Contains(r, ":") {
			v.add(fmt.Sprintf("announce.rooms[%d]", i), r, "not a room ID (!id:server) or alias (#name:server)")
		}
	}
	v.validateSLA()
	v.validateGitHub()
	c.Embargo.WarnAfterSpan = v.span("embargo.warn_after", c.Embargo.WarnAfter)
	if c.Templates.Dir != "" {
		c.Templates.Dir = v.path(c.Templates.Dir)
		if info, err := os.Stat(c.Templates.Dir); err != nil || !info.IsDir() {
			v.add("templates.dir", c.Templates.Dir, "not a directory")
		}
	}
	if c.HTTP.Listen != "" {
		host, port, err := net.SplitHostPort(c.HTTP.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
			v.add("http.listen", c.HTTP.Listen, "must be host:port (like 127.0.0.1:9464), or empty to disable")
		}
	}
}

func (v *validator) validateTeam() {
	t := &v.cfg.Team
	if !strings.HasPrefix(t.Room, "!") || !strings.Contains(t.Room, ":") {
		v.add("team.room", t.Room, "must be the team room's ID, like !abc:example.org")
	} else {
		t.RoomID = id.RoomID(t.Room)
	}
	if len(t.Members) == 0 {
		v.add("team.members", "", "the security team needs at least one member")
	}
	seen := map[id.UserID]bool{}
	t.MemberIDs = nil
	for i, m := range t.Members {
		u := v.userID(fmt.Sprintf("team.members[%d]", i), m)
		if u == "" {
			continue
		}
		if seen[u] {
			v.add(fmt.Sprintf("team.members[%d]", i), m, "listed twice")
			continue
		}
		if u == v.cfg.Matrix.UserIDValue {
			v.add(fmt.Sprintf("team.members[%d]", i), m, "the bot itself cannot be on the team")
			continue
		}
		seen[u] = true
		t.MemberIDs = append(t.MemberIDs, u)
	}
	t.CoordinatorID = v.userID("team.coordinator", t.Coordinator)
	if t.CoordinatorID != "" && len(seen) > 0 && !seen[t.CoordinatorID] {
		v.add("team.coordinator", t.Coordinator, "must be one of team.members")
	}
	t.BackupID = v.userID("team.backup", t.Backup)
	if t.BackupID != "" && len(seen) > 0 && !seen[t.BackupID] {
		v.add("team.backup", t.Backup, "must be one of team.members")
	}
	if t.BackupID != "" && t.BackupID == t.CoordinatorID {
		v.add("team.backup", t.Backup, "must not be the coordinator: the backup is who is asked when the coordinator is away")
	}
}

func (v *validator) validateSLA() {
	c := v.cfg
	s := c.SLA
	c.Policy = disclosure.SLA{
		Acknowledge:      v.span("sla.acknowledge", s.Acknowledge),
		DetailedResponse: v.span("sla.detailed_response", s.DetailedResponse),
		UpdateInterval:   v.span("sla.update_interval", s.UpdateInterval),
		RemindBefore:     v.span("sla.remind_before", s.RemindBefore),
		RepeatEvery:      v.span("sla.repeat_every", s.RepeatEvery),
	}
	p := c.Policy
	if _, err := disclosure.ParseSpan(s.Acknowledge); err == nil && p.Acknowledge.IsZero() {
		v.add("sla.acknowledge", s.Acknowledge, "must be longer than zero")
	}
	if p.Acknowledge.WorkingDays == 0 && p.DetailedResponse.WorkingDays == 0 && p.Acknowledge.Fixed > p.DetailedResponse.Fixed {
		v.add("sla.detailed_response", s.DetailedResponse, "must not come before the acknowledgement ("+s.Acknowledge+")")
	}
	if p.RemindBefore.WorkingDays > 0 {
		v.add("sla.remind_before", s.RemindBefore, "must be a fixed duration like 12h")
	}
	if _, err := disclosure.ParseSpan(s.RepeatEvery); err == nil && p.RepeatEvery.IsZero() {
		v.add("sla.repeat_every", s.RepeatEvery, "must be longer than zero: an escalation nobody reads must repeat")
	}
	if _, err := disclosure.ParseSpan(s.UpdateInterval); err == nil && p.UpdateInterval.IsZero() {
		v.add("sla.update_interval", s.UpdateInterval, "must be longer than zero")
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "" {
		v.add("sla.timezone", s.Timezone, "not an IANA time zone like UTC or Europe/Berlin")
	}
	if len(s.WorkingDays) == 0 {
		v.add("sla.working_days", "", "needs at least one working day")
	}
	for i, d := range s.WorkingDays {
		if _, err := disclosure.NewCalendar("UTC", []string{d}, nil); err != nil {
			v.add(fmt.Sprintf("sla.working_days[%d]", i), d, "not a weekday (Mon … Sun)")
		}
	}
	for i, h := range s.Holidays {
		if _, err := time.Parse("2006-01-02", h); err != nil {
			v.add(fmt.Sprintf("sla.holidays[%d]", i), h, "not a date like 2026-12-25")
		}
	}
	if cal, err := disclosure.NewCalendar(s.Timezone, s.WorkingDays, s.Holidays); err == nil {
		c.Calendar = cal
	}
	if len(c.Escalation) == 0 {
		v.add("escalation", "", "the ladder needs at least one step")
	}
	c.Ladder = nil
	var prev time.Duration
	for i, e := range c.Escalation {
		key := fmt.Sprintf("escalation[%d]", i)
		after := v.span(key+".after", e.After)
		n, err := disclosure.ParseNotify(e.Notify)
		if err != nil {
			v.add(key+".notify", e.Notify, "must be coordinator, backup, team or a Matrix user ID")
		}
		if after.WorkingDays == 0 && after.Fixed < prev {
			v.add(key+".after", e.After, "steps must come in order: this one is earlier than the one before")
		}
		prev = after.Fixed
		c.Ladder = append(c.Ladder, disclosure.LadderStep{After: after, Notify: n})
	}
}

func (v *validator) validateGitHub() {
	g := &v.cfg.GitHub
	if u, err := url.Parse(g.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("github.api_url", g.APIURL, "must be an http(s) URL")
	} else if !strings.HasSuffix(g.APIURL, "/") {
		g.APIURL += "/"
	}
	if (g.Owner == "") != (g.Repo == "") {
		v.add("github.repo", g.Owner+"/"+g.Repo, "set both owner and repo, or neither to run without GitHub")
	}
	g.Token = v.secret("github.token_file", g.TokenFile, "SECBOT_GITHUB_TOKEN")
	app := g.AppID != 0 || g.InstallationID != 0 || g.PrivateKeyFile != "" || v.getenv("SECBOT_GITHUB_PRIVATE_KEY") != ""
	if app {
		g.PrivateKey = v.secret("github.private_key_file", g.PrivateKeyFile, "SECBOT_GITHUB_PRIVATE_KEY")
		var missing []string
		if g.AppID == 0 {
			missing = append(missing, "app_id")
		}
		if g.InstallationID == 0 {
			missing = append(missing, "installation_id")
		}
		if g.PrivateKey == "" && g.PrivateKeyFile == "" {
			missing = append(missing, "private_key_file (or SECBOT_GITHUB_PRIVATE_KEY)")
		}
		if len(missing) > 0 {
			v.add("github", "", "a GitHub App needs app_id, installation_id and private_key_file; missing: "+strings.Join(missing, ", "))
		}
		if g.Token != "" {
			v.add("github.token_file", g.TokenFile, "give either a token or a GitHub App, not both")
		}
	}
	if g.Enabled() && !app && g.Token == "" && g.TokenFile == "" {
		v.add("github", "", "advisories need a token (token_file or SECBOT_GITHUB_TOKEN) or a GitHub App (app_id, installation_id, private_key_file)")
	}
}
