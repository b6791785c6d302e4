package config

import (
	"net/url"
	"strings"
)

// EnvDatabasePassword is the environment variable the PostgreSQL password
// is read from when [database] password_file is empty.
const EnvDatabasePassword = "SECBOT_DATABASE_PASSWORD"

// Postgres reports whether the database is PostgreSQL ([database] url)
// rather than a SQLite file.
func (d Database) Postgres() bool { return d.URL != "" }

// ConnString is the URL to connect with: [database] url with the password
// from password_file or the environment added. It holds a secret.
func (d Database) ConnString() Secret {
	if d.URL == "" {
		return ""
	}
	u, err := url.Parse(d.URL)
	if err != nil || d.Password == "" {
		return Secret(d.URL)
	}
	name := "postgres"
	if u.User != nil {
		name = u.User.Username()
	}
	u.User = url.UserPassword(name, string(d.Password))
	return Secret(u.String())
}

// Where names the database for logs and check-config: the SQLite file, or
// the PostgreSQL URL (it never carries a password).
func (d Database) Where() string {
	if d.URL != "" {
		return d.URL
	}
	return d.Path
}

// validateDatabase checks [database]: exactly one of path (SQLite) and url
// (PostgreSQL), and for PostgreSQL a URL without a secret in it.
func (v *validator) validateDatabase() {
	d := &v.cfg.Database
	switch {
	case d.URL != "" && d.Path != "":
		v.add("database.url", d.URL, "set path (SQLite) or url (PostgreSQL), not both")
	case d.URL == "" && d.Path == "":
		v.add("database.path", "", "must name the SQLite file (or set url for PostgreSQL)")
	case d.URL == "":
		d.Path = v.path(d.Path)
		if d.PasswordFile != "" {
			v.add("database.password_file", d.PasswordFile, "is for PostgreSQL (url); a SQLite file has no password")
		}
	default:
		v.databaseURL()
	}
}

func (v *validator) databaseURL() {
	d := &v.cfg.Database
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		value := d.URL
		if err != nil || strings.Contains(d.URL, "@") {
			value = SecretValue
		}
		v.add("database.url", value, "must be a PostgreSQL URL like postgres://secbot@db.example.org/secbot?sslmode=verify-full")
		return
	}
	if _, has := u.User.Password(); has {
		v.add("database.url", SecretValue, "must not carry a password; use password_file or "+EnvDatabasePassword)
		return
	}
	if q := u.Query(); q.Has("password") {
		v.add("database.url", SecretValue, "must not carry a password; use password_file or "+EnvDatabasePassword)
		return
	}
	if strings.TrimPrefix(u.Path, "/") == "" {
		v.add("database.url", d.URL, "must name the database (postgres://host/secbot)")
	}
	d.Password, _ = v.secret("database.password_file", d.PasswordFile, EnvDatabasePassword)
}
