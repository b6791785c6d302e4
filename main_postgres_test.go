package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/sqlstatestore"

	"github.com/enarx/secbot/config"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// With [database] url, secbot's tables and mautrix's crypto and state
// stores are all in the PostgreSQL database, reached with the password from
// password_file (the URL in the config carries none). A wrong password is
// refused.
func TestAPostgresDatabaseHoldsEveryStore(t *testing.T) {
	ctx := context.Background()
	withPassword, err := url.Parse(pgtest.Shared(t))
	if err != nil {
		t.Fatal(err)
	}
	password, _ := withPassword.User.Password()
	bare := *withPassword
	bare.User = url.User(withPassword.User.Username())

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db-password"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(passwordFile string) *config.Config {
		t.Helper()
		return parsePGConfig(t, dir, bare.String(), passwordFile, "")
	}

	if err := os.WriteFile(filepath.Join(dir, "wrong"), []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, load("wrong").Database, zerolog.Nop())
	if err == nil {
		_ = st.Close()
		t.Fatal("a wrong password was accepted")
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("the error shows the password: %v", err)
	}
	t.Logf("a wrong password: %v", err)

	st, err = openStore(ctx, load("db-password").Database, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Postgres() {
		t.Fatal("the store is not on PostgreSQL")
	}
	cs := crypto.NewSQLCryptoStore(st.DB, dbutil.NoopLogger, "", "DEVICE", []byte("pickle-key-0123456789"))
	if err := cs.DB.Upgrade(ctx); err != nil {
		t.Fatalf("the crypto store on PostgreSQL: %v", err)
	}
	ss := sqlstatestore.NewSQLStateStore(st.DB, dbutil.NoopLogger, false)
	if err := ss.Upgrade(ctx); err != nil {
		t.Fatalf("the state store on PostgreSQL: %v", err)
	}
	for _, table := range []string{"cases", "outbox", "audit_log", "handled_events", "sync_position", "crypto_account", "crypto_olm_session", "mx_room_state"} {
		var exists bool
		if err := st.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1)`, table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s is not in the PostgreSQL database (%v)", table, err)
		}
	}
	if err := st.SetSyncPosition(ctx, "s42"); err != nil {
		t.Fatal(err)
	}
}
