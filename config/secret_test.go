package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestASecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20q"} {
		out := fmt.Sprintf(verb, s)
		assertNoSecret(t, verb, out)
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s gives %q, not %s", verb, out, Redacted)
		}
	}
	if Secret("").String() != "" {
		t.Error("an unset secret does not print empty")
	}
	if string(s) != "hunter2" || string([]byte(s)) != "hunter2" {
		t.Error("an explicit conversion does not give the value")
	}
}

func TestAValidConfigurationNeverShowsItsSecrets(t *testing.T) {
	pkcs1, _, _ := pemKeys(t)
	secretValues := append(secretValues, strings.Split(strings.TrimSpace(pkcs1), "\n")[1])
	cfg, err := Parse([]byte(base().with(map[string]string{
		"github.owner": `"enarx"`, "github.repo": `"enarx"`, "github.app_id": "12", "github.installation_id": "34",
	}).toml()), t.TempDir(), getenv(withEnv(map[string]string{EnvGitHubToken: unset, EnvGitHubPrivateKey: pkcs1})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GitHub.AuthMode() != AuthApp || string(cfg.GitHub.PrivateKey) != pkcs1 || cfg.Matrix.Password == "" {
		t.Fatal("the secrets were not read")
	}
	var logged bytes.Buffer
	log := zerolog.New(&logged)
	log.Info().Object("config", cfg).Interface("raw", cfg).Msg("config")
	jsonOut, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for what, out := range map[string]string{
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", *cfg), "%#v": fmt.Sprintf("%#v", *cfg),
		"%s of a section": fmt.Sprintf("%s", cfg.Matrix), "json": string(jsonOut), "the log": logged.String(), "the summary": cfg.Summary(),
	} {
		for _, s := range secretValues {
			if strings.Contains(out, s) {
				t.Errorf("%s shows the secret %q:\n%s", what, s, out)
			}
		}
	}
	if !strings.Contains(logged.String(), `"github_auth":"app"`) {
		t.Errorf("the log does not describe the configuration: %s", logged.String())
	}
}

func TestTheSummaryDescribesTheConfiguration(t *testing.T) {
	cfg, err := Parse([]byte(base().with(map[string]string{
		"github.owner": `"enarx"`, "github.repo": `"enarx"`, "team.rotation": "true", "http.listen": `""`,
	}).toml()+"[[escalation]]\nafter = \"0s\"\nnotify = \"@dave:example.org\"\n"), "/srv", getenv(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	sum := cfg.Summary()
	for _, want := range []string{
		"https://matrix.example.org as @secbot:example.org", "login by password", "/srv/secbot.db",
		"3 members in !team:example.org", "coordinator @alice:example.org, backup @bob:example.org", "rotation",
		"enarx/enarx at https://api.github.com/, authenticated as a token",
		"acknowledge in 2 days, detailed response in 4 days, updates every 5 working days",
		"@dave:example.org after 0s", "repeats every 1 day", "http: off",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("the summary lacks %q:\n%s", want, sum)
		}
	}
	assertNoSecret(t, "the summary", sum)
	cfg, err = Parse([]byte(base().toml()), "/srv", getenv(withEnv(map[string]string{EnvMatrixPassword: unset, EnvMatrixAccessToken: "hunter2-token"})))
	if err != nil {
		t.Fatal(err)
	}
	if sum := cfg.Summary(); !strings.Contains(sum, "github: disabled") || !strings.Contains(sum, "login by access token") {
		t.Errorf("the summary of a configuration without GitHub:\n%s", sum)
	}
}
