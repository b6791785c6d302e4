package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// Identity is a team member's pinned cross-signing identity.
type Identity struct {
	Member    disclosure.Person
	MasterKey string
	PinnedAt  time.Time
	// PinnedBy is who pinned it: the bot on first sight, or the
	// coordinator who re-pinned it.
	PinnedBy disclosure.Person
	// Announced is a changed key the team room was told about.
	Announced string
}

// IdentityOf returns member's pinned identity, or ErrNotFound.
func (s *Store) IdentityOf(ctx context.Context, member disclosure.Person) (Identity, error) {
	var i Identity
	var at int64
	err := s.db.QueryRow(ctx, `SELECT user_id, master_key, pinned_at, pinned_by, announced_key FROM team_identities WHERE user_id = $1`, member).
		Scan(&i.Member, &i.MasterKey, &at, &i.PinnedBy, &i.Announced)
	if errors.Is(err, sql.ErrNoRows) {
		return Identity{}, ErrNotFound
	} else if err != nil {
		return Identity{}, err
	}
	i.PinnedAt = fromMillis(at)
	return i, nil
}

// PinIdentity pins member's master key, replacing any earlier pin.
func (s *Store) PinIdentity(ctx context.Context, i Identity) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO team_identities (user_id, master_key, pinned_at, pinned_by, announced_key) VALUES ($1, $2, $3, $4, '')
		ON CONFLICT (user_id) DO UPDATE SET master_key = excluded.master_key, pinned_at = excluded.pinned_at, pinned_by = excluded.pinned_by, announced_key = ''`,
		i.Member, i.MasterKey, millis(i.PinnedAt), i.PinnedBy)
	return err
}

// AnnounceIdentity records that the team room was told member's identity
// changed to key. It reports false when it had been told already.
func (s *Store) AnnounceIdentity(ctx context.Context, member disclosure.Person, key string) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE team_identities SET announced_key = $2 WHERE user_id = $1 AND announced_key != $2`, member, key)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// KnownDevices returns the devices recorded for user (none before the
// first look).
func (s *Store) KnownDevices(ctx context.Context, user disclosure.Person) ([]string, error) {
	return column[string](s.db.Query(ctx, `SELECT device_id FROM known_devices WHERE user_id = $1 ORDER BY device_id`, user))
}

// KnowDevice records one of user's devices.
func (s *Store) KnowDevice(ctx context.Context, user disclosure.Person, device string, at time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO known_devices (user_id, device_id, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, user, device, millis(at))
	return err
}
