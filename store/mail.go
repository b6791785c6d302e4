package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// Email effects: what secbot sends from the security address, and the
// posting of a reporter's message from the mailbox into the case room.
const (
	KindMailSend = "mail.send"
	KindMailPost = "mail.post"
)

// MailLane is the lane of an email case's mail to its reporter.
func MailLane(caseID disclosure.CaseID) string { return "mail:" + caseID.String() }

// MailSendEffect is a message to an email reporter, threaded to their
// last message. Its Message-ID is derived from the outbox row when it is
// sent. Text is what the bot or the team wrote, kept only until delivered.
type MailSendEffect struct {
	CaseID     string   `json:"case_id"`
	To         string   `json:"to"`
	Subject    string   `json:"subject"`
	Text       string   `json:"text"`
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// Auto marks the bot's own texts (RFC 3834 Auto-Submitted), not the
	// team's words.
	Auto bool `json:"auto,omitempty"`
}

// MailPostEffect posts a message of the security mailbox into its case's
// room. It names the message, never holds its text: the text is fetched
// from the mail server when the effect runs.
type MailPostEffect struct {
	CaseID      string `json:"case_id"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
	MessageID   string `json:"message_id"`
	// Reply marks a reporter's reply (not the first report).
	Reply bool `json:"reply,omitempty"`
	// Machine says why the message is machine-sent ("" for a person's).
	Machine string `json:"machine,omitempty"`
}

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
