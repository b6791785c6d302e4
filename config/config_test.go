package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
)

// doc is a configuration as section → key → raw TOML value, so a test can
// change one key of a valid configuration.
type doc map[string]map[string]string

// unset removes a key in a doc's changes.
const unset = "<unset>"

// base is a minimal valid configuration; its secrets come from baseEnv.
func base() doc {
	return doc{
		"matrix": {
			"homeserver": `"https://matrix.example.org"`,
			"user_id":    `"@secbot:example.org"`,
		},
		"team": {
			"room":        `"!team:example.org"`,
			"members":     `["@alice:example.org", "@bob:example.org", "@carol:example.org"]`,
			"coordinator": `"@alice:example.org"`,
			"backup":      `"@bob:example.org"`,
		},
	}
}

var baseEnv = map[string]string{
	EnvMatrixPassword:  "hunter2-password",
	EnvMatrixPickleKey: "hunter2-pickle-key-0123456789",
	EnvGitHubToken:     "hunter2-github-token",
	EnvEmailPassword:   "hunter2-mail-password",
}

// secretValues are every secret the tests use; none may ever be printed.
var secretValues = []string{"hunter2"}

// with returns d with changes ("section.key" → raw value or unset).
func (d doc) with(changes map[string]string) doc {
	out := doc{}
	for s, keys := range d {
		out[s] = maps.Clone(keys)
	}
	for k, v := range changes {
		section, key, _ := strings.Cut(k, ".")
		if out[section] == nil {
			out[section] = map[string]string{}
		}
		if v == unset {
			delete(out[section], key)
		} else {
			out[section][key] = v
		}
	}
	return out
}

func (d doc) toml() string {
	var b strings.Builder
	for _, s := range slices.Sorted(maps.Keys(d)) {
		b.WriteString("[" + s + "]\n")
		for _, k := range slices.Sorted(maps.Keys(d[s])) {
			b.WriteString(k + " = " + d[s][k] + "\n")
		}
	}
	return b.String()
}

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func withEnv(changes map[string]string) map[string]string {
	env := maps.Clone(baseEnv)
	for k, v := range changes {
		if v == unset {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	if err == nil {
		t.Fatal("the configuration was accepted")
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("the error is a %T (%v), not Problems", err, err)
	}
	if len(ps) == 0 {
		t.Fatal("the error is an empty Problems")
	}
	return ps
}

func keysOf(ps Problems) []string {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.Key
	}
	slices.Sort(keys)
	return keys
}

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secretValues {
		if strings.Contains(text, s) {
			t.Errorf("%s shows a secret:\n%s", what, text)
		}
	}
}

func TestAMinimalConfigurationGetsEveryDefault(t *testing.T) {
	cfg, err := Parse([]byte(base().toml()), "/etc/secbot", getenv(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	d.Database.Path = "/etc/secbot/secbot.db"
	for _, c := range []struct{ name, got, want any }{
		{"device name", cfg.Matrix.DeviceName, "secbot"},
		{"command prefix", cfg.Matrix.CommandPrefix, "!sec"},
		{"database path", cfg.Database.Path, d.Database.Path},
		{"database retention", cfg.Database.Retention, d.Database.Retention},
		{"retention", cfg.Database.RetentionSpan, disclosure.Span{Fixed: 30 * 24 * time.Hour}},
		{"command age", cfg.Matrix.CommandMaxAgeValue, 6 * time.Hour},
		{"warnings", len(cfg.Warnings), 0},
		{"github", cfg.GitHub.APIURL, "https://api.github.com/"},
		{"sla", cfg.SLA, d.SLA},
		{"escalation", cfg.Escalation, DefaultEscalation},
		{"embargo warning", cfg.Embargo.WarnAfter, "14 days"},
		{"templates", cfg.Templates, d.Templates},
		{"http", cfg.HTTP, d.HTTP},
		{"rotation", cfg.Team.Rotation, false},
		{"announcements", len(cfg.Announce.Rooms), 0},
		{"policy", cfg.Policy, disclosure.SLA{
			Acknowledge: disclosure.Span{Fixed: 48 * time.Hour}, DetailedResponse: disclosure.Span{Fixed: 96 * time.Hour},
			UpdateInterval: disclosure.Span{WorkingDays: 5}, RemindBefore: disclosure.Span{Fixed: 12 * time.Hour},
			RepeatEvery: disclosure.Span{Fixed: 24 * time.Hour},
		}},
		{"calendar zone", cfg.Calendar.Location.String(), "UTC"},
		{"working days", cfg.Calendar.WorkingDays, [7]bool{false, true, true, true, true, true, false}},
		{"embargo span", cfg.Embargo.WarnAfterSpan, disclosure.Span{Fixed: 14 * 24 * time.Hour}},
		{"ladder", cfg.Ladder, disclosure.Ladder{
			{After: disclosure.Span{}, Notify: disclosure.Notify{Role: "coordinator"}},
			{After: disclosure.Span{Fixed: 24 * time.Hour}, Notify: disclosure.Notify{Role: "backup"}},
			{After: disclosure.Span{Fixed: 48 * time.Hour}, Notify: disclosure.Notify{Role: "team"}},
		}},
		{"bot", cfg.Matrix.UserIDValue, id.UserID("@secbot:example.org")},
		{"team room", cfg.Team.RoomID, id.RoomID("!team:example.org")},
		{"members", cfg.Team.MemberIDs, []id.UserID{"@alice:example.org", "@bob:example.org", "@carol:example.org"}},
		{"coordinator", cfg.Team.CoordinatorID, id.UserID("@alice:example.org")},
		{"backup", cfg.Team.BackupID, id.UserID("@bob:example.org")},
		{"github enabled", cfg.GitHub.Enabled(), false},
		{"github mode", cfg.GitHub.AuthMode(), AuthNone},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestAGivenLadderReplacesTheDefault(t *testing.T) {
	data := base().toml() + "[[escalation]]\nafter = \"1 working day\"\nnotify = \"@dave:example.org\"\n"
	cfg, err := Parse([]byte(data), t.TempDir(), getenv(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := disclosure.Ladder{{After: disclosure.Span{WorkingDays: 1}, Notify: disclosure.Notify{Role: "user", User: "@dave:example.org"}}}
	if !reflect.DeepEqual(cfg.Ladder, want) {
		t.Errorf("ladder = %+v, want %+v", cfg.Ladder, want)
	}
}

func TestAcceptedVariations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes map[string]string
		check   func(*Config) bool
	}{
		{"a homeserver on plain http with a port is accepted", map[string]string{"matrix.homeserver": `"http://127.0.0.1:8008"`}, nil},
		{"user IDs on a server with a port are accepted", map[string]string{"matrix.user_id": `"@secbot:localhost:8448"`}, nil},
		{"a room ID without a server (room version 12) is accepted", map[string]string{"team.room": `"!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"`},
			func(c *Config) bool { return c.Team.RoomID == "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM" }},
		{"announcement rooms may be IDs or aliases", map[string]string{"announce.rooms": `["!a:example.org", "#news:example.org"]`}, nil},
		{"a working-day step after a shorter fixed one is in order", nil, nil},
		{"full weekday names and a weekend shift are accepted", map[string]string{"sla.working_days": `["sunday", "Monday", "Tue"]`, "sla.timezone": `"Asia/Jerusalem"`},
			func(c *Config) bool {
				return c.Calendar.WorkingDays[time.Sunday] && !c.Calendar.WorkingDays[time.Friday]
			}},
		{"holidays are read into the calendar", map[string]string{"sla.holidays": `["2026-12-25"]`},
			func(c *Config) bool { return !c.Calendar.IsWorkingDay(time.Date(2026, 12, 25, 12, 0, 0, 0, time.UTC)) }},
		{"an empty listen address disables http", map[string]string{"http.listen": `""`}, func(c *Config) bool { return c.HTTP.Listen == "" }},
		{"a listen address on every interface is accepted", map[string]string{"http.listen": `":9464"`}, nil},
		{"an absolute database path is kept", map[string]string{"database.path": `"/var/lib/secbot/secbot.db"`},
			func(c *Config) bool { return c.Database.Path == "/var/lib/secbot/secbot.db" }},
		{"an API URL gets its trailing slash", map[string]string{"github.api_url": `"https://ghe.example.org/api/v3"`},
			func(c *Config) bool { return c.GitHub.APIURL == "https://ghe.example.org/api/v3/" }},
		{"rotation can be turned on", map[string]string{"team.rotation": "true"}, func(c *Config) bool { return c.Team.Rotation }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := base().with(tc.changes).toml()
			if tc.changes == nil {
				data += "[[escalation]]\nafter = \"1h\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"1 working day\"\nnotify = \"team\"\n"
			}
			cfg, err := Parse([]byte(data), t.TempDir(), getenv(baseEnv))
			if err != nil {
				t.Fatalf("refused:\n%v", err)
			}
			if tc.check != nil && !tc.check(cfg) {
				t.Errorf("accepted, but not as meant: %+v", cfg)
			}
		})
	}
}

func TestEachBadKeyGetsItsOwnMessage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes map[string]string
		ladder  string // [[escalation]] steps, appended
		keys    []string
	}{
		{"a homeserver without a scheme is refused", map[string]string{"matrix.homeserver": `"matrix.example.org"`}, "", []string{"matrix.homeserver"}},
		{"a homeserver on ftp is refused", map[string]string{"matrix.homeserver": `"ftp://matrix.example.org"`}, "", []string{"matrix.homeserver"}},
		{"a homeserver with credentials in it is refused", map[string]string{"matrix.homeserver": `"https://bot:hunter2@matrix.example.org"`}, "", []string{"matrix.homeserver"}},
		{"a missing homeserver is refused", map[string]string{"matrix.homeserver": unset}, "", []string{"matrix.homeserver"}},
		{"a user ID without @ is refused", map[string]string{"matrix.user_id": `"secbot:example.org"`}, "", []string{"matrix.user_id"}},
		{"a user ID without a server is refused", map[string]string{"matrix.user_id": `"@secbot"`}, "", []string{"matrix.user_id"}},
		{"a user ID with a space is refused", map[string]string{"matrix.user_id": `"@sec bot:example.org"`}, "", []string{"matrix.user_id"}},
		{"an empty device name is refused", map[string]string{"matrix.device_name": `""`}, "", []string{"matrix.device_name"}},
		{"an empty command prefix is refused", map[string]string{"matrix.command_prefix": `""`}, "", []string{"matrix.command_prefix"}},
		{"a command prefix with a space is refused", map[string]string{"matrix.command_prefix": `"! sec"`}, "", []string{"matrix.command_prefix"}},
		{"an empty database path is refused", map[string]string{"database.path": `""`}, "", []string{"database.path"}},
		{"a team room alias is refused", map[string]string{"team.room": `"#team:example.org"`}, "", []string{"team.room"}},
		{"a missing team room is refused", map[string]string{"team.room": unset}, "", []string{"team.room"}},
		{"an empty team is refused", map[string]string{"team.members": `[]`}, "", []string{"team.members"}},
		{"a malformed member is refused", map[string]string{"team.members": `["@alice:example.org", "bob", "@bob:example.org"]`}, "", []string{"team.members[1]"}},
		{"a member listed twice is refused", map[string]string{"team.members": `["@alice:example.org", "@bob:example.org", "@alice:example.org"]`}, "", []string{"team.members[2]"}},
		{"the bot on its own team is refused", map[string]string{"team.members": `["@alice:example.org", "@bob:example.org", "@secbot:example.org"]`}, "", []string{"team.members[2]"}},
		{"a coordinator who is not on the team is refused", map[string]string{"team.coordinator": `"@mallory:example.org"`}, "", []string{"team.coordinator"}},
		{"a malformed coordinator is refused", map[string]string{"team.coordinator": `"alice"`}, "", []string{"team.coordinator"}},
		{"a missing backup is refused", map[string]string{"team.backup": unset}, "", []string{"team.backup"}},
		{"a backup who is not on the team is refused", map[string]string{"team.backup": `"@mallory:example.org"`}, "", []string{"team.backup"}},
		{"a backup who is the coordinator is refused", map[string]string{"team.backup": `"@alice:example.org"`}, "", []string{"team.backup"}},
		{"an announcement room without a server is refused", map[string]string{"announce.rooms": `["#announcements"]`}, "", []string{"announce.rooms[0]"}},
		{"an announcement room by name is refused", map[string]string{"announce.rooms": `["!a:example.org", "announcements"]`}, "", []string{"announce.rooms[1]"}},
		{"an unparsable acknowledgement is refused", map[string]string{"sla.acknowledge": `"soon"`}, "", []string{"sla.acknowledge"}},
		{"a zero acknowledgement is refused", map[string]string{"sla.acknowledge": `"0s"`}, "", []string{"sla.acknowledge"}},
		{"a negative acknowledgement is refused", map[string]string{"sla.acknowledge": `"-48h"`}, "", []string{"sla.acknowledge"}},
		{"an unparsable detailed response is refused once", map[string]string{"sla.detailed_response": `"4 fortnights"`}, "", []string{"sla.detailed_response"}},
		{"a detailed response due before the acknowledgement is refused", map[string]string{"sla.detailed_response": `"24h"`}, "", []string{"sla.detailed_response"}},
		{"a zero update interval is refused", map[string]string{"sla.update_interval": `"0 working days"`}, "", []string{"sla.update_interval"}},
		{"a reminder in working days is refused", map[string]string{"sla.remind_before": `"1 working day"`}, "", []string{"sla.remind_before"}},
		{"an unparsable reminder is refused", map[string]string{"sla.remind_before": `"12"`}, "", []string{"sla.remind_before"}},
		{"a zero repeat is refused", map[string]string{"sla.repeat_every": `"0s"`}, "", []string{"sla.repeat_every"}},
		{"an unknown time zone is refused", map[string]string{"sla.timezone": `"Mars/Olympus_Mons"`}, "", []string{"sla.timezone"}},
		{"an empty time zone is refused", map[string]string{"sla.timezone": `""`}, "", []string{"sla.timezone"}},
		{"the machine's Local time zone is refused", map[string]string{"sla.timezone": `"Local"`}, "", []string{"sla.timezone"}},
		{"an unknown weekday is refused", map[string]string{"sla.working_days": `["Mon", "Funday"]`}, "", []string{"sla.working_days[1]"}},
		{"no working days are refused", map[string]string{"sla.working_days": `[]`}, "", []string{"sla.working_days"}},
		{"a holiday not written YYYY-MM-DD is refused", map[string]string{"sla.holidays": `["2026-12-24", "25/12/2026"]`}, "", []string{"sla.holidays[1]"}},
		{"an impossible holiday is refused", map[string]string{"sla.holidays": `["2026-02-30"]`}, "", []string{"sla.holidays[0]"}},
		{"an unknown notify target is refused", nil, "[[escalation]]\nafter = \"0s\"\nnotify = \"everyone\"\n", []string{"escalation[0].notify"}},
		{"a notify user with a bad server is refused", nil, "[[escalation]]\nafter = \"0s\"\nnotify = \"@dave:exa_mple!\"\n", []string{"escalation[0].notify"}},
		{"a missing notify is refused", nil, "[[escalation]]\nafter = \"0s\"\n", []string{"escalation[0].notify"}},
		{"an unparsable step delay is refused", nil, "[[escalation]]\nafter = \"later\"\nnotify = \"team\"\n", []string{"escalation[0].after"}},
		{"steps out of order are refused", nil, "[[escalation]]\nafter = \"2h\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"1h\"\nnotify = \"team\"\n", []string{"escalation[1].after"}},
		{"a fixed step before a working-day step is refused", nil, "[[escalation]]\nafter = \"2 working days\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"24h\"\nnotify = \"team\"\n", []string{"escalation[1].after"}},
		{"working-day steps out of order are refused", nil, "[[escalation]]\nafter = \"2 working days\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"1 working day\"\nnotify = \"team\"\n", []string{"escalation[1].after"}},
		{"an unparsable embargo warning is refused", map[string]string{"embargo.warn_after": `"a fortnight"`}, "", []string{"embargo.warn_after"}},
		{"a retention of working days is refused", map[string]string{"database.retention": `"20 working days"`}, "", []string{"database.retention"}},
		{"a retention of nothing is refused", map[string]string{"database.retention": `"0s"`}, "", []string{"database.retention"}},
		{"a retention of a minute is refused", map[string]string{"database.retention": `"1m"`}, "", []string{"database.retention"}},
		{"a retention shorter than a late key's window is refused", map[string]string{"database.retention": `"6 days"`}, "", []string{"database.retention"}},
		{"a command age of nothing is refused", map[string]string{"matrix.command_max_age": `"0s"`}, "", []string{"matrix.command_max_age"}},
		{"a command age of seconds is refused", map[string]string{"matrix.command_max_age": `"30s"`}, "", []string{"matrix.command_max_age"}},
		{"a command age over a week is refused", map[string]string{"matrix.command_max_age": `"8 days"`}, "", []string{"matrix.command_max_age"}},
		{"a command age of working days is refused", map[string]string{"matrix.command_max_age": `"1 working day"`}, "", []string{"matrix.command_max_age"}},
		{"an unparsable command age is refused", map[string]string{"matrix.command_max_age": `"a while"`}, "", []string{"matrix.command_max_age"}},
		{"a templates folder that does not exist is refused", map[string]string{"templates.dir": `"no-such-folder"`}, "", []string{"templates.dir"}},
		{"a listen address without a port is refused", map[string]string{"http.listen": `"localhost"`}, "", []string{"http.listen"}},
		{"a listen port out of range is refused", map[string]string{"http.listen": `"127.0.0.1:99999"`}, "", []string{"http.listen"}},
		{"a listen port that is a name is refused", map[string]string{"http.listen": `"127.0.0.1:http"`}, "", []string{"http.listen"}},
		{"an API URL that is not http(s) is refused", map[string]string{"github.api_url": `"api.github.com"`}, "", []string{"github.api_url"}},
		{"an owner without a repository is refused", map[string]string{"github.owner": `"enarx"`}, "", []string{"github.repo"}},
		{"a repository without an owner is refused", map[string]string{"github.repo": `"enarx"`}, "", []string{"github.owner"}},
		{"an owner with a slash is refused", map[string]string{"github.owner": `"enarx/enarx"`, "github.repo": `"enarx"`}, "", []string{"github.owner"}},
		{"a repository with a space is refused", map[string]string{"github.owner": `"enarx"`, "github.repo": `"en arx"`}, "", []string{"github.repo"}},
		{"a value of the wrong type is refused", map[string]string{"team.rotation": `"yes"`}, "", []string{"team.rotation"}},
		{"an unknown key is refused", map[string]string{"matrix.homeserve": `"https://matrix.example.org"`}, "", []string{"matrix.homeserve"}},
		{"an unknown section is refused once", map[string]string{"matrx.homeserver": `"https://matrix.example.org"`, "matrx.user_id": `"@a:b"`}, "", []string{"matrx"}},
		{"an unknown key in a step is refused", nil, "[[escalation]]\nafter = \"0s\"\nnotify = \"team\"\nwho = \"team\"\n", []string{"escalation.who"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := base().with(tc.changes).toml() + tc.ladder
			_, err := Parse([]byte(data), t.TempDir(), getenv(baseEnv))
			ps := problemsOf(t, err)
			if got := keysOf(ps); !slices.Equal(got, tc.keys) {
				t.Fatalf("problems with %v, want %v:\n%v", got, tc.keys, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, tc.keys[0]) {
					t.Errorf("the message does not start with the key %s: %q", tc.keys[0], line)
				}
			}
			assertNoSecret(t, "the problem", err.Error())
		})
	}
}

func TestManyBadKeysAreAllListedAtOnce(t *testing.T) {
	data := `
[matrix]
homeserver = "ftp://x"
user_id = "nobody"
command_prefix = ""
[team]
room = "team"
members = ["@alice:example.org", "bob"]
coordinator = "@mallory:example.org"
[announce]
rooms = ["news"]
[sla]
acknowledge = "never"
remind_before = "1 working day"
timezone = "Nowhere/Land"
holidays = ["Christmas"]
[embargo]
warn_after = ""
[http]
listen = "everywhere"
[github]
owner = "enarx"
app_id = 7
[[escalation]]
after = "0s"
notify = "nobody"
`
	_, err := Parse([]byte(data), t.TempDir(), nil)
	ps := problemsOf(t, err)
	want := []string{
		"announce.rooms[0]", "embargo.warn_after", "escalation[0].notify", "github.installation_id", "github.private_key_file",
		"github.repo", "http.listen", "matrix.command_prefix", "matrix.homeserver", "matrix.password_file",
		"matrix.pickle_key_file", "matrix.user_id", "sla.acknowledge", "sla.holidays[0]", "sla.remind_before", "sla.timezone",
		"team.backup", "team.coordinator", "team.members[1]", "team.room",
	}
	if got := keysOf(ps); !slices.Equal(got, want) {
		t.Errorf("problems with\n%v, want\n%v\n%v", got, want, err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(ps) {
		t.Errorf("the error has %d lines for %d problems", len(lines), len(ps))
	}
}

func TestProblemsReadKeyValueWhy(t *testing.T) {
	ps := Problems{
		{Key: "matrix.homeserver", Value: "ftp://x", Why: "must be an http(s) URL"},
		{Key: "team.members", Why: "needs a member"},
		{Key: EnvMatrixPickleKey, Value: SecretValue, Why: "too short"},
		{Key: "matrix.user_id", Value: "a\nb", Why: "bad"},
	}
	want := `matrix.homeserver = "ftp://x": must be an http(s) URL
team.members: needs a member
SECBOT_MATRIX_PICKLE_KEY = (secret): too short
matrix.user_id = "a\nb": bad`
	if got := ps.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !ps.Has("team.members") || ps.Has("team.room") {
		t.Error("Has does not find the problems there are")
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSecretsComeFromFilesOrTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"pw":          "hunter2-file-password\n",
		"crlf":        "hunter2-crlf-password\r\n",
		"token":       "hunter2-file-token",
		"pickle":      "hunter2-pickle-from-file\n",
		"short":       "hunter2\n",
		"empty":       "\n",
		"huge":        strings.Repeat("hunter2 ", 10000),
		"folder/keep": "",
	})
	for _, tc := range []struct {
		name                          string
		changes, env                  map[string]string
		password, accessToken, pickle string
		keys                          []string
	}{
		{name: "the password comes from its file without the trailing newline", changes: map[string]string{"matrix.password_file": `"pw"`},
			password: "hunter2-file-password", pickle: baseEnv[EnvMatrixPickleKey]},
		{name: "a trailing CRLF is trimmed too", changes: map[string]string{"matrix.password_file": `"crlf"`},
			password: "hunter2-crlf-password", pickle: baseEnv[EnvMatrixPickleKey]},
		{name: "the password comes from the environment when no file is named",
			password: baseEnv[EnvMatrixPassword], pickle: baseEnv[EnvMatrixPickleKey]},
		{name: "a named file wins over the environment", changes: map[string]string{"matrix.password_file": `"pw"`, "matrix.pickle_key_file": `"pickle"`},
			password: "hunter2-file-password", pickle: "hunter2-pickle-from-file"},
		{name: "an access token comes from its file", changes: map[string]string{"matrix.access_token_file": `"token"`}, env: map[string]string{EnvMatrixPassword: unset},
			accessToken: "hunter2-file-token", pickle: baseEnv[EnvMatrixPickleKey]},
		{name: "an access token comes from the environment", env: map[string]string{EnvMatrixPassword: unset, EnvMatrixAccessToken: "hunter2-env-token"},
			accessToken: "hunter2-env-token", pickle: baseEnv[EnvMatrixPickleKey]},
		{name: "a missing secret file is refused even with the variable set", changes: map[string]string{"matrix.password_file": `"no-such-file"`},
			keys: []string{"matrix.password_file"}},
		{name: "a folder as a secret file is refused", changes: map[string]string{"matrix.password_file": `"folder"`},
			keys: []string{"matrix.password_file"}},
		{name: "a device as a secret file is refused", changes: map[string]string{"matrix.password_file": `"/dev/zero"`},
			keys: []string{"matrix.password_file"}},
		{name: "a huge secret file is refused", changes: map[string]string{"matrix.password_file": `"huge"`},
			keys: []string{"matrix.password_file"}},
		{name: "an empty secret file is refused", changes: map[string]string{"matrix.pickle_key_file": `"empty"`},
			keys: []string{"matrix.pickle_key_file"}},
		{name: "both a password and an access token are refused", env: map[string]string{EnvMatrixAccessToken: "hunter2-env-token"},
			keys: []string{EnvMatrixAccessToken}},
		{name: "both from files are refused, naming the token's key", changes: map[string]string{"matrix.password_file": `"pw"`, "matrix.access_token_file": `"token"`},
			keys: []string{"matrix.access_token_file"}},
		{name: "neither password nor access token is refused", env: map[string]string{EnvMatrixPassword: unset},
			keys: []string{"matrix.password_file"}},
		{name: "no pickle key is refused", env: map[string]string{EnvMatrixPickleKey: unset},
			keys: []string{"matrix.pickle_key_file"}},
		{name: "a short pickle key from the environment is refused", env: map[string]string{EnvMatrixPickleKey: "hunter2-short"},
			keys: []string{EnvMatrixPickleKey}},
		{name: "a short pickle key from a file is refused", changes: map[string]string{"matrix.pickle_key_file": `"short"`},
			keys: []string{"matrix.pickle_key_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base().with(tc.changes).toml()), dir, getenv(withEnv(tc.env)))
			if tc.keys != nil {
				ps := problemsOf(t, err)
				if got := keysOf(ps); !slices.Equal(got, tc.keys) {
					t.Errorf("problems with %v, want %v:\n%v", got, tc.keys, err)
				}
				assertNoSecret(t, "the problem", err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(cfg.Matrix.Password) != tc.password || string(cfg.Matrix.AccessToken) != tc.accessToken || string(cfg.Matrix.PickleKey) != tc.pickle {
				t.Errorf("password %q, access token %q, pickle key %q; want %q, %q, %q",
					string(cfg.Matrix.Password), string(cfg.Matrix.AccessToken), string(cfg.Matrix.PickleKey), tc.password, tc.accessToken, tc.pickle)
			}
		})
	}
}

func TestLoadTakesRelativePathsFromTheConfigFolder(t *testing.T) {
	for _, k := range []string{EnvMatrixPassword, EnvMatrixAccessToken, EnvMatrixPickleKey, EnvGitHubToken, EnvGitHubPrivateKey} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"secrets/password":   "hunter2-password\n",
		"secrets/pickle":     "hunter2-pickle-key-0123456789\n",
		"secrets/github":     "hunter2-github-token\n",
		"texts/welcome.md":   "hello",
		"conf/secbot.toml":   "",
		"elsewhere/.keep.md": "",
	})
	toml := base().with(map[string]string{
		"matrix.password_file":   `"../secrets/password"`,
		"matrix.pickle_key_file": `"` + filepath.Join(dir, "secrets/pickle") + `"`,
		"database.path":          `"data/secbot.db"`,
		"templates.dir":          `"../texts"`,
		"github.owner":           `"enarx"`,
		"github.repo":            `"enarx"`,
		"github.token_file":      `"../secrets/github"`,
	}).toml()
	writeFiles(t, dir, map[string]string{"conf/secbot.toml": toml})

	t.Chdir(filepath.Join(dir, "elsewhere"))
	cfg, err := Load("../conf/secbot.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "conf/data/secbot.db"); cfg.Database.Path != want {
		t.Errorf("database path %q, want %q", cfg.Database.Path, want)
	}
	if want := filepath.Join(dir, "texts"); cfg.Templates.Dir != want {
		t.Errorf("templates folder %q, want %q", cfg.Templates.Dir, want)
	}
	if cfg.Matrix.Password != "hunter2-password" || cfg.Matrix.PickleKey != "hunter2-pickle-key-0123456789" || cfg.GitHub.Token != "hunter2-github-token" {
		t.Error("the secrets were not read from the files named relative to the config")
	}
	if cfg.GitHub.AuthMode() != AuthToken || !cfg.GitHub.Enabled() {
		t.Errorf("github mode %s", cfg.GitHub.AuthMode())
	}
}

func TestLoadRefusesAFileItCannotRead(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.toml"))
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Key != "config" || !strings.Contains(ps[0].Why, "no such file") {
		t.Errorf("problems = %v", ps)
	}
}

func TestASecretWrittenInTheFileIsRefusedWithoutShowingIt(t *testing.T) {
	for _, tc := range []struct{ name, toml, key string }{
		{"a password key", base().with(map[string]string{"matrix.password": `"hunter2-in-file"`}).toml(), "matrix.password"},
		{"a token key", base().with(map[string]string{"github.token": `"hunter2-in-file"`}).toml(), "github.token"},
		{"an unquoted password", "[matrix]\npassword = hunter2-in-file\n", "config"},
		{"an unterminated password", "[matrix]\npassword = \"hunter2-in-file\n", "config"},
		{"a password in an array", "[matrix]\npassword = [\"hunter2\" \"x\"]\n", "config"},
		{"a secret of the wrong type", "[matrix]\npassword_file = hunter2\n", "config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), t.TempDir(), getenv(baseEnv))
			ps := problemsOf(t, err)
			if !ps.Has(tc.key) {
				t.Errorf("no problem with %s:\n%v", tc.key, err)
			}
			assertNoSecret(t, "the problem", err.Error())
		})
	}
}

func TestATOMLSyntaxErrorNamesItsLine(t *testing.T) {
	_, err := Parse([]byte("[matrix]\nhomeserver = \"https://matrix.example.org\"\ndevice_name = secbot\n"), "", nil)
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Key != "config" || !strings.Contains(ps[0].Why, "line 3") {
		t.Errorf("problems = %v", ps)
	}
}

func TestTheShortestRetentionAndTheLongestCommandAgeAreAccepted(t *testing.T) {
	cfg, err := Parse([]byte(base().with(map[string]string{"database.retention": `"7 days"`, "matrix.command_max_age": `"7 days"`}).toml()), t.TempDir(), getenv(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.RetentionSpan.Fixed != MinRetention || cfg.Matrix.CommandMaxAgeValue != MaxCommandMaxAge {
		t.Errorf("retention %s, command age %s", cfg.Database.RetentionSpan, cfg.Matrix.CommandMaxAgeValue)
	}
}

// Every secret file every user can read is named in a warning, never its
// content; one only its owner reads is not.
func TestEverySecretFileOthersCanReadIsWarnedAbout(t *testing.T) {
	dir := t.TempDir()
	pkcs1, _, _ := pemKeys(t)
	files := map[string]string{"password": "hunter2-password", "pickle": "hunter2-pickle-key-0123456789", "github": "hunter2-github-token", "mail": "hunter2-mail-password", "key.pem": pkcs1}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	changes := map[string]string{
		"matrix.password_file": `"password"`, "matrix.pickle_key_file": `"pickle"`,
		"github.repositories": `["enarx/enarx"]`, "github.app_id": "12", "github.installation_id": "34", "github.private_key_file": `"key.pem"`,
	}
	parse := func() *Config {
		t.Helper()
		cfg, err := Parse([]byte(base().with(changes).toml()), dir, getenv(map[string]string{}))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if w := parse().Warnings; len(w) != 0 {
		t.Errorf("files only their owner reads: %q", w)
	}
	for _, name := range []string{"password", "pickle", "key.pem"} {
		if err := os.Chmod(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	warnings := strings.Join(parse().Warnings, "\n")
	for _, key := range []string{"matrix.password_file", "matrix.pickle_key_file", "github.private_key_file"} {
		if !strings.Contains(warnings, key) || !strings.Contains(warnings, "-rw-r--r--") {
			t.Errorf("no warning about %s: %q", key, warnings)
		}
	}
	assertNoSecret(t, "the warnings", warnings)
	if strings.Contains(warnings, "PRIVATE KEY") || strings.Count(warnings, "\n") != 2 {
		t.Errorf("warnings: %q", warnings)
	}
}
