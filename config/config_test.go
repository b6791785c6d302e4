package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `
[matrix]
homeserver = "https://matrix.example.org"
user_id = "@secbot:example.org"

[team]
room = "!team:example.org"
members = ["@alice:example.org", "@bob:example.org"]
coordinator = "@alice:example.org"
backup = "@bob:example.org"
`

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var secrets = env(map[string]string{"SECBOT_MATRIX_PASSWORD": "hunter2-password", "SECBOT_MATRIX_PICKLE_KEY": "0123456789abcdef0123"})

func problems(t *testing.T, err error) Problems {
	t.Helper()
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("error is %T (%v), want Problems", err, err)
	}
	return p
}

func TestMinimalConfigGetsDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "/etc/secbot", secrets)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Matrix.CommandPrefix != "!sec" || cfg.Matrix.DeviceName != "secbot" || cfg.HTTP.Listen != "127.0.0.1:9464" {
		t.Errorf("defaults not applied: %+v %+v", cfg.Matrix, cfg.HTTP)
	}
	if cfg.Database.Path != "/etc/secbot/secbot.db" {
		t.Errorf("database path %q is not relative to the config", cfg.Database.Path)
	}
	if cfg.Policy.Acknowledge.Fixed != 48*time.Hour || cfg.Policy.UpdateInterval.WorkingDays != 5 || cfg.Embargo.WarnAfterSpan.Fixed != 14*24*time.Hour {
		t.Errorf("SLA defaults: %+v", cfg.Policy)
	}
	if len(cfg.Ladder) != 3 || cfg.Ladder[0].Notify.Role != "coordinator" || cfg.Ladder[2].Notify.Role != "team" {
		t.Errorf("default ladder: %+v", cfg.Ladder)
	}
	if cfg.GitHub.Enabled() || cfg.GitHub.AuthMode() != "none" {
		t.Error("GitHub enabled without a repository")
	}
	if cfg.Team.CoordinatorID != "@alice:example.org" || len(cfg.Team.MemberIDs) != 2 {
		t.Errorf("team: %+v", cfg.Team)
	}
}

func TestEachBadKeyGetsItsOwnMessage(t *testing.T) {
	for _, tc := range []struct {
		name, toml, key string
	}{
		{"homeserver without scheme", `[matrix]` + "\n" + `homeserver = "matrix.example.org"`, "matrix.homeserver"},
		{"user id without @", `[matrix]` + "\n" + `user_id = "secbot:example.org"`, "matrix.user_id"},
		{"prefix with a space", `[matrix]` + "\n" + `command_prefix = "! sec"`, "matrix.command_prefix"},
		{"team room alias", `[team]` + "\n" + `room = "#team:example.org"`, "team.room"},
		{"coordinator not on the team", `[team]` + "\n" + `coordinator = "@mallory:example.org"`, "team.coordinator"},
		{"backup is the coordinator", `[team]` + "\n" + `backup = "@alice:example.org"`, "team.backup"},
		{"a member twice", `[team]` + "\n" + `members = ["@alice:example.org", "@bob:example.org", "@alice:example.org"]`, "team.members[2]"},
		{"bad duration", `[sla]` + "\n" + `acknowledge = "soon"`, "sla.acknowledge"},
		{"response before acknowledgement", `[sla]` + "\n" + `detailed_response = "1h"`, "sla.detailed_response"},
		{"working-day reminder", `[sla]` + "\n" + `remind_before = "1 working day"`, "sla.remind_before"},
		{"no repeat", `[sla]` + "\n" + `repeat_every = "0s"`, "sla.repeat_every"},
		{"unknown zone", `[sla]` + "\n" + `timezone = "Mars/Olympus"`, "sla.timezone"},
		{"bad weekday", `[sla]` + "\n" + `working_days = ["Mon", "Funday"]`, "sla.working_days[1]"},
		{"bad holiday", `[sla]` + "\n" + `holidays = ["25/12/2026"]`, "sla.holidays[0]"},
		{"bad notify", "[[escalation]]\nafter = \"0s\"\nnotify = \"everyone\"", "escalation[0].notify"},
		{"steps out of order", "[[escalation]]\nafter = \"2h\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"1h\"\nnotify = \"team\"", "escalation[1].after"},
		{"bad announce room", `[announce]` + "\n" + `rooms = ["announcements"]`, "announce.rooms[0]"},
		{"bad listen", `[http]` + "\n" + `listen = "localhost"`, "http.listen"},
		{"half a repository", `[github]` + "\n" + `owner = "enarx"`, "github.repo"},
		{"half an App", `[github]` + "\n" + `owner = "enarx"` + "\n" + `repo = "enarx"` + "\n" + `app_id = 5`, "github"},
		{"bad embargo warning", `[embargo]` + "\n" + `warn_after = "a fortnight"`, "embargo.warn_after"},
		{"unknown key", `[matrix]` + "\n" + `homeserve = "https://x.org"`, "matrix.homeserve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(merge(minimal, tc.toml)), t.TempDir(), secrets)
			if err == nil {
				t.Fatal("accepted")
			}
			ps := problems(t, err)
			if len(ps) != 1 || ps[0].Key != tc.key {
				t.Errorf("problems = %v, want exactly one for %s", ps, tc.key)
			}
		})
	}
}

// merge overlays the keys of extra onto base, section by section.
func merge(base, extra string) string {
	sections := map[string][]string{}
	var order []string
	add := func(text string, override bool) {
		section := ""
		for _, line := range strings.Split(text, "\n") {
			trim := strings.TrimSpace(line)
			if trim == "" {
				continue
			}
			if strings.HasPrefix(trim, "[[") {
				section = trim + "#" + strings.Repeat("+", len(sections[trim+"#"])+len(order))
				order = append(order, section)
				sections[section] = nil
				continue
			}
			if strings.HasPrefix(trim, "[") {
				section = trim
				if _, ok := sections[section]; !ok {
					order = append(order, section)
				}
				continue
			}
			key := strings.TrimSpace(strings.SplitN(trim, "=", 2)[0])
			lines := sections[section]
			if override {
				for i, l := range lines {
					if strings.TrimSpace(strings.SplitN(l, "=", 2)[0]) == key {
						lines = append(lines[:i], lines[i+1:]...)
						break
					}
				}
			}
			sections[section] = append(lines, trim)
		}
	}
	add(base, false)
	add(extra, true)
	var b strings.Builder
	for _, s := range order {
		name := s
		if i := strings.Index(s, "#"); i > 0 && strings.HasPrefix(s, "[[") {
			name = s[:i]
		}
		b.WriteString(name + "\n" + strings.Join(sections[s], "\n") + "\n")
	}
	return b.String()
}

func TestManyProblemsAreAllListed(t *testing.T) {
	_, err := Parse([]byte(`
[matrix]
homeserver = "ftp://x"
user_id = "nobody"
[team]
room = "team"
[sla]
acknowledge = "never"
timezone = "Nowhere/Land"
`), t.TempDir(), env(nil))
	ps := problems(t, err)
	keys := map[string]bool{}
	for _, p := range ps {
		keys[p.Key] = true
	}
	for _, want := range []string{"matrix.homeserver", "matrix.user_id", "matrix.password_file", "matrix.pickle_key_file", "team.room", "team.members", "team.coordinator", "team.backup", "sla.acknowledge", "sla.timezone"} {
		if !keys[want] {
			t.Errorf("no problem listed for %s; got %v", want, ps)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(ps) {
		t.Errorf("the error has %d lines for %d problems", lines, len(ps))
	}
}

func TestSecretsComeFromFilesOrEnvironmentAndNeverShow(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("file-password-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pickle"), []byte("pickle-key-from-file-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(merge(minimal, "[matrix]\npassword_file = \"pw\"\npickle_key_file = \"pickle\"")), dir, env(map[string]string{"SECBOT_MATRIX_PASSWORD": "env-password"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Matrix.Password != "file-password-123" || cfg.Matrix.PickleKey != "pickle-key-from-file-0001" {
		t.Errorf("secrets from files: %q %q", string(cfg.Matrix.Password), string(cfg.Matrix.PickleKey))
	}
	for _, shown := range []string{cfg.Summary(), cfg.Matrix.Password.String(), strings.Join([]string{cfg.Matrix.PickleKey.GoString()}, "")} {
		if strings.Contains(shown, "file-password-123") || strings.Contains(shown, "pickle-key-from-file") {
			t.Errorf("a secret shows: %q", shown)
		}
	}
	cfg, err = Parse([]byte(minimal), dir, env(map[string]string{"SECBOT_MATRIX_ACCESS_TOKEN": "syt_token", "SECBOT_MATRIX_PICKLE_KEY": "0123456789abcdefXYZ"}))
	if err != nil || cfg.Matrix.AccessToken != "syt_token" {
		t.Fatalf("token from the environment: %v", err)
	}
	// A missing secret file is a problem that names the key, never a value.
	_, err = Parse([]byte(merge(minimal, "[github]\nowner = \"o\"\nrepo = \"r\"\ntoken_file = \"missing-token\"")), dir, secrets)
	ps := problems(t, err)
	if len(ps) != 1 || ps[0].Key != "github.token_file" {
		t.Errorf("problems = %v", ps)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("a problem shows a secret")
	}
}

func TestGitHubAuthModes(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "key.pem"), []byte("-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"), 0o600)
	cfg, err := Parse([]byte(merge(minimal, "[github]\nowner = \"o\"\nrepo = \"r\"\napp_id = 1\ninstallation_id = 2\nprivate_key_file = \"key.pem\"\napi_url = \"http://127.0.0.1:1234\"")), dir, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GitHub.AuthMode() != "app" || cfg.GitHub.APIURL != "http://127.0.0.1:1234/" || !strings.Contains(cfg.Summary(), "GitHub App") {
		t.Errorf("app mode: %s %s", cfg.GitHub.AuthMode(), cfg.GitHub.APIURL)
	}
	cfg, err = Parse([]byte(merge(minimal, "[github]\nowner = \"o\"\nrepo = \"r\"")), dir, env(map[string]string{"SECBOT_MATRIX_PASSWORD": "p-123456", "SECBOT_MATRIX_PICKLE_KEY": "0123456789abcdef0", "SECBOT_GITHUB_TOKEN": "ghp_x"}))
	if err != nil || cfg.GitHub.AuthMode() != "token" {
		t.Errorf("token mode: %v", err)
	}
	_, err = Parse([]byte(merge(minimal, "[github]\nowner = \"o\"\nrepo = \"r\"")), dir, secrets)
	if ps := problems(t, err); len(ps) != 1 || ps[0].Key != "github" {
		t.Errorf("no auth: %v", ps)
	}
}

func TestTheExampleConfigIsValidAndDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	example := strings.NewReplacer(`"/run/secrets/secbot-password"`, `""`, `"/run/secrets/secbot-pickle-key"`, `""`, `"/run/secrets/github-token"`, `""`).Replace(string(data))
	_, err = Parse([]byte(example), dir, env(map[string]string{"SECBOT_MATRIX_PASSWORD": "p-123456", "SECBOT_MATRIX_PICKLE_KEY": "0123456789abcdef0", "SECBOT_GITHUB_TOKEN": "ghp_x"}))
	if err != nil {
		t.Fatalf("config.example.toml is not valid:\n%v", err)
	}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if !strings.Contains(string(data), "["+tag+"]") {
					t.Errorf("config.example.toml has no [%s] section", tag)
				}
				walk(ft, tag)
				continue
			}
			if !strings.Contains(string(data), "\n"+tag+" = ") {
				t.Errorf("config.example.toml does not document %s.%s", prefix, tag)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("[sla]\nacknowledge = 5"))
	f.Add([]byte("[[escalation]]\nafter = \"-1h\""))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, t.TempDir(), secrets)
		if err == nil && cfg == nil {
			t.Fatal("no config and no error")
		}
		if err != nil {
			var p Problems
			if !errors.As(err, &p) || len(p) == 0 {
				t.Fatalf("error is not a non-empty Problems: %v", err)
			}
		}
	})
}
