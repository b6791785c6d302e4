package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes (seeds in testdata/fuzz/FuzzParse):
// it must not panic, must return a configuration or a non-empty Problems,
// and must never show a secret it was given through the environment.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base().toml()))
	if example, err := os.ReadFile("../config.example.toml"); err == nil {
		f.Add([]byte(secretFiles.ReplaceAllString(string(example), `$1 = ""`)))
	}
	f.Add([]byte("[sla]\nacknowledge = 5"))
	f.Add([]byte("[[escalation]]\nafter = \"-1h\""))
	f.Add([]byte("\x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, dir, getenv(baseEnv))
		if err == nil {
			if cfg == nil {
				t.Fatal("no configuration and no error")
			}
			if cfg.Team.RoomID == "" || len(cfg.Team.MemberIDs) == 0 || len(cfg.Ladder) == 0 || cfg.Calendar.Location == nil {
				t.Fatalf("accepted without what validation derives: %+v", cfg)
			}
			return
		}
		if cfg != nil {
			t.Fatal("both a configuration and an error")
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("the error is not a non-empty Problems: %T %v", err, err)
		}
		if !strings.Contains(string(data), "hunter2") {
			assertNoSecret(t, "the problems", err.Error())
		}
	})
}
