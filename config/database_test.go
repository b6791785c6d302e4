package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestAPostgresURLReplacesTheSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"db-password": "hunter2-db-file\n"})
	for _, tc := range []struct {
		name     string
		changes  map[string]string
		env      map[string]string
		conn     string
		password bool
	}{
		{"a URL alone drops the default path", map[string]string{"database.url": `"postgres://secbot@db.example.org/secbot?sslmode=verify-full"`}, nil,
			"postgres://secbot@db.example.org/secbot?sslmode=verify-full", false},
		{"the password comes from password_file", map[string]string{"database.url": `"postgres://secbot@db.example.org/secbot"`, "database.password_file": `"db-password"`}, nil,
			"postgres://secbot:hunter2-db-file@db.example.org/secbot", true},
		{"or from the environment", map[string]string{"database.url": `"postgresql://db.example.org:5433/secbot"`}, map[string]string{EnvDatabasePassword: "hunter2-db-env"},
			"postgresql://postgres:hunter2-db-env@db.example.org:5433/secbot", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base().with(tc.changes).toml()), dir, getenv(withEnv(tc.env)))
			if err != nil {
				t.Fatalf("refused:\n%v", err)
			}
			if !cfg.Database.Postgres() || cfg.Database.Path != "" {
				t.Errorf("database %+v: not PostgreSQL alone", cfg.Database)
			}
			if got := string(cfg.Database.ConnString()); got != tc.conn {
				t.Errorf("connects with %q, want %q", got, tc.conn)
			}
			if (cfg.Database.Password != "") != tc.password {
				t.Errorf("password set: %v, want %v", cfg.Database.Password != "", tc.password)
			}
			summary := cfg.Summary()
			assertNoSecret(t, "the summary", summary)
			if !strings.Contains(summary, "database: PostgreSQL postgres") {
				t.Errorf("the summary does not say PostgreSQL:\n%s", summary)
			}
		})
	}
	cfg, err := Parse([]byte(base().toml()), dir, getenv(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Postgres() || cfg.Database.Path != filepath.Join(dir, "secbot.db") || cfg.Database.ConnString() != "" {
		t.Errorf("without url the database is %+v", cfg.Database)
	}
}

func TestABadDatabaseSectionIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes map[string]string
		key     string
	}{
		{"both path and url", map[string]string{"database.path": `"secbot.db"`, "database.url": `"postgres://db.example.org/secbot"`}, "database.url"},
		{"neither", map[string]string{"database.path": `""`}, "database.path"},
		{"a URL of another database", map[string]string{"database.url": `"mysql://db.example.org/secbot"`}, "database.url"},
		{"a connection string that is not a URL", map[string]string{"database.url": `"host=db.example.org dbname=secbot"`}, "database.url"},
		{"a password in the URL", map[string]string{"database.url": `"postgres://secbot:hunter2@db.example.org/secbot"`}, "database.url"},
		{"a password in the query", map[string]string{"database.url": `"postgres://db.example.org/secbot?password=hunter2"`}, "database.url"},
		{"no database name", map[string]string{"database.url": `"postgres://db.example.org"`}, "database.url"},
		{"a password file that cannot be read", map[string]string{"database.url": `"postgres://db.example.org/secbot"`, "database.password_file": `"missing"`}, "database.password_file"},
		{"a password file for SQLite", map[string]string{"database.password_file": `"db-password"`}, "database.password_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base().with(tc.changes).toml()), t.TempDir(), getenv(baseEnv))
			ps := problemsOf(t, err)
			if keys := keysOf(ps); len(keys) != 1 || keys[0] != tc.key {
				t.Errorf("problems %v, want one for %s", ps, tc.key)
			}
			assertNoSecret(t, "the problems", ps.Error())
		})
	}
}
