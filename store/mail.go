package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// MailLane is the lane of an email case's mail to its reporter.
func MailLane(caseID disclosure.CaseID) string { return "mail:" + caseID.String() }

// SetMailThread records a reporter's message in their case's thread: the
// first one is the root, each is the last until the next.
func (s *Store) SetMailThread(ctx context.Context, caseID disclosure.CaseID, messageID string, now time.Time) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO mail_threads (case_id, root, last, updated_at) VALUES ($1, $2, $2, $3)
		ON CONFLICT (case_id) DO UPDATE SET last = excluded.last, updated_at = excluded.updated_at`,
		caseID.String(), messageID, millis(now))
	return err
}

// MailThread returns the root and last Message-ID of an email case's
// thread, or ErrNotFound.
func (s *Store) MailThread(ctx context.Context, caseID disclosure.CaseID) (root, last string, err error) {
	err = s.db.QueryRow(ctx, `SELECT root, last FROM mail_threads WHERE case_id = $1`, caseID.String()).Scan(&root, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return root, last, err
}

// MarkMailHandled records that the message messageID from sender was
// handled, so that it is known again under any UID.
func (s *Store) MarkMailHandled(ctx context.Context, messageID, sender string, now time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO mail_handled (message_id, sender, handled_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		messageID, sender, millis(now))
	return err
}

// MailHandled reports whether the message messageID from sender was handled.
func (s *Store) MailHandled(ctx context.Context, messageID, sender string) (bool, error) {
	_, ok, err := scalar[int](ctx, s.db, `SELECT 1 FROM mail_handled WHERE message_id = $1 AND sender = $2`, messageID, sender)
	return ok, err
}

// MailboxUIDValidity returns the UIDVALIDITY a mailbox had when last
// selected; ok is false if it never was.
func (s *Store) MailboxUIDValidity(ctx context.Context, mailbox string) (uidValidity uint32, ok bool, err error) {
	v, ok, err := scalar[int64](ctx, s.db, `SELECT uidvalidity FROM mail_mailboxes WHERE mailbox = $1`, mailbox)
	return uint32(v), ok, err
}

// SetMailboxUIDValidity records the UIDVALIDITY a mailbox has.
func (s *Store) SetMailboxUIDValidity(ctx context.Context, mailbox string, uidValidity uint32, now time.Time) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO mail_mailboxes (mailbox, uidvalidity, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, updated_at = excluded.updated_at`,
		mailbox, int64(uidValidity), millis(now))
	return err
}
