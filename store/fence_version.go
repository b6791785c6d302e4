package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNewerSchema is why an instance refuses a database: a version table
// records a schema newer than this binary knows (another instance, of a
// newer secbot, migrated it).
var ErrNewerSchema = errors.New("the database's schema is newer than this binary knows")

// RefuseNewerSchema returns an error wrapping ErrNewerSchema if secbot's
// version table, or one of others (a version table and the number of
// migrations this binary has for it: mautrix's crypto and state stores),
// records a newer schema, by dbutil's rule: its compat version (the
// oldest revision it declares itself readable by; its version unless a
// migration says "compatible with vN+") is past this binary's last
// migration. It only reads: an older binary that would take office on a
// newer database stops before it writes anything (the election's row, the
// fence, migrations), runs no timers and sends nothing. A table that does
// not exist yet is no objection.
func (s *Store) RefuseNewerSchema(ctx context.Context, others map[string]int) error {
	known := map[string]int{VersionTable: len(upgradeTable)}
	for table, n := range others {
		known[table] = n
	}
	for table, n := range known {
		version, compat, err := s.schemaVersion(ctx, table)
		if err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		if compat > n {
			return fmt.Errorf("%w: %s is at v%d (readable from v%d on), this binary knows up to v%d; run the newer secbot", ErrNewerSchema, table, version, compat, n)
		}
	}
	return nil
}

// schemaVersion reads a dbutil version table (0, 0 if there is none).
func (s *Store) schemaVersion(ctx context.Context, table string) (version, compat int, err error) {
	if ok, err := s.db.TableExists(ctx, table); err != nil || !ok {
		return 0, 0, err
	}
	query := `SELECT version, version FROM ` + quote(table) + ` LIMIT 1`
	if ok, err := s.db.ColumnExists(ctx, table, "compat"); err != nil {
		return 0, 0, err
	} else if ok {
		query = `SELECT version, COALESCE(NULLIF(compat, 0), version) FROM ` + quote(table) + ` LIMIT 1`
	}
	err = s.db.QueryRow(ctx, query).Scan(&version, &compat)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return version, compat, err
}
