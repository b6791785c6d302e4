// Package store keeps secbot's state in SQLite (the default) or PostgreSQL:
// cases, the sync position, handled events, the outbox of side effects and
// the audit log, beside mautrix's crypto and state stores.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // registers the sqlite3-fk-wal driver
)

//go:embed upgrades/*.sql
var upgrades embed.FS

var upgradeTable = dbutil.BuildUpgradeTable().WithFSPath(upgrades, "upgrades").Finish()

// VersionTable is the name of the table that records secbot's schema version.
// The crypto and state stores of mautrix keep their own beside it.
const VersionTable = "secbot_version"

// Store is secbot's database. Its methods take the context of a transaction
// started with Tx, or run on their own.
type Store struct {
	// DB is the whole database, shared with mautrix's crypto store so that
	// one file holds everything to back up.
	DB *dbutil.Database
	db *dbutil.Database
	// accountAEAD seals the stored access token (see SealAccountWith).
	accountAEAD cipher.AEAD
	queries
	// guard is the active instance's epoch check (PostgreSQL; see leader.go).
	guard atomic.Pointer[EpochGuard]
	// session names an instance's connections to the database's fence
	// (PostgreSQL, DialPostgres; "" for a tool's store: see fence.go).
	session string
}

// queries are the QueryHelpers of the store's row types, all on its db.
type queries struct {
	cases       *dbutil.QueryHelper[*Case]
	deadlines   *dbutil.QueryHelper[*Deadline]
	effects     *dbutil.QueryHelper[Effect]
	audit       *dbutil.QueryHelper[AuditEntry]
	deadLetters *dbutil.QueryHelper[DeadLetter]
	awaiting    *dbutil.QueryHelper[AwaitingEvent]
	reminders   *dbutil.QueryHelper[EmbargoReminder]
}

func newQueries(db *dbutil.Database) queries {
	return queries{
		cases:       dbutil.MakeQueryHelper[*Case](db, nil),
		deadlines:   dbutil.MakeQueryHelper[*Deadline](db, nil),
		effects:     valueQuery[Effect](db),
		audit:       valueQuery[AuditEntry](db),
		deadLetters: valueQuery[DeadLetter](db),
		awaiting:    valueQuery[AwaitingEvent](db),
		reminders:   valueQuery[EmbargoReminder](db),
	}
}

// Open creates (mode 0600, in a directory of mode 0700 if it has to make one)
// or opens the database at path and runs its migrations.
func Open(ctx context.Context, path string, log zerolog.Logger) (*Store, error) {
	s, err := Dial(ctx, path, log)
	if err != nil {
		return nil, err
	}
	if err := s.upgradeOrClose(ctx, path); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenPostgres connects to the PostgreSQL database at url (postgres://…)
// and runs its migrations. The URL may carry the password; the caller adds
// it from a file or the environment, never the config itself.
//
// Its connections are no instance's: once an instance took office on the
// database they may write only while none holds the election's lock
// (fence.go). An instance dials with DialPostgres.
func OpenPostgres(ctx context.Context, url string, log zerolog.Logger) (*Store, error) {
	s, err := dialPostgres(ctx, url, "", log)
	if err != nil {
		return nil, err
	}
	if err := s.upgradeOrClose(ctx, "(postgres)"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) upgradeOrClose(ctx context.Context, name string) error {
	if err := s.Upgrade(ctx); err != nil {
		_ = s.Close()
		return fmt.Errorf("migrate database %s: %w", name, err)
	}
	return nil
}

// Upgrade runs the migrations the database lacks. With several instances
// on one database only the active one may (see Leader): dbutil takes no
// lock of its own. An instance's migrations on PostgreSQL run in one
// transaction, as the office in force (fence.go).
func (s *Store) Upgrade(ctx context.Context) error {
	if s.session != "" {
		return s.upgradeInOffice(ctx)
	}
	return s.db.Upgrade(ctx)
}

// Dial is Open without the migrations.
func Dial(ctx context.Context, path string, log zerolog.Logger) (*Store, error) {
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	raw, err := dbutil.NewWithDialect(fmt.Sprintf("file:%s?_txlock=immediate", path), "sqlite3-fk-wal")
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// SQLite allows one writer; a small pool keeps readers concurrent
	// without queuing writers behind busy timeouts.
	raw.RawDB.SetMaxOpenConns(4)
	raw.RawDB.SetMaxIdleConns(4)
	return open(raw, log), nil
}

// DialPostgres is OpenPostgres without the migrations, for an instance: a
// standby connects and waits, the instance that wins the election
// migrates. Its connections name its session (fence.go).
func DialPostgres(ctx context.Context, url string, log zerolog.Logger) (*Store, error) {
	return dialPostgres(ctx, url, newSession(), log)
}

func dialPostgres(ctx context.Context, url, session string, log zerolog.Logger) (*Store, error) {
	raw, err := openPostgres(url, session)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	raw.RawDB.SetMaxOpenConns(8)
	raw.RawDB.SetMaxIdleConns(4)
	if err := raw.RawDB.PingContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	s := open(raw, log)
	s.session = session
	return s, nil
}

func open(raw *dbutil.Database, log zerolog.Logger) *Store {
	raw.Log = dbutil.ZeroLogger(log.With().Str("db_section", "secbot").Logger())
	s := &Store{DB: raw, db: raw.Child(VersionTable, upgradeTable, raw.Log)}
	s.queries = newQueries(s.db)
	return s
}

// Postgres reports whether the store is on PostgreSQL.
func (s *Store) Postgres() bool { return s.db.Dialect == dbutil.Postgres }

// prepareFile makes sure the database file exists with owner-only access
// before SQLite opens it (SQLite's own files inherit the mode from it).
func prepareFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// An existing file created by hand with a wider mode is narrowed.
	return os.Chmod(path, 0o600)
}

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Tx runs fn in one transaction; the store's methods called with the
// context fn receives are part of it.
//
// On SQLite every transaction takes the write lock at its start
// (_txlock=immediate), so transactions are serial. On PostgreSQL they run
// SERIALIZABLE, which keeps that guarantee by failing one of two
// transactions that could not have run one after the other; fn is then run
// again in a new transaction, up to txAttempts times. fn must therefore
// leave nothing behind outside the database until it returns nil (what it
// computes is recomputed on a retry). Within an outer Tx, fn simply joins
// the outer transaction, which retries as a whole.
func (s *Store) Tx(ctx context.Context, fn func(ctx context.Context) error) error {
	if !s.Postgres() {
		return s.db.DoTxn(ctx, nil, fn)
	}
	if _, inTx := s.db.Execable(ctx).(dbutil.Transaction); inTx {
		return fn(ctx)
	}
	// Once an instance took office, every transaction checks its epoch.
	fn = s.fenced(fn)
	opts := &dbutil.TxnOptions{Isolation: sql.LevelSerializable}
	var err error
	for attempt := range txAttempts {
		err = s.db.DoTxn(ctx, opts, fn)
		if fencedByDatabase(err) {
			if g := s.guard.Load(); g != nil {
				g.fenced.Store(true)
			}
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		// A short, growing pause lets the transaction that won finish.
		select {
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
	return fmt.Errorf("transaction failed %d times on conflicts with concurrent ones: %w", txAttempts, err)
}

// txAttempts bounds how often Tx runs a function whose transaction keeps
// conflicting with concurrent ones.
const txAttempts = 10

// retryable reports whether err is PostgreSQL's serialization failure
// (40001) or deadlock (40P01): the transaction did nothing and may be run
// again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func nullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMillis(n.Int64)
}

// Tables lists every table of the database by name (secbot's, its version
// table and mautrix's), without SQLite's internal ones.
func (s *Store) Tables(ctx context.Context) ([]string, error) {
	query := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.Postgres() {
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	return column[string](s.db.Query(ctx, query))
}
