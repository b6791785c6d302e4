package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/enarx/secbot/disclosure"
)

// Account is the bot's stored login.
type Account struct {
	UserID      disclosure.Person
	DeviceID    string
	AccessToken string
}

// sealedPrefix marks an access token stored encrypted: AES-256-GCM under a
// key derived from the pickle key, bound to the row's user and device.
// A row without it is from before tokens were sealed, read as it is and
// sealed on the spot.
const sealedPrefix = "sealed:v1:"

// SealAccountWith gives the store the secret (the pickle key, kept with
// the deployment, never in the database) that the access token is
// encrypted with: a copy of the database, which operators back up, does
// not hand out the bot's login.
func (s *Store) SealAccountWith(secret []byte) error {
	if len(secret) == 0 {
		return errors.New("no secret to seal the access token with")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "secbot account access token", 32)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	s.accountAEAD = aead
	return nil
}

// Account returns the stored login, or ErrNotFound before the first login.
// A token stored in the clear (by an older secbot) is sealed now.
func (s *Store) Account(ctx context.Context) (*Account, error) {
	var a Account
	var stored string
	err := s.db.QueryRow(ctx, `SELECT user_id, device_id, access_token FROM account WHERE id = 1`).Scan(&a.UserID, &a.DeviceID, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	if sealed, ok := strings.CutPrefix(stored, sealedPrefix); ok {
		if a.AccessToken, err = s.openToken(a, sealed); err != nil {
			return nil, err
		}
		return &a, nil
	}
	a.AccessToken = stored
	if s.accountAEAD != nil {
		if err := s.SetAccount(ctx, a); err != nil {
			return nil, fmt.Errorf("seal the stored access token: %w", err)
		}
	}
	return &a, nil
}

// SetAccount stores the bot's login, its access token sealed.
func (s *Store) SetAccount(ctx context.Context, a Account) error {
	sealed, err := s.sealToken(a)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `
		INSERT INTO account (id, user_id, device_id, access_token) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, device_id = excluded.device_id, access_token = excluded.access_token`,
		a.UserID, a.DeviceID, sealed)
	return err
}

func tokenAAD(a Account) []byte { return []byte(string(a.UserID) + "\x00" + a.DeviceID) }

func (s *Store) sealToken(a Account) (string, error) {
	if s.accountAEAD == nil {
		return "", errors.New("the access token would be stored in the clear: no secret to seal it with")
	}
	nonce := make([]byte, s.accountAEAD.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.accountAEAD.Seal(nonce, nonce, []byte(a.AccessToken), tokenAAD(a))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

func (s *Store) openToken(a Account, sealed string) (string, error) {
	if s.accountAEAD == nil {
		return "", errors.New("the stored access token is sealed, and no secret to open it was given")
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	n := s.accountAEAD.NonceSize()
	if err != nil || len(raw) < n {
		return "", errors.New("the stored access token is damaged")
	}
	plain, err := s.accountAEAD.Open(nil, raw[:n], raw[n:], tokenAAD(a))
	if err != nil {
		return "", errors.New("the stored access token cannot be opened with this pickle key (is it the key this database was made with?)")
	}
	return string(plain), nil
}
