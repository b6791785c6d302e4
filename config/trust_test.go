package config

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"maunium.net/go/mautrix/crypto/utils"
)

func TestTheRecoveryKeyFileIsCheckedWithoutShowingIt(t *testing.T) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	key := utils.EncodeBase58RecoveryKey(raw)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		problem       string // "" when accepted
	}{
		{"a recovery key, owner only", key, 0o600, ""},
		{"not yet written", "", 0, ""},
		{"readable by others", key, 0o644, "chmod 600"},
		{"not a recovery key", "hunter2 not a key", 0o600, "does not hold a recovery key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.mode != 0 {
				if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			toml := base().with(map[string]string{"matrix.recovery_key_file": `"` + path + `"`}).toml()
			_, err := Parse([]byte(toml), dir, getenv(baseEnv))
			if tc.problem == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ps := problemsOf(t, err)
			if !strings.Contains(ps.Error(), tc.problem) {
				t.Errorf("problems %q lack %q", ps.Error(), tc.problem)
			}
			for _, secret := range []string{key, "hunter2"} {
				if strings.Contains(ps.Error(), secret) {
					t.Errorf("the problem shows the file's content: %q", ps.Error())
				}
			}
		})
	}
	if _, err := Parse([]byte(base().with(map[string]string{"matrix.recovery_key_file": `"/no/such/folder/key"`}).toml()), dir, getenv(baseEnv)); err == nil {
		t.Error("a recovery key file in a folder that does not exist was accepted")
	}
	path := filepath.Join(dir, "written")
	if err := WriteRecoveryKey(path, key); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadRecoveryKey(path); err != nil || got != key {
		t.Errorf("read back %q, %v", got, err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("written with mode %v", info.Mode().Perm())
	}
}

func TestIdentitiesInStrictModeNameEveryMember(t *testing.T) {
	k := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	ids := func(s string) string {
		return base().with(map[string]string{"team.identities": s}).toml()
	}
	if _, err := Parse([]byte(ids(`{"@alice:example.org" = "`+k+`", "@bob:example.org" = "`+k+`", "@carol:example.org" = "`+k+`"}`)), "/etc", getenv(baseEnv)); err != nil {
		t.Errorf("every member named: %v", err)
	}
	for name, tc := range map[string]struct{ value, key string }{
		"a member left out": {`{"@alice:example.org" = "` + k + `", "@bob:example.org" = "` + k + `"}`, "team.identities"},
		"not a key":         {`{"@alice:example.org" = "xyz", "@bob:example.org" = "` + k + `", "@carol:example.org" = "` + k + `"}`, "team.identities.@alice:example.org"},
		"not a member":      {`{"@mallory:example.org" = "` + k + `", "@alice:example.org" = "` + k + `", "@bob:example.org" = "` + k + `", "@carol:example.org" = "` + k + `"}`, "team.identities.@mallory:example.org"},
	} {
		_, err := Parse([]byte(ids(tc.value)), "/etc", getenv(baseEnv))
		if ps := problemsOf(t, err); !strings.Contains(ps.Error(), tc.key) {
			t.Errorf("%s: problems %q do not name %s", name, ps.Error(), tc.key)
		}
	}
}
