package outbox

import (
	"crypto/rand"
	"encoding/hex"
)

// Email effects' payloads: what secbot sends from the security address
// (mail.send), and the posting of a reporter's message from the mailbox
// into the case room (mail.post), both made by mail's executors.

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
	// Nonce is the secret random part of the message's Message-ID (see
	// MailNonce); "" for rows queued before it existed.
	Nonce string `json:"nonce,omitempty"`
}

// MailNonce is a fresh secret for a Message-ID: 128 random bits in hex.
func MailNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
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
	// Unverified marks a message whose From nothing proves (no DKIM or
	// DMARC pass): the team reads it as from an unverified sender.
	Unverified bool `json:"unverified,omitempty"`
	// Machine says why the message is machine-sent ("" for a person's).
	Machine string `json:"machine,omitempty"`
}
