package handlers

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/store"
)

// TestMain stops the PostgreSQL cluster the tests may have started.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openStore opens the store the handlers' tests run on: SQLite, or with
// SECBOT_TEST_DB=postgres a fresh database of a throwaway PostgreSQL.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	var st *store.Store
	var err error
	switch db := os.Getenv("SECBOT_TEST_DB"); db {
	case "", "sqlite":
		st, err = store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	case "postgres":
		st, err = store.OpenPostgres(ctx, pgtest.Shared(t), zerolog.Nop())
	default:
		t.Fatalf("SECBOT_TEST_DB=%q: sqlite or postgres", db)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
