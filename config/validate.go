package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
)

type validator struct {
	cfg      *Config
	baseDir  string
	getenv   func(string) string
	problems Problems
}

func (v *validator) add(key, value, why string) {
	v.problems = append(v.problems, Problem{Key: key, Value: value, Why: why})
}

// addSecret reports a problem with a secret found at where: a *_file key
// (whose value, the file's name, is shown) or an environment variable
// (whose value is not).
func (v *validator) addSecret(where, file, why string) {
	if strings.HasPrefix(where, "SECBOT_") {
		v.add(where, SecretValue, why)
		return
	}
	v.add(where, file, why)
}

func (v *validator) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.baseDir, p)
}

// secret reads a secret from the file the *_file key names, if it is set,
// or else from the environment variable env. where is the key or the
// variable it came from, "" when neither gave one; a file that cannot be
// read is a problem, and still counts as where the secret was meant to be.
func (v *validator) secret(key, file, env string) (s Secret, where string) {
	if file != "" {
		data, err := readSecretFile(v.path(file))
		if err != nil {
			v.add(key, file, "cannot read the secret file: "+err.Error())
			return "", key
		}
		v.warnReadable(key, file)
		text := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if strings.TrimSpace(text) == "" {
			v.add(key, file, "the secret file is empty")
			return "", key
		}
		return Secret(text), key
	}
	if text := v.getenv(env); text != "" {
		return Secret(text), env
	}
	return "", ""
}

// warnReadable warns when the secret file that key names can be read by
// every user of the machine: allowed (a deployment may have its reasons),
// never silent.
func (v *validator) warnReadable(key, file string) {
	info, err := os.Stat(v.path(file))
	if err == nil && info.Mode().Perm()&0o004 != 0 {
		v.cfg.Warnings = append(v.cfg.Warnings, fmt.Sprintf("%s = %q: every user of this machine can read this secret file (mode %s); chmod 600, or 640 for the service's group", key, file, info.Mode().Perm()))
	}
}

// maxSecretSize bounds a secret file: a PEM key is a few kilobytes.
const maxSecretSize = 64 << 10

// readSecretFile reads a regular file of at most maxSecretSize bytes, so a
// device or pipe named by mistake neither blocks nor fills the memory. Its
// errors do not repeat the file's name.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.New(pathReason(err))
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return nil, errors.New(pathReason(err))
	case !info.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case info.Size() > maxSecretSize:
		return nil, fmt.Errorf("larger than %d KiB", maxSecretSize>>10)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, errors.New(pathReason(err))
	}
	if len(data) > maxSecretSize {
		return nil, fmt.Errorf("larger than %d KiB", maxSecretSize>>10)
	}
	return data, nil
}

// pathReason is why a file could not be read, without repeating its name.
func pathReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// validLocalpart allows the historical user ID grammar: printable ASCII
// but the colon.
func validLocalpart(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ':' {
			return false
		}
	}
	return true
}

func validUserID(s string) bool {
	local, _, err := id.UserID(s).ParseAndValidateRelaxed()
	return err == nil && validLocalpart(local)
}

// validRoomID accepts !opaque:server, and !opaque as room version 12 makes
// them.
func validRoomID(s string) bool {
	if !strings.HasPrefix(s, "!") {
		return false
	}
	opaque, server, hasServer := strings.Cut(s[1:], ":")
	return validLocalpart(opaque) && (!hasServer || id.ValidateServerName(server))
}

func validAlias(s string) bool {
	local, server, ok := strings.Cut(strings.TrimPrefix(s, "#"), ":")
	return strings.HasPrefix(s, "#") && ok && validLocalpart(local) && id.ValidateServerName(server)
}

// matrixName is a Matrix user, room or alias as the config may write it:
// on its own (@alice:example.org) or with its platform
// (matrix:@alice:example.org).
func matrixName(s string) string { return strings.TrimPrefix(s, "matrix:") }

func (v *validator) userID(key, value string) id.UserID {
	value = matrixName(value)
	if !validUserID(value) {
		v.add(key, value, "not a Matrix user ID like @alice:example.org")
		return ""
	}
	return id.UserID(value)
}

// span parses a duration; ok is false (and a problem reported) when it
// does not parse.
func (v *validator) span(key, value string) (s disclosure.Span, ok bool) {
	s, err := disclosure.ParseSpan(value)
	if err != nil {
		v.add(key, value, "not a duration like 48h, 3 days or 5 working days")
		return disclosure.Span{}, false
	}
	return s, true
}

// positiveSpan is span, and refuses zero.
func (v *validator) positiveSpan(key, value, why string) (disclosure.Span, bool) {
	s, ok := v.span(key, value)
	if ok && s.IsZero() {
		v.add(key, value, "must be longer than zero"+why)
		return s, false
	}
	return s, ok
}

func (v *validator) httpURL(key, value string) bool {
	u, err := url.Parse(value)
	switch {
	case value == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.add(key, value, "must be an http(s) URL like https://example.org")
	case u.User != nil:
		v.add(key, SecretValue, "must not carry a user name or password; secrets go in files or the environment")
	case u.RawQuery != "" || u.Fragment != "":
		v.add(key, value, "must not have a query or fragment")
	default:
		return true
	}
	return false
}

func (v *validator) validate() {
	c := v.cfg
	switch {
	case c.Matrix.Enabled():
		v.validateMatrix()
	case !c.RocketChat.Enabled():
		v.add("matrix", "", "secbot needs a chat: a [matrix] section, a [rocketchat] section, or both")
	}
	v.validateRocketChat()
	v.validateDatabase()
	if s, ok := v.positiveSpan("database.retention", c.Database.Retention, ": finished work is kept this long"); ok {
		switch {
		case s.WorkingDays > 0:
			v.add("database.retention", c.Database.Retention, "must be a fixed length like 30 days, not working days")
		case s.Fixed < MinRetention || s.Fixed < c.Matrix.CommandMaxAgeValue:
			v.add("database.retention", c.Database.Retention, fmt.Sprintf("must be at least %d days: an encrypted event whose key came late is handled up to 7 days after it was sent, and a team command up to matrix.command_max_age, so what answered them must be remembered that long", MinRetention/(24*time.Hour)))
		default:
			c.Database.RetentionSpan = s
		}
	}
	v.validateGitHub()
	v.validateEmail()
	v.validateTeam()
	c.Announce.Qualified = nil
	for i, r := range c.Announce.Rooms {
		if room := v.room(fmt.Sprintf("announce.rooms[%d]", i), r, true); room != "" {
			c.Announce.Qualified = append(c.Announce.Qualified, room)
		}
	}
	v.validateSLA()
	v.validateLadder()
	if n := c.Intake.MaxNewCasesPerHour; n < 0 {
		v.add("intake.max_new_cases_per_hour", fmt.Sprint(n), "must be 0 (no cap) or more")
	}
	if s, ok := v.span("embargo.warn_after", c.Embargo.WarnAfter); ok {
		c.Embargo.WarnAfterSpan = s
	}
	if c.Templates.Dir != "" {
		c.Templates.Dir = v.path(c.Templates.Dir)
		if info, err := os.Stat(c.Templates.Dir); err != nil {
			v.add("templates.dir", c.Templates.Dir, "cannot use the folder: "+pathReason(err))
		} else if !info.IsDir() {
			v.add("templates.dir", c.Templates.Dir, "not a folder")
		}
	}
	if l := c.HTTP.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || r == '/' }) {
			v.add("http.listen", l, "must be host:port (like 127.0.0.1:9464), or empty to disable")
		}
	}
}

func (v *validator) validateMatrix() {
	m := &v.cfg.Matrix
	v.httpURL("matrix.homeserver", m.Homeserver)
	m.UserIDValue = v.userID("matrix.user_id", m.UserID)

	var pwWhere, tokWhere, pkWhere string
	m.Password, pwWhere = v.secret("matrix.password_file", m.PasswordFile, EnvMatrixPassword)
	m.AccessToken, tokWhere = v.secret("matrix.access_token_file", m.AccessTokenFile, EnvMatrixAccessToken)
	switch {
	case pwWhere == "" && tokWhere == "":
		v.add("matrix.password_file", "", "the bot needs a password (password_file or "+EnvMatrixPassword+") or an access token (access_token_file or "+EnvMatrixAccessToken+")")
	case pwWhere != "" && tokWhere != "":
		v.addSecret(tokWhere, m.AccessTokenFile, "give either a password ("+pwWhere+") or an access token, not both")
	}
	m.PickleKey, pkWhere = v.secret("matrix.pickle_key_file", m.PickleKeyFile, EnvMatrixPickleKey)
	switch {
	case pkWhere == "":
		v.add("matrix.pickle_key_file", "", "a pickle key is required (pickle_key_file or "+EnvMatrixPickleKey+"): it encrypts the end-to-end keys at rest")
	case m.PickleKey != "" && utf8.RuneCountInString(string(m.PickleKey)) < MinPickleKeyLength:
		v.addSecret(pkWhere, m.PickleKeyFile, fmt.Sprintf("the pickle key must be at least %d characters", MinPickleKeyLength))
	}
	if m.RecoveryKeyFile != "" {
		m.RecoveryKeyFile = v.path(m.RecoveryKeyFile)
		v.recoveryKeyFile("matrix.recovery_key_file", m.RecoveryKeyFile)
	}
	if strings.TrimSpace(m.DeviceName) == "" {
		v.add("matrix.device_name", m.DeviceName, "must not be empty")
	}
	if m.CommandPrefix == "" || strings.ContainsFunc(m.CommandPrefix, unicode.IsSpace) {
		v.add("matrix.command_prefix", m.CommandPrefix, "must be one word, like !sec")
	}
	m.CommandMaxAgeValue = 0
	if s, ok := v.positiveSpan("matrix.command_max_age", m.CommandMaxAge, ": older team commands are refused"); ok {
		switch {
		case s.WorkingDays > 0:
			v.add("matrix.command_max_age", m.CommandMaxAge, "must be a fixed length like 6h, not working days")
		case s.Fixed < time.Minute || s.Fixed > MaxCommandMaxAge:
			v.add("matrix.command_max_age", m.CommandMaxAge, "must be from a minute to 7 days: a command older than that is more likely replayed than meant")
		default:
			m.CommandMaxAgeValue = s.Fixed
		}
	}
}

func (v *validator) validateTeam() {
	t := &v.cfg.Team
	t.RoomID, t.MemberIDs, t.People, t.RoomName = "", nil, nil, ""
	t.RoomName = v.room("team.room", t.Room, false)
	if disclosure.RoomPlatform(t.RoomName) == disclosure.Matrix {
		t.RoomID = id.RoomID(matrixName(t.Room))
	}
	if len(t.Members) == 0 {
		v.add("team.members", "", "the security team needs at least one member")
	}
	seen := map[disclosure.Person]bool{}
	for i, m := range t.Members {
		key := fmt.Sprintf("team.members[%d]", i)
		p := v.person(key, m)
		switch {
		case p == "":
		case seen[p]:
			v.add(key, m, "listed twice")
		case p == disclosure.PersonOn(disclosure.Matrix, string(v.cfg.Matrix.UserIDValue)):
			v.add(key, m, "the bot itself cannot be on the team")
		default:
			seen[p] = true
			t.People = append(t.People, p)
			if p.Platform() == disclosure.Matrix {
				t.MemberIDs = append(t.MemberIDs, id.UserID(p.Native()))
			}
		}
	}
	member := func(key, value string) disclosure.Person {
		p := v.person(key, value)
		if p != "" && len(t.People) > 0 && !seen[p] {
			v.add(key, value, "must be one of team.members")
		}
		return p
	}
	byPerson := make(map[string]string, len(t.Identities))
	for _, u := range slices.Sorted(maps.Keys(t.Identities)) {
		key, k := t.Identities[u], "team.identities."+u
		p := member(k, u)
		switch {
		case p == "":
		case p.Platform() == disclosure.Matrix && !validEd25519(key):
			v.add(k, key, "must be the member's cross-signing master key: 43 characters of unpadded base64")
		case p.Platform() == disclosure.RocketChat && (strings.TrimSpace(key) == "" || strings.ContainsFunc(key, unicode.IsSpace)):
			v.add(k, key, "must be the member's Rocket.Chat user ID (which a renamed or reused username cannot take)")
		default:
			byPerson[string(p)] = key
		}
	}
	if len(t.Identities) > 0 {
		// By the person with their platform, however the config wrote them.
		t.Identities = byPerson
		for _, p := range t.People {
			if _, ok := t.Identities[string(p)]; !ok {
				v.add("team.identities", p.String(), "names no identity for this member: with identities set, none is pinned on first sight, so their commands would never count")
			}
		}
	}
	t.CoordinatorPerson = member("team.coordinator", t.Coordinator)
	t.BackupPerson = member("team.backup", t.Backup)
	if t.CoordinatorPerson.Platform() == disclosure.Matrix {
		t.CoordinatorID = id.UserID(t.CoordinatorPerson.Native())
	}
	if t.BackupPerson.Platform() == disclosure.Matrix {
		t.BackupID = id.UserID(t.BackupPerson.Native())
	}
	if t.BackupPerson != "" && t.BackupPerson == t.CoordinatorPerson {
		v.add("team.backup", t.Backup, "must not be the coordinator: the backup is who is asked when the coordinator does not answer")
	}
}

func (v *validator) validateSLA() {
	c := v.cfg
	s := c.SLA
	ack, ackOK := v.positiveSpan("sla.acknowledge", s.Acknowledge, "")
	resp, respOK := v.positiveSpan("sla.detailed_response", s.DetailedResponse, "")
	if ackOK && respOK && ack.WorkingDays == 0 && resp.WorkingDays == 0 && ack.Fixed > resp.Fixed {
		v.add("sla.detailed_response", s.DetailedResponse, "must not be shorter than sla.acknowledge ("+s.Acknowledge+")")
	}
	upd, _ := v.positiveSpan("sla.update_interval", s.UpdateInterval, "")
	remind, ok := v.span("sla.remind_before", s.RemindBefore)
	if ok && remind.WorkingDays > 0 {
		v.add("sla.remind_before", s.RemindBefore, "must be a fixed duration like 12h, not working days")
	}
	repeat, _ := v.positiveSpan("sla.repeat_every", s.RepeatEvery, ": an escalation nobody answers must repeat")
	c.Policy = disclosure.SLA{Acknowledge: ack, DetailedResponse: resp, UpdateInterval: upd, RemindBefore: remind, RepeatEvery: repeat}

	calOK := true
	switch _, err := time.LoadLocation(s.Timezone); {
	case s.Timezone == "" || err != nil:
		v.add("sla.timezone", s.Timezone, "not an IANA time zone like UTC or Europe/Berlin")
		calOK = false
	case s.Timezone == "Local":
		v.add("sla.timezone", s.Timezone, "name the zone (like Europe/Berlin): Local depends on the machine")
		calOK = false
	}
	if len(s.WorkingDays) == 0 {
		v.add("sla.working_days", "", "needs at least one working day")
		calOK = false
	}
	for i, d := range s.WorkingDays {
		if _, err := disclosure.NewCalendar("UTC", []string{d}, nil); err != nil {
			v.add(fmt.Sprintf("sla.working_days[%d]", i), d, "not a weekday (Mon … Sun)")
			calOK = false
		}
	}
	for i, h := range s.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			v.add(fmt.Sprintf("sla.holidays[%d]", i), h, "not a date like 2026-12-25")
			calOK = false
		}
	}
	if calOK {
		cal, err := disclosure.NewCalendar(s.Timezone, s.WorkingDays, s.Holidays)
		if err != nil {
			v.add("sla", "", err.Error())
		}
		c.Calendar = cal
	}
}

// surelyEarlier reports whether span b ends before span a when both start
// at the same moment. N working days last at least N days (less an hour
// for a daylight saving change) and have no upper bound (holidays), so
// mixed kinds are only compared where the answer is certain.
func surelyEarlier(b, a disclosure.Span) bool {
	switch {
	case a.WorkingDays == 0 && b.WorkingDays == 0:
		return b.Fixed < a.Fixed
	case a.WorkingDays > 0 && b.WorkingDays > 0:
		return b.WorkingDays < a.WorkingDays || (b.WorkingDays == a.WorkingDays && b.Fixed < a.Fixed)
	case a.WorkingDays > 0:
		return b.Fixed < a.Fixed+time.Duration(a.WorkingDays)*24*time.Hour-time.Hour
	}
	return false
}

func (v *validator) validateLadder() {
	c := v.cfg
	c.Ladder = nil
	if len(c.Escalation) == 0 {
		v.add("escalation", "", "the ladder needs at least one step (or leave out [[escalation]] for the default)")
	}
	var prev *disclosure.Span
	for i, e := range c.Escalation {
		key := fmt.Sprintf("escalation[%d]", i)
		after, ok := v.span(key+".after", e.After)
		if ok && prev != nil && surelyEarlier(after, *prev) {
			v.add(key+".after", e.After, "steps must come in order: this one is earlier than the one before ("+c.Escalation[i-1].After+")")
		}
		if ok {
			prev = &after
		} else {
			prev = nil
		}
		n, err := disclosure.ParseNotify(e.Notify)
		switch {
		case err != nil:
			v.add(key+".notify", e.Notify, "must be coordinator, backup, team or a Matrix user ID")
		case n.Role == "user" && !validUserID(n.User):
			v.add(key+".notify", e.Notify, "not a Matrix user ID like @alice:example.org")
		}
		c.Ladder = append(c.Ladder, disclosure.LadderStep{After: after, Notify: n})
	}
}

var (
	githubOwner = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	githubRepo  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

func (v *validator) validateGitHub() {
	g := &v.cfg.GitHub
	if v.httpURL("github.api_url", g.APIURL) && !strings.HasSuffix(g.APIURL, "/") {
		g.APIURL += "/"
	}
	switch {
	case g.Owner != "" && g.Repo == "":
		v.add("github.repo", "", "set both owner and repo, or neither to run without GitHub")
	case g.Owner == "" && g.Repo != "":
		v.add("github.owner", "", "set both owner and repo, or neither to run without GitHub")
	}
	if g.Owner != "" && !githubOwner.MatchString(g.Owner) {
		v.add("github.owner", g.Owner, "not a GitHub user or organization name")
	}
	if g.Repo != "" && (!githubRepo.MatchString(g.Repo) || g.Repo == "." || g.Repo == "..") {
		v.add("github.repo", g.Repo, "not a GitHub repository name (the part after owner/)")
	}
	g.Repos = nil
	switch {
	case (g.Owner != "" || g.Repo != "") && len(g.Repositories) > 0:
		v.add("github.owner", g.Owner, "give repositories, or the deprecated owner and repo, not both")
	case g.Owner != "" && g.Repo != "":
		g.Repos = []string{g.Owner + "/" + g.Repo}
		v.cfg.Deprecations = append(v.cfg.Deprecations, fmt.Sprintf("[github] owner and repo are deprecated: write repositories = [%q]", g.Owner+"/"+g.Repo))
	}
	seen := map[string]bool{}
	for i, r := range g.Repositories {
		key := fmt.Sprintf("github.repositories[%d]", i)
		owner, name, ok := strings.Cut(r, "/")
		switch {
		case !ok || !githubOwner.MatchString(owner) || !githubRepo.MatchString(name) || name == "." || name == "..":
			v.add(key, r, "not a GitHub repository like owner/name")
		case seen[strings.ToLower(r)]:
			v.add(key, r, "named twice")
		default:
			seen[strings.ToLower(r)] = true
			g.Repos = append(g.Repos, r)
		}
	}
	for i, o := range g.Organizations {
		if !githubOwner.MatchString(o) {
			v.add(fmt.Sprintf("github.organizations[%d]", i), o, "not a GitHub organization name")
		}
	}
	if len(g.Organizations) > 0 && len(g.Repositories) == 0 && g.Owner == "" {
		v.add("github.repositories", "", "name at least one repository: new chat cases' advisories are drafted in the first")
	}
	if d, err := time.ParseDuration(g.PollEvery); err != nil || d < time.Second {
		v.add("github.poll_every", g.PollEvery, "must be a duration of a second or more, like 2m")
	} else {
		g.PollInterval = d
	}
	if g.AppID < 0 {
		v.add("github.app_id", strconv.FormatInt(g.AppID, 10), "must be the App's positive ID")
	}
	if g.InstallationID < 0 {
		v.add("github.installation_id", strconv.FormatInt(g.InstallationID, 10), "must be the installation's positive ID")
	}

	// Without a repository, GitHub's environment variables are not read:
	// they may be set for something else.
	getenv := v.getenv
	if !g.Enabled() {
		v.getenv = func(string) string { return "" }
	}
	defer func() { v.getenv = getenv }()

	var tokWhere string
	g.Token, tokWhere = v.secret("github.token_file", g.TokenFile, EnvGitHubToken)
	g.PrivateKey = ""
	app := g.AppID != 0 || g.InstallationID != 0 || g.PrivateKeyFile != "" || v.getenv(EnvGitHubPrivateKey) != ""
	if app {
		key, keyWhere := v.secret("github.private_key_file", g.PrivateKeyFile, EnvGitHubPrivateKey)
		const need = "a GitHub App needs app_id, installation_id and private_key_file (or " + EnvGitHubPrivateKey + ")"
		if g.AppID == 0 {
			v.add("github.app_id", "", need+"; app_id is missing")
		}
		if g.InstallationID == 0 {
			v.add("github.installation_id", "", need+"; installation_id is missing")
		}
		if keyWhere == "" {
			v.add("github.private_key_file", "", need+"; the private key is missing")
		}
		if key != "" {
			if err := checkPrivateKey([]byte(key)); err != nil {
				v.addSecret(keyWhere, g.PrivateKeyFile, err.Error())
			}
		}
		if tokWhere != "" {
			v.addSecret(tokWhere, g.TokenFile, "give either a token or a GitHub App, not both")
		}
		g.PrivateKey = key
	}
	if g.Enabled() && !app && tokWhere == "" {
		v.add("github.token_file", "", "advisories for "+strings.Join(append(slices.Clone(g.Repos), g.Organizations...), ", ")+" need a token (token_file or "+EnvGitHubToken+") or a GitHub App (app_id, installation_id, private_key_file)")
	}
}

// checkPrivateKey accepts what GitHub gives an App: a PEM RSA key, PKCS#1
// or PKCS#8. Its errors never quote the key.
func checkPrivateKey(data []byte) error {
	block, _ := pem.Decode(data)
	if block == nil {
		return errors.New("not a PEM private key (-----BEGIN RSA PRIVATE KEY-----)")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); ok {
			return nil
		}
	}
	return errors.New("not an RSA private key as GitHub gives Apps")
}
