package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// MarkHandled records that an event has been handled. It reports false if
// the event was handled before, in which case the caller must do nothing.
// Call it in the transaction that records what handling the event decided.
func (s *Store) MarkHandled(ctx context.Context, eventID string, now time.Time) (first bool, err error) {
	res, err := s.db.Exec(ctx, `INSERT INTO handled_events (event_id, handled_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, eventID, millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// WasHandled reports whether an event has been handled.
func (s *Store) WasHandled(ctx context.Context, eventID string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM handled_events WHERE event_id = $1`, eventID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ForgetHandledBefore drops handled-event records older than t: a homeserver
// does not redeliver events that old.
func (s *Store) ForgetHandledBefore(ctx context.Context, t time.Time) error {
	_, err := s.db.Exec(ctx, `DELETE FROM handled_events WHERE handled_at < $1`, millis(t))
	return err
}

// PruneOutboxBefore drops finished outbox rows (made, failed, refused,
// cancelled) finished before t (pending work is never dropped) and returns
// how many it dropped.
func (s *Store) PruneOutboxBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM outbox WHERE state <> 'pending' AND done_at < $1`, millis(t))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SyncPosition returns the stored sync token, empty before the first sync.
func (s *Store) SyncPosition(ctx context.Context) (string, error) {
	var token string
	err := s.db.QueryRow(ctx, `SELECT next_batch FROM sync_position WHERE id = 1`).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return token, err
}

// SetSyncPosition stores the sync token to resume from.
func (s *Store) SetSyncPosition(ctx context.Context, token string) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO sync_position (id, next_batch) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET next_batch = excluded.next_batch`, token)
	return err
}

// AwaitingEvent is an encrypted event noted before decryption and not yet
// handled.
type AwaitingEvent struct {
	Room    string
	Event   string
	NotedAt time.Time
}

// NoteEncrypted notes an encrypted event before it is decrypted.
func (s *Store) NoteEncrypted(ctx context.Context, room string, eventID string, now time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO awaiting_keys (event_id, room_id, noted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, eventID, room, millis(now))
	return err
}

// DoneEncrypted forgets a noted event: it was handled, or cannot be decrypted.
func (s *Store) DoneEncrypted(ctx context.Context, eventID string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM awaiting_keys WHERE event_id = $1`, eventID)
	return err
}

// AwaitingEvents returns the noted events not yet handled, oldest first.
func (s *Store) AwaitingEvents(ctx context.Context) ([]AwaitingEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT event_id, room_id, noted_at FROM awaiting_keys ORDER BY noted_at, event_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AwaitingEvent
	for rows.Next() {
		var a AwaitingEvent
		var at int64
		if err := rows.Scan(&a.Event, &a.Room, &at); err != nil {
			return nil, err
		}
		a.NotedAt = fromMillis(at)
		out = append(out, a)
	}
	return out, rows.Err()
}
