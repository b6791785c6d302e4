package store

import (
	"context"
	"time"

	"go.mau.fi/util/dbutil"
)

// MarkHandled records that an event has been handled, for good: a
// redelivery of it, however late, changes nothing. It reports false if the
// event was handled before, in which case the caller must do nothing.
// Call it in the transaction that records what handling the event decided.
func (s *Store) MarkHandled(ctx context.Context, eventID string, now time.Time) (first bool, err error) {
	return s.markHandled(ctx, eventID, now, false)
}

// MarkHandledBriefly is MarkHandled for an event whose handling changed
// nothing but an answer (chatter, a notice): its record is pruned after
// the retention, and a redelivery after that is answered again.
func (s *Store) MarkHandledBriefly(ctx context.Context, eventID string, now time.Time) (first bool, err error) {
	return s.markHandled(ctx, eventID, now, true)
}

func (s *Store) markHandled(ctx context.Context, eventID string, now time.Time, prunable bool) (bool, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context) error {
		res, err := s.db.Exec(ctx, `INSERT INTO handled_events (event_id, handled_at, prunable) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, eventID, millis(now), prunable)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// WasHandled reports whether an event has been handled.
func (s *Store) WasHandled(ctx context.Context, eventID string) (bool, error) {
	_, ok, err := scalar[int](ctx, s.db, `SELECT 1 FROM handled_events WHERE event_id = $1`, eventID)
	return ok, err
}

// ForgetHandledBefore drops the prunable handled-event records older than
// t. The others are kept: a homeserver can redeliver an event of any age.
func (s *Store) ForgetHandledBefore(ctx context.Context, t time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM handled_events WHERE prunable AND handled_at < $1`, millis(t))
	return err
}

// LastCommandSent returns when the newest team command handled in room
// was sent (zero before the first).
func (s *Store) LastCommandSent(ctx context.Context, room string) (time.Time, error) {
	at, ok, err := scalar[int64](ctx, s.db, `SELECT sent_at FROM room_commands WHERE room_id = $1`, room)
	if !ok {
		return time.Time{}, err
	}
	return fromMillis(at), nil
}

// NoteCommandSent records that a team command sent at sent was handled in
// room; an older time than the one recorded changes nothing.
func (s *Store) NoteCommandSent(ctx context.Context, room string, sent time.Time) error {
	_, err := s.exec(ctx, `
		INSERT INTO room_commands (room_id, sent_at) VALUES ($1, $2)
		ON CONFLICT (room_id) DO UPDATE SET sent_at = excluded.sent_at WHERE excluded.sent_at > room_commands.sent_at`,
		room, millis(sent))
	return err
}

// PruneOutboxBefore drops finished outbox rows (made, failed, refused,
// cancelled) finished before t (pending work is never dropped) and returns
// how many it dropped.
func (s *Store) PruneOutboxBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM outbox WHERE state <> 'pending' AND done_at < $1`, millis(t))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SyncPosition returns the stored sync token, empty before the first sync.
func (s *Store) SyncPosition(ctx context.Context) (string, error) {
	token, _, err := scalar[string](ctx, s.db, `SELECT next_batch FROM sync_position WHERE id = 1`)
	return token, err
}

// SetSyncPosition stores the sync token to resume from.
func (s *Store) SetSyncPosition(ctx context.Context, token string) error {
	return s.write(ctx, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `
			INSERT INTO sync_position (id, next_batch) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET next_batch = excluded.next_batch`, token)
		return err
	})
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
	_, err := s.exec(ctx, `INSERT INTO awaiting_keys (event_id, room_id, noted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, eventID, room, millis(now))
	return err
}

// DoneEncrypted forgets a noted event: it was handled, or cannot be decrypted.
func (s *Store) DoneEncrypted(ctx context.Context, eventID string) error {
	_, err := s.exec(ctx, `DELETE FROM awaiting_keys WHERE event_id = $1`, eventID)
	return err
}

// AwaitingEvents returns the noted events not yet handled, oldest first.
func (s *Store) AwaitingEvents(ctx context.Context) ([]AwaitingEvent, error) {
	return s.awaiting.QueryMany(ctx, `SELECT event_id, room_id, noted_at FROM awaiting_keys ORDER BY noted_at, event_id`)
}

// Scan reads an awaiting_keys row (dbutil.DataStruct).
func (a AwaitingEvent) Scan(row dbutil.Scannable) (AwaitingEvent, error) {
	var at int64
	err := row.Scan(&a.Event, &a.Room, &at)
	a.NotedAt = fromMillis(at)
	return a, err
}
