package store

import (
	"context"
)

// PostedParts returns the parts of effect's post already made (part key →
// event ID): a retry posts only the others.
func (s *Store) PostedParts(ctx context.Context, effectID int64) (map[string]string, error) {
	return pairMap[string, string](s.db.Query(ctx, `SELECT part, event_id FROM post_parts WHERE effect_id = $1`, effectID))
}

// RecordPostedPart records that a part of effect's post was made.
func (s *Store) RecordPostedPart(ctx context.Context, effectID int64, part, eventID string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO post_parts (effect_id, part, event_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, effectID, part, eventID)
	return err
}

// ForgetPostedParts drops the records of posts whose effect is no longer
// pending (made, given up or pruned): nothing retries them.
func (s *Store) ForgetPostedParts(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM post_parts WHERE effect_id NOT IN (SELECT id FROM outbox WHERE state = 'pending')`)
	return err
}
