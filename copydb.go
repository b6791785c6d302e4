package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/sqlstatestore"

	"github.com/enarx/secbot/config"
	"github.com/enarx/secbot/store"
)

// copyDB is `secbot copy-db -from secbot.db -to postgres://…`: it moves an
// installation from its SQLite file to an empty PostgreSQL database, every
// table included (mautrix's crypto and state stores: the same device and
// its keys go on). Stop the bot first. The password comes from the URL or
// SECBOT_DATABASE_PASSWORD.
func copyDB(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("secbot copy-db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite file to copy")
	to := fs.String("to", "", "the empty PostgreSQL database to copy into (postgres://…)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || *to == "" {
		fmt.Fprintln(stderr, "secbot copy-db: -from FILE and -to postgres://… are both needed")
		return 2
	}
	target, err := withPassword(*to, os.Getenv(config.EnvDatabasePassword))
	if err != nil {
		fmt.Fprintf(stderr, "secbot copy-db: -to: %v\n", err)
		return 2
	}
	counts, err := copyDatabase(ctx, *from, target)
	if err != nil {
		fmt.Fprintf(stderr, "secbot copy-db: %v\n", err)
		return 1
	}
	tables := make([]string, 0, len(counts))
	total := 0
	for t, n := range counts {
		tables = append(tables, t)
		total += n
	}
	slices.Sort(tables)
	for _, t := range tables {
		fmt.Fprintf(stdout, "%-40s %d rows\n", t, counts[t])
	}
	fmt.Fprintf(stdout, "copied %d rows of %d tables from %s; set [database] url and start secbot on it\n", total, len(tables), *from)
	return 0
}

// withPassword adds password to a postgres:// URL that has none.
func withPassword(raw, password string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("not a postgres:// URL")
	}
	if _, has := u.User.Password(); has || password == "" {
		return raw, nil
	}
	name := "postgres"
	if u.User != nil {
		name = u.User.Username()
	}
	u.User = url.UserPassword(name, password)
	return u.String(), nil
}

func copyDatabase(ctx context.Context, from, to string) (map[string]int, error) {
	if _, err := os.Stat(from); err != nil {
		return nil, fmt.Errorf("-from: %w", err)
	}
	empty, err := store.PostgresIsEmpty(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("-to: %s", strings.ReplaceAll(err.Error(), to, "the target"))
	}
	if !empty {
		return nil, errors.New("the target database is not empty: copy-db writes only into a new, empty database")
	}
	src, err := store.Open(ctx, from, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := store.OpenPostgres(ctx, to, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	// mautrix's stores at their latest versions on both sides, so that
	// their tables match.
	for _, st := range []*store.Store{src, dst} {
		if err := upgradeMautrixStores(ctx, st.DB); err != nil {
			return nil, err
		}
	}
	return src.CopyInto(ctx, dst)
}

// upgradeMautrixStores makes (or brings up to date) the crypto and state
// stores the bot keeps beside its own tables.
func upgradeMautrixStores(ctx context.Context, db *dbutil.Database) error {
	if err := crypto.NewSQLCryptoStore(db, dbutil.NoopLogger, "", "", nil).DB.Upgrade(ctx); err != nil {
		return fmt.Errorf("the crypto store: %w", err)
	}
	if err := sqlstatestore.NewSQLStateStore(db, dbutil.NoopLogger, false).Upgrade(ctx); err != nil {
		return fmt.Errorf("the state store: %w", err)
	}
	return nil
}
