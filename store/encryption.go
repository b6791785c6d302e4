package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// RecordEncrypted records that room is end-to-end encrypted, with the
// content of its m.room.encryption event (JSON). The first record stays.
func (s *Store) RecordEncrypted(ctx context.Context, room, content string, now time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO encrypted_rooms (room_id, content, recorded_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, room, content, millis(now))
	return err
}

// EncryptedRoom returns the encryption content recorded for room, and
// whether the room is recorded encrypted at all.
func (s *Store) EncryptedRoom(ctx context.Context, room string) (content string, ok bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT content FROM encrypted_rooms WHERE room_id = $1`, room).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return content, err == nil, err
}

// TellDowngrade marks that the team is being told that room lost its
// encryption; it reports false if it was told before (or the room is not
// recorded encrypted), in which case the caller tells nobody.
func (s *Store) TellDowngrade(ctx context.Context, room string, now time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE encrypted_rooms SET downgrade_told_at = $2 WHERE room_id = $1 AND downgrade_told_at IS NULL`, room, millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
