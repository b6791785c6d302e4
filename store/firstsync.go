package store

import (
	"context"
	"database/sql"
	"errors"
)

// BeginFirstSync marks that the bot's first sync has begun (the sync
// position row exists, still empty), and reports whether an earlier start
// had begun it already: one cut short before its position was saved.
func (s *Store) BeginFirstSync(ctx context.Context) (again bool, err error) {
	var token string
	err = s.db.QueryRow(ctx, `SELECT next_batch FROM sync_position WHERE id = 1`).Scan(&token)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO sync_position (id, next_batch) VALUES (1, '')`)
	return false, err
}
