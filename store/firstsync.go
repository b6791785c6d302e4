package store

import "context"

// BeginFirstSync marks that the bot's first sync has begun (the sync
// position row exists, still empty), and reports whether an earlier start
// had begun it already: one cut short before its position was saved.
func (s *Store) BeginFirstSync(ctx context.Context) (again bool, err error) {
	_, begun, err := scalar[string](ctx, s.db, `SELECT next_batch FROM sync_position WHERE id = 1`)
	if begun || err != nil {
		return begun, err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO sync_position (id, next_batch) VALUES (1, '')`)
	return false, err
}
