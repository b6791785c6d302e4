package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// InstallationSecret returns the database's own random secret (32 bytes),
// made on first use: what a chat platform derives message IDs and marks
// from, so that a fresh database never takes an earlier one's for its own.
func (s *Store) InstallationSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, `INSERT INTO installation (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, hex.EncodeToString(fresh)); err != nil {
		return nil, fmt.Errorf("make the installation secret: %w", err)
	}
	stored, _, err := scalar[string](ctx, s.db, `SELECT secret FROM installation WHERE id = 1`)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(stored)
}

// Tag is what tagged under the installation's secret (HMAC-SHA256), its
// first n bytes in hex: a name (a message ID, a room alias, a mark) that
// is the same for every attempt of one effect, reveals nothing of what,
// and that nobody without the secret can make first.
func Tag(secret []byte, what string, n int) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(what))
	return hex.EncodeToString(m.Sum(nil)[:n])
}
