package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfigListsEveryProblemAndFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(path, []byte("[matrix]\nhomeserver = \"ftp://x\"\n[sla]\nacknowledge = \"soon\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check-config", "-config", path}, &out, &errOut); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, key := range []string{"matrix.homeserver", "matrix.user_id", "sla.acknowledge", "team.room"} {
		if !strings.Contains(errOut.String(), key) {
			t.Errorf("check-config does not name %s:\n%s", key, errOut.String())
		}
	}
}

func TestCheckConfigAcceptsTheExampleAndNamesTheGitHubMode(t *testing.T) {
	data, err := os.ReadFile("config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := strings.NewReplacer(`"/run/secrets/secbot-password"`, `"password"`, `"/run/secrets/secbot-pickle-key"`, `"pickle"`, `"/run/secrets/github-token"`, `"token"`, `"/run/secrets/secbot-recovery-key"`, `"recovery-key"`, `"/run/secrets/mail-password"`, `"mail-password"`).Replace(string(data))
	for name, secret := range map[string]string{"password": "a-password", "pickle": "a-pickle-key-0123456789", "token": "ghp_x", "mail-password": "a-mail-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "secbot.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check-config", "-config", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "authenticated as a token") {
		t.Errorf("check-config does not say which GitHub auth is used:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "email: security@example.org") {
		t.Errorf("check-config does not describe the mailbox:\n%s", out.String())
	}
	if strings.Contains(out.String(), "a-password") || strings.Contains(out.String(), "ghp_x") || strings.Contains(out.String(), "a-mail-secret") {
		t.Error("check-config prints a secret")
	}
	if strings.Contains(out.String(), "deprecated") {
		t.Errorf("the example uses a deprecated key:\n%s", out.String())
	}

	// The older owner and repo still work, with a deprecation line.
	old := strings.Replace(cfg, `repositories = ["example/example", "example/other"]`, `repositories = []`, 1)
	old = strings.Replace(old, "owner = \"\"\n", "owner = \"example\"\n", 1)
	old = strings.Replace(old, "repo = \"\"\n", "repo = \"example\"\n", 1)
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"check-config", "-config", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `deprecated: [github] owner and repo are deprecated: write repositories = ["example/example"]`) {
		t.Errorf("check-config does not name the deprecated keys:\n%s", out.String())
	}
}

func TestVersionAndUnknownCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "secbot ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("an unknown command exits %d, want 2", code)
	}
}
