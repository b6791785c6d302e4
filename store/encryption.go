package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/enarx/secbot/disclosure"
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
	return scalar[string](ctx, s.db, `SELECT content FROM encrypted_rooms WHERE room_id = $1`, room)
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

// RoomUse says what a room is to secbot: the case whose room (or direct
// chat with the reporter, dm) it is, or known if it is a direct chat the
// bot keeps with someone. All empty: a room of someone else's.
func (s *Store) RoomUse(ctx context.Context, room string) (caseID string, dm, known bool, err error) {
	platform, native := disclosure.Split(room)
	err = s.db.QueryRow(ctx, `SELECT c.id, r.role = 'dm' FROM case_rooms r JOIN cases c ON c.id = r.case_id
		WHERE r.platform = $1 AND r.room_id = $2 AND r.role IN ('case', 'dm') ORDER BY c.created_at DESC LIMIT 1`, platform, native).Scan(&caseID, &dm)
	if err == nil {
		return caseID, dm, true, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return "", false, false, err
	}
	_, known, err = scalar[int](ctx, s.db, `SELECT 1 FROM chat_dms WHERE platform = $1 AND room_id = $2`, platform, native)
	return "", known, known, err
}

// BotIdentity returns the bot's own master key as pinned ("" if none yet).
func (s *Store) BotIdentity(ctx context.Context) (string, error) {
	key, _, err := scalar[string](ctx, s.db, `SELECT master_key FROM bot_identity WHERE id = 1`)
	return key, err
}

// PinBotIdentity pins the bot's own master key, if none is pinned yet.
func (s *Store) PinBotIdentity(ctx context.Context, key string, now time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO bot_identity (id, master_key, pinned_at) VALUES (1, $1, $2) ON CONFLICT DO NOTHING`, key, millis(now))
	return err
}
