package store

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// sqliteFiles are the files of a SQLite database (none on PostgreSQL).
func sqliteFiles(db dialect, path string) []string {
	if db != sqliteDB {
		return nil
	}
	return []string{path, path + "-wal"}
}

const testToken = "syt_c2VjYm90_secret-access-token-0123456789"

// The database holds no usable access token: the file (and a backup of it)
// does not contain it, and the login comes back only with the pickle key.
func TestTheAccessTokenIsStoredSealed(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		s, path := openTest(t, db)
		if err := s.SealAccountWith([]byte("pickle-key-one")); err != nil {
			t.Fatal(err)
		}
		want := Account{UserID: "matrix:@secbot:example.org", DeviceID: "DEVICE", AccessToken: testToken}
		if err := s.SetAccount(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Account(ctx)
		if err != nil || *got != want {
			t.Fatalf("read back %+v, %v", got, err)
		}
		var raw string
		if err := s.db.QueryRow(ctx, `SELECT access_token FROM account`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, testToken) || !strings.HasPrefix(raw, sealedPrefix) {
			t.Errorf("the stored token is %q", raw)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, f := range sqliteFiles(db, path) {
			data, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(testToken)) {
				t.Errorf("%s holds the access token in the clear", f)
			}
		}

		// Another pickle key opens nothing; no key stores nothing.
		other, err := reopen(ctx, db, path)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.Account(ctx); err == nil {
			t.Error("the sealed token was read without the pickle key")
		}
		if err := other.SetAccount(ctx, want); err == nil {
			t.Error("a token was stored without a key to seal it")
		}
		if err := other.SealAccountWith([]byte("pickle-key-two")); err != nil {
			t.Fatal(err)
		}
		if a, err := other.Account(ctx); err == nil {
			t.Errorf("another pickle key opened the token: %+v", a)
		}
	})
}

// A database written by a secbot that kept the token in the clear keeps
// working, and its token is sealed at the first read.
func TestAClearAccessTokenIsReadAndSealed(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		s, _ := openTest(t, db)
		if _, err := s.db.Exec(ctx, `INSERT INTO account (id, user_id, device_id, access_token) VALUES (1, '@secbot:example.org', 'DEVICE', $1)`, testToken); err != nil {
			t.Fatal(err)
		}
		if err := s.SealAccountWith([]byte("pickle-key-one")); err != nil {
			t.Fatal(err)
		}
		got, err := s.Account(ctx)
		if err != nil || got.AccessToken != testToken || got.DeviceID != "DEVICE" {
			t.Fatalf("the clear row read as %+v, %v", got, err)
		}
		var raw string
		if err := s.db.QueryRow(ctx, `SELECT access_token FROM account`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(raw, sealedPrefix) {
			t.Errorf("after the first read the row still holds %q", raw)
		}
		if again, err := s.Account(ctx); err != nil || again.AccessToken != testToken {
			t.Errorf("the sealed row reads as %+v, %v", again, err)
		}
	})
}
