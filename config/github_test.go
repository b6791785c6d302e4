package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
)

func pemKeys(t *testing.T) (pkcs1, pkcs8, ec string) {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
}

func TestGitHubIsAuthenticatedByATokenOrAnApp(t *testing.T) {
	pkcs1, pkcs8, ec := pemKeys(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app.pem": pkcs1, "app8.pem": pkcs8, "ec.pem": ec, "github-token": "hunter2-file-token\n", "not-a-key": "hunter2 is not a key\n"})
	repo := map[string]string{"github.owner": `"enarx"`, "github.repo": `"enarx"`}
	app := map[string]string{"github.owner": `"enarx"`, "github.repo": `"enarx"`, "github.app_id": "12", "github.installation_id": "34", "github.private_key_file": `"app.pem"`}
	noToken := map[string]string{EnvGitHubToken: unset}
	with := func(m map[string]string, extra ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			out[extra[i]] = extra[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		changes, env map[string]string
		enabled      bool
		mode         string
		keys         []string
	}{
		{name: "without owner and repo GitHub is disabled and its variables unread", mode: AuthNone},
		{name: "without owner and repo a stray App key in the environment is ignored", env: map[string]string{EnvGitHubPrivateKey: "hunter2"}, mode: AuthNone},
		{name: "a token from the environment", changes: repo, enabled: true, mode: AuthToken},
		{name: "a token from its file", changes: with(repo, "github.token_file", `"github-token"`), env: noToken, enabled: true, mode: AuthToken},
		{name: "an App with a PKCS#1 key file", changes: app, env: noToken, enabled: true, mode: AuthApp},
		{name: "an App with a PKCS#8 key file", changes: with(app, "github.private_key_file", `"app8.pem"`), env: noToken, enabled: true, mode: AuthApp},
		{name: "an App with its key in the environment", changes: with(app, "github.private_key_file", unset), env: map[string]string{EnvGitHubToken: unset, EnvGitHubPrivateKey: pkcs1}, enabled: true, mode: AuthApp},
		{name: "no credentials for a repository are refused", changes: repo, env: noToken, keys: []string{"github.token_file"}},
		{name: "half an App names the installation and key as missing", changes: with(repo, "github.app_id", "12"), env: noToken,
			keys: []string{"github.installation_id", "github.private_key_file"}},
		{name: "an App without its ID names the ID as missing", changes: with(app, "github.app_id", unset), env: noToken, keys: []string{"github.app_id"}},
		{name: "a token and an App together are refused", changes: app, keys: []string{EnvGitHubToken}},
		{name: "a token file and an App together are refused", changes: with(app, "github.token_file", `"github-token"`), env: noToken, keys: []string{"github.token_file"}},
		{name: "a key file that is not PEM is refused", changes: with(app, "github.private_key_file", `"not-a-key"`), env: noToken, keys: []string{"github.private_key_file"}},
		{name: "a key in the environment that is not PEM is refused", changes: with(app, "github.private_key_file", unset),
			env: map[string]string{EnvGitHubToken: unset, EnvGitHubPrivateKey: "hunter2"}, keys: []string{EnvGitHubPrivateKey}},
		{name: "an EC key is refused", changes: with(app, "github.private_key_file", `"ec.pem"`), env: noToken, keys: []string{"github.private_key_file"}},
		{name: "a missing key file is refused", changes: with(app, "github.private_key_file", `"missing.pem"`), env: noToken, keys: []string{"github.private_key_file"}},
		{name: "a negative App ID is refused", changes: with(app, "github.app_id", "-12"), env: noToken, keys: []string{"github.app_id"}},
		{name: "a negative installation ID is refused", changes: with(app, "github.installation_id", "-34"), env: noToken, keys: []string{"github.installation_id"}},
		{name: "an App set up without a repository is still checked", changes: map[string]string{"github.app_id": "12"},
			keys: []string{"github.installation_id", "github.private_key_file"}},
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
			if cfg.GitHub.Enabled() != tc.enabled || cfg.GitHub.AuthMode() != tc.mode {
				t.Errorf("enabled %v, mode %s; want %v, %s", cfg.GitHub.Enabled(), cfg.GitHub.AuthMode(), tc.enabled, tc.mode)
			}
			if tc.mode == AuthApp && (cfg.GitHub.Token != "" || cfg.GitHub.PrivateKey == "" || cfg.GitHub.AppID != 12 || cfg.GitHub.InstallationID != 34) {
				t.Errorf("app settings: %+v", cfg.GitHub)
			}
			if tc.mode == AuthToken && (cfg.GitHub.Token == "" || cfg.GitHub.PrivateKey != "") {
				t.Errorf("token settings: %+v", cfg.GitHub)
			}
		})
	}
}

func TestGitHubRepositoriesAndWatching(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes map[string]string
		repos   []string
		orgs    []string
		watch   bool
		every   string
		deprec  int
		keys    []string
	}{
		{name: "repositories are read in order, the first the default, watched every 2m by default",
			changes: map[string]string{"github.repositories": `["enarx/enarx", "enarx/other"]`}, repos: []string{"enarx/enarx", "enarx/other"}, watch: true, every: "2m0s"},
		{name: "the deprecated owner and repo are one repository, with a deprecation line",
			changes: map[string]string{"github.owner": `"enarx"`, "github.repo": `"enarx"`}, repos: []string{"enarx/enarx"}, watch: true, every: "2m0s", deprec: 1},
		{name: "organizations, no watching and another poll interval",
			changes: map[string]string{"github.repositories": `["enarx/enarx"]`, "github.organizations": `["enarx", "profian"]`, "github.watch_reports": "false", "github.poll_every": `"30s"`},
			repos:   []string{"enarx/enarx"}, orgs: []string{"enarx", "profian"}, every: "30s"},
		{name: "owner and repo beside repositories are refused",
			changes: map[string]string{"github.repositories": `["enarx/enarx"]`, "github.owner": `"enarx"`, "github.repo": `"enarx"`}, keys: []string{"github.owner"}},
		{name: "a repository without its owner is refused",
			changes: map[string]string{"github.repositories": `["enarx"]`}, keys: []string{"github.repositories[0]"}},
		{name: "a repository named twice is refused",
			changes: map[string]string{"github.repositories": `["enarx/enarx", "Enarx/Enarx"]`}, keys: []string{"github.repositories[1]"}},
		{name: "organizations without a repository for new cases are refused",
			changes: map[string]string{"github.organizations": `["enarx"]`}, keys: []string{"github.repositories"}},
		{name: "a bad organization name is refused",
			changes: map[string]string{"github.repositories": `["enarx/enarx"]`, "github.organizations": `["-x/y"]`}, keys: []string{"github.organizations[0]"}},
		{name: "a poll interval under a second is refused",
			changes: map[string]string{"github.repositories": `["enarx/enarx"]`, "github.poll_every": `"10ms"`}, keys: []string{"github.poll_every"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base().with(tc.changes).toml()), t.TempDir(), getenv(baseEnv))
			if tc.keys != nil {
				if got := keysOf(problemsOf(t, err)); !slices.Equal(got, tc.keys) {
					t.Errorf("problems with %v, want %v:\n%v", got, tc.keys, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := cfg.GitHub
			if !slices.Equal(g.Repos, tc.repos) || g.DefaultRepository() != tc.repos[0] || !slices.Equal(g.Organizations, tc.orgs) && len(tc.orgs) > 0 ||
				g.WatchReports != tc.watch || g.PollInterval.String() != tc.every || len(cfg.Deprecations) != tc.deprec {
				t.Errorf("read as repos %v, orgs %v, watch %v every %s, deprecations %v", g.Repos, g.Organizations, g.WatchReports, g.PollInterval, cfg.Deprecations)
			}
		})
	}
}
