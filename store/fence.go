package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mau.fi/util/dbutil"
)

// Every write fenced (PostgreSQL).
//
// EpochGuard checks the epoch in secbot's own transactions, but mautrix's
// crypto and state stores write through the same *dbutil.Database outside
// them (olm sessions, one-time keys, room state), and so do a few of the
// store's single writes. So the database checks every write itself:
//
//   - each connection of an instance (DialPostgres) names the instance's
//     session, a random token made when it dials, as the runtime parameter
//     secbot.session (set when the connection is made, so that it also
//     holds through a session-mode pooler);
//   - the leader row names the session of the instance in office
//     (TakeOffice sets it in the transaction that increases the epoch);
//   - a statement trigger (secbot_fence, migration v24) on every table but
//     leader reads the row FOR SHARE, so that a takeover's increment waits
//     for the statement's transaction, and refuses the statement
//     (SQLSTATE SB001) unless the row names the writer's session.
//     TakeOffice puts it on every table the schema has that lacks it, in
//     the transaction of the increment: a table mautrix made during the
//     previous office is fenced from the moment the new one begins.
//
// A connection of no instance (OpenPostgres: copy-db, the tests' and an
// operator's tools) may write only while no instance holds the election's
// lock. The instance that won the election migrates before it takes
// office: its migrations run in one transaction under the session still
// in the leader row (the office it is about to take over).
const fenceSession = "secbot.session"

// fenceCode is the SQLSTATE of a write the trigger refused.
const fenceCode = "SB001"

func newSession() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// openPostgres opens the pool of the database at url; with a session,
// every connection names it when it is made.
func openPostgres(url, session string) (*dbutil.Database, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	var opts []stdlib.OptionOpenDB
	if session != "" {
		opts = append(opts, stdlib.OptionAfterConnect(func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, `SELECT set_config('`+fenceSession+`', $1, false)`, session)
			return err
		}))
	}
	return dbutil.NewWithDB(stdlib.OpenDB(*cfg, opts...), "pgx")
}

// fencedByDatabase reports whether err is the trigger's refusal.
func fencedByDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == fenceCode
}

// upgradeInOffice runs the migrations in one transaction that writes as
// the office in force (its session, if the leader row names one): the
// instance that won the election and migrates has not taken office yet,
// and the tables may already be fenced.
func (s *Store) upgradeInOffice(ctx context.Context) error {
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		var has bool
		err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'leader' AND column_name = 'session')`).Scan(&has)
		if err != nil {
			return err
		}
		if has {
			if _, err := s.db.Exec(ctx, `SELECT set_config('`+fenceSession+`', session, true) FROM leader WHERE id = 1`); err != nil {
				return err
			}
		}
		return s.db.Upgrade(ctx)
	})
}

// installFences puts the fence trigger on every table of the schema that
// lacks it (leader excepted), in the caller's transaction.
func (s *Store) installFences(ctx context.Context) error {
	tables, err := column[string](s.db.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'leader'
			AND NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'secbot_fence')
		ORDER BY c.relname`))
	if err != nil {
		return fmt.Errorf("fence: list the tables: %w", err)
	}
	for _, table := range tables {
		if _, err := s.db.Exec(ctx, `CREATE TRIGGER secbot_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON `+quote(table)+
			` FOR EACH STATEMENT EXECUTE FUNCTION secbot_fence()`); err != nil {
			return fmt.Errorf("fence %s: %w", table, err)
		}
	}
	return nil
}

// unfenced lists the tables of a PostgreSQL store without the fence
// trigger (leader is one of them: the takeover writes it).
func (s *Store) unfenced(ctx context.Context) ([]string, error) {
	return column[string](s.db.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
			AND NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'secbot_fence')
		ORDER BY c.relname`))
}
