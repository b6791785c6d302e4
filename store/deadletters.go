package store

import (
	"context"
	"time"

	"go.mau.fi/util/dbutil"
)

// DeadLetter is an event given up on after its handler kept failing.
type DeadLetter struct {
	Room     string
	Event    string
	ParkedAt time.Time
	Attempts int
	// Category is a short, fixed word (e.g. "panic", "timeout"), never an
	// error's text: that could quote the message.
	Category string
}

// ParkEvent records an event as a dead letter; parking it again updates
// the record.
func (s *Store) ParkEvent(ctx context.Context, d DeadLetter) error {
	_, err := s.exec(ctx, `
		INSERT INTO dead_letters (event_id, room_id, parked_at, attempts, category) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (event_id) DO UPDATE SET parked_at = excluded.parked_at, attempts = excluded.attempts, category = excluded.category`,
		d.Event, d.Room, millis(d.ParkedAt), d.Attempts, d.Category)
	return err
}

// DeadLetters returns the parked events, oldest first.
func (s *Store) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	return s.deadLetters.QueryMany(ctx, `SELECT event_id, room_id, parked_at, attempts, category FROM dead_letters ORDER BY parked_at, event_id`)
}

// Scan reads a dead_letters row (dbutil.DataStruct).
func (d DeadLetter) Scan(row dbutil.Scannable) (DeadLetter, error) {
	var at int64
	err := row.Scan(&d.Event, &d.Room, &at, &d.Attempts, &d.Category)
	d.ParkedAt = fromMillis(at)
	return d, err
}
