package mail

import (
	"bufio"
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
)

// Envelope is what secbot reads of a new message to decide where it
// belongs: who sent it and what it answers. It holds no text of the
// message: the subject is only searched for a case ID.
type Envelope struct {
	Ref Ref
	// From is the sender's address, lower-cased ("" if none).
	From      string
	MessageID string
	// Thread is the message's In-Reply-To and References, in that order.
	Thread []string
	// SubjectCase is the case ID in the subject's [SR-…], if any.
	SubjectCase disclosure.CaseID
	// Automatic says why the message is machine-made ("" for a person's):
	// a bounce, an auto-reply, bulk mail, or secbot's own.
	Automatic string
	// Sender says whether From is proven the sender's (DKIM/DMARC).
	Sender Sender
	// Kind is what the handlers do with machine-made mail.
	Kind chat.MailKind
	// BounceOf is, for a delivery report, the case of secbot's mail it
	// returns (zero: none found yet).
	BounceOf disclosure.CaseID
}

// headerFields are the header fields secbot reads of a new message.
var headerFields = []string{
	"From", "Sender", "Return-Path", "Message-ID", "In-Reply-To", "References", "Subject",
	"Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress",
	"List-Id", "Content-Type", "Authentication-Results",
}

// subjectCase finds a case ID in brackets in a subject.
var subjectCase = regexp.MustCompile(`\[(SR-\d{4}-\d{4,})\]`)

// parseEnvelope reads the header fields of a message. self is the
// security address, whose own mail is automatic.
func parseEnvelope(ref Ref, raw []byte, self string) Envelope {
	env := Envelope{Ref: ref}
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		env.Automatic = "unreadable header"
		return env
	}
	h := mail.Header{Header: message.Header{Header: th}}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		env.From = strings.ToLower(from[0].Address)
	}
	env.MessageID, _ = h.MessageID()
	if ids, err := h.MsgIDList("In-Reply-To"); err == nil {
		env.Thread = append(env.Thread, ids...)
	}
	if ids, err := h.MsgIDList("References"); err == nil {
		env.Thread = append(env.Thread, ids...)
	}
	if subject, err := h.Subject(); err == nil {
		if m := subjectCase.FindStringSubmatch(subject); m != nil {
			env.SubjectCase, _ = disclosure.ParseCaseID(m[1])
		}
	}
	env.Automatic = classify(h, env.From, self)
	env.Kind = autoKind(h, env.From, self, env.Automatic)
	if env.Kind == chat.MailBounce {
		env.BounceOf, _ = ownCase(env.Thread, self)
	}
	return env
}

// autoKind says what machine-made mail is, by why it is machine-made: a
// delivery report (its signs looked at first: mail servers mark bounces
// auto-replied too), an auto-reply, mail only audited, or mail a program
// sent (a list, bulk mail, auto-generated), which is a report or a reply
// like a person's but is never answered automatically.
func autoKind(h mail.Header, from, self, reason string) chat.MailKind {
	switch {
	case reason == "":
		return chat.MailPerson
	case strings.EqualFold(from, self), reason == "unreadable header", reason == "no sender":
		return chat.MailIgnored
	case bounce(h, from):
		return chat.MailBounce
	case strings.HasPrefix(reason, "auto-submitted: auto-replied"), strings.HasPrefix(reason, "auto-reply"), reason == "delivery or read report":
		// A read receipt is an automatic answer too: it opens nothing.
		return chat.MailAutoReply
	}
	return chat.MailMachine
}

// bounce reports whether a message is a delivery report.
func bounce(h mail.Header, from string) bool {
	if t, params, err := h.ContentType(); err == nil && t == "multipart/report" && !strings.EqualFold(params["report-type"], "disposition-notification") {
		return true
	}
	if rp := strings.TrimSpace(h.Get("Return-Path")); h.Has("Return-Path") && (rp == "<>" || rp == "") {
		return true
	}
	local, _, _ := strings.Cut(from, "@")
	switch local {
	case "mailer-daemon", "postmaster", "mail-daemon", "bounce", "bounces":
		return true
	}
	return false
}

// ownCase is the case named by the first of ids that is a Message-ID of
// secbot's own mail from the security address's domain.
func ownCase(ids []string, address string) (disclosure.CaseID, bool) {
	_, domain, _ := strings.Cut(address, "@")
	for _, id := range ids {
		if m := ownMessageID.FindStringSubmatch(id); m != nil && strings.EqualFold(m[2], domain) {
			if c, err := disclosure.ParseCaseID(m[1]); err == nil {
				return c, true
			}
		}
	}
	return disclosure.CaseID{}, false
}

// classify says why a message is machine-made, "" if a person wrote it.
// Machine-made mail never opens a case (RFC 3834: an automatic answer to
// an automatic message is how mail loops start).
func classify(h mail.Header, from, self string) string {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && v != "no" {
		return "auto-submitted: " + v
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "junk", "list":
		return "precedence: " + strings.ToLower(strings.TrimSpace(h.Get("Precedence")))
	}
	for _, field := range []string{"X-Autoreply", "X-Autorespond"} {
		if h.Has(field) {
			return "auto-reply (" + field + ")"
		}
	}
	if h.Has("List-Id") {
		return "mailing list"
	}
	if rp := strings.TrimSpace(h.Get("Return-Path")); h.Has("Return-Path") && (rp == "<>" || rp == "") {
		return "bounce (empty return path)"
	}
	if t, _, err := h.ContentType(); err == nil && t == "multipart/report" {
		return "delivery or read report"
	}
	if from == "" {
		return "no sender"
	}
	local, _, _ := strings.Cut(from, "@")
	switch local {
	case "mailer-daemon", "postmaster", "mail-daemon", "noreply", "no-reply", "bounce", "bounces":
		return "mailer daemon (" + local + ")"
	}
	if strings.EqualFold(from, self) {
		return "secbot's own mail"
	}
	return ""
}

// ownMessageID is the shape of the Message-IDs secbot gives its mail:
// secbot.ROW.SECRET.CASE@DOMAIN, so a reply names its case (rows queued
// before the secret part existed have none).
var ownMessageID = regexp.MustCompile(`^secbot\.\d+\.(?:[0-9a-f]+\.)?(SR-\d{4}-\d{4,})@(.+)$`)

// MessageID is the Message-ID of the mail sent by outbox row effectID
// about a case, from the security address's domain. nonce is the row's
// secret random part (outbox.MailSendEffect.Nonce): nobody can know the
// Message-ID of a message before it is sent, so nobody can plant a copy
// that makes a retry believe it went out.
func MessageID(effectID int64, nonce string, caseID disclosure.CaseID, address string) string {
	_, domain, _ := strings.Cut(address, "@")
	id := "secbot." + strconv.FormatInt(effectID, 10) + "."
	if nonce != "" {
		id += nonce + "."
	}
	return id + caseID.String() + "@" + domain
}

// ThreadCase is the case a message answers: one named by secbot's own
// Message-IDs in its thread, else the [SR-…] of its subject.
func (e Envelope) ThreadCase(address string) (disclosure.CaseID, bool) {
	if c, ok := ownCase(e.Thread, address); ok {
		return c, true
	}
	return e.SubjectCase, !e.SubjectCase.IsZero()
}
