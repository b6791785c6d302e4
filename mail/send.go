package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/enarx/secbot/internal/backoff"
)

// Outgoing is a message secbot sends from the security address.
type Outgoing struct {
	To      string
	Subject string
	// MessageID is derived from the outbox row (see MessageID), so that
	// a retry can find the message it may already have sent.
	MessageID string
	// InReplyTo and References thread the message to the reporter's.
	InReplyTo  string
	References []string
	Text       string
	// Auto marks an automatic answer (RFC 3834), so that the reporter's
	// auto-responder does not answer it; the team's words are not.
	Auto bool
}

// ErrRefused wraps an SMTP refusal no retry mends (a 5xx answer).
var ErrRefused = errors.New("the mail server refused the message")

// Compose renders the message: text/plain in UTF-8, from the security
// address, marked as an automatic answer (RFC 3834) when it is one.
func (c *Config) Compose(out Outgoing, date time.Time) ([]byte, error) {
	var h mail.Header
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{{Address: c.Address}})
	h.SetAddressList("To", []*mail.Address{{Address: out.To}})
	h.SetSubject(out.Subject)
	h.SetMessageID(out.MessageID)
	if out.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{out.InReplyTo})
	}
	if len(out.References) > 0 {
		h.SetMsgIDList("References", out.References)
	}
	if out.Auto {
		h.Set("Auto-Submitted", "auto-replied")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(out.Text, "\r\n", "\n"))); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Send delivers out once. Every message goes, in the same SMTP
// transaction, to the security mailbox too (an envelope recipient only,
// not in the headers): the server takes both or neither, so its copy there
// is the server's acceptance on record. With retry set (an earlier attempt
// may have got through before a crash) Send looks for the message in Sent,
// where delivered messages are filed, and for that copy in the mailbox,
// and sends nothing if either is there. Only a copy whose own Message-ID
// is ours, whole, counts, and in the mailbox (where anyone can deliver)
// only one from the security address, by its envelope too: with the
// secret part of our Message-IDs, nobody can plant one beforehand. A
// retry first waits retrySettle: the earlier attempt's message may still
// be on its way into the mailbox (see retrySettle).
func (c *Config) Send(ctx context.Context, out Outgoing, retry bool) error {
	raw, err := c.Compose(out, time.Now())
	if err != nil {
		return fmt.Errorf("%w: compose: %w", ErrRefused, err)
	}
	if retry {
		if err := backoff.Sleep(ctx, retrySettle); err != nil {
			return err
		}
	}
	return c.session(ctx, "", func(cl *imapclient.Client, _ *imap.SelectData) error {
		if err := c.ensureSent(cl); err != nil {
			return err
		}
		if retry {
			sent, err := c.folderHas(cl, SentFolder, out.MessageID, false)
			if err != nil || sent {
				return err
			}
			// Taken by the server, then a crash before it was filed.
			if taken, err := c.folderHas(cl, c.Mailbox, out.MessageID, true); err != nil || taken {
				if err != nil {
					return err
				}
				return fileSent(cl, raw)
			}
		}
		if err := c.submit(ctx, out.To, raw); err != nil {
			return err
		}
		return fileSent(cl, raw)
	})
}

// retrySettle is how long a retried send waits before it looks for the
// earlier attempt's message. A standby retries within a second of the
// active instance's death; the dead one's message may have reached the
// server whole (the end of its data sent, the answer not read), and the
// server goes on with it; many servers also queue what they took and
// file the security mailbox's copy a moment later. Looked for too soon,
// it is found nowhere and sent twice.
var retrySettle = 5 * time.Second // a var so that tests need not wait

// submit hands raw to the submission server.
func (c *Config) submit(ctx context.Context, to string, raw []byte) error {
	if c.SMTP == nil {
		return errors.New("no SMTP server configured")
	}
	host := c.SMTP.Hostname()
	conn, err := (&net.Dialer{Timeout: dialTimeout}).DialContext(ctx, "tcp", c.SMTP.Host)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.SMTP.Host, err)
	}
	var cl *smtp.Client
	switch {
	case c.SMTP.Scheme == "smtps":
		cl = smtp.NewClient(tlsClient(conn, c.tlsConfig(host)))
	case loopback(host):
		cl = smtp.NewClient(conn)
	default:
		if cl, err = smtp.NewClientStartTLS(conn, c.tlsConfig(host)); err != nil {
			return fmt.Errorf("STARTTLS with %s: %w", c.SMTP.Host, err)
		}
	}
	defer cl.Close()
	stop := context.AfterFunc(ctx, func() { _ = cl.Close() })
	defer stop()
	if err := cl.Auth(sasl.NewPlainClient("", c.Username, c.Password)); err != nil {
		return fmt.Errorf("log in to %s: %w", c.SMTP.Host, smtpErr(err))
	}
	recipients := []string{to}
	if !strings.EqualFold(to, c.Address) {
		recipients = append(recipients, c.Address)
	}
	if err := cl.SendMail(c.Address, recipients, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("send: %w", smtpErr(err))
	}
	// No QUIT: the server took the message with its answer to DATA, and
	// filing it in Sent must not wait another round trip.
	return nil
}

func smtpErr(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

// fileSent keeps a copy of a delivered message in the Sent folder.
func fileSent(cl *imapclient.Client, raw []byte) error {
	cmd := cl.Append(SentFolder, int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	if _, err := cmd.Write(raw); err != nil {
		return fmt.Errorf("file in %s: %w", SentFolder, err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("file in %s: %w", SentFolder, err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("file in %s: %w", SentFolder, err)
	}
	return nil
}

// ensureSent creates the Sent folder if the server has none.
func (c *Config) ensureSent(cl *imapclient.Client) error {
	boxes, err := cl.List("", SentFolder, nil).Collect()
	if err != nil {
		return fmt.Errorf("list %s: %w", SentFolder, err)
	}
	if len(boxes) > 0 {
		return nil
	}
	if err := cl.Create(SentFolder, nil).Wait(); err != nil {
		return fmt.Errorf("create %s: %w", SentFolder, err)
	}
	return nil
}

// Sent reports whether a message with this Message-ID is in the Sent folder.
func (c *Config) Sent(ctx context.Context, messageID string) (bool, error) {
	found := false
	err := c.session(ctx, "", func(cl *imapclient.Client, _ *imap.SelectData) error {
		if err := c.ensureSent(cl); err != nil {
			return err
		}
		var err error
		found, err = c.folderHas(cl, SentFolder, messageID, false)
		return err
	})
	return found, err
}

// folderHas reports whether a folder holds a message whose one Message-ID
// is messageID exactly; fromUs also asks that it be from the security
// address, header and envelope (Return-Path). The server's SEARCH HEADER
// matches substrings: it only narrows down what is then read and compared.
func (c *Config) folderHas(cl *imapclient.Client, folder, messageID string, fromUs bool) (bool, error) {
	if _, err := cl.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return false, fmt.Errorf("select %s: %w", folder, err)
	}
	uids, err := c.withMessageID(cl, messageID, fromUs)
	if err != nil {
		return false, fmt.Errorf("search %s: %w", folder, err)
	}
	return len(uids) > 0, nil
}

// withMessageID returns the UIDs of the selected folder's messages whose
// one Message-ID is messageID exactly (see isOurCopy), oldest first.
func (c *Config) withMessageID(cl *imapclient.Client, messageID string, fromUs bool) ([]imap.UID, error) {
	res, err := cl.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + messageID + ">"}}}, nil).Wait()
	if err != nil {
		return nil, err
	}
	uids := res.AllUIDs()
	if len(uids) == 0 {
		return nil, nil
	}
	if len(uids) > maxCandidates {
		// Only planted copies come in such numbers: ours is among the latest.
		uids = uids[len(uids)-maxCandidates:]
	}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID", "From", "Return-Path"}, Peek: true}
	msgs, err := cl.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{header}}).Collect()
	if err != nil {
		return nil, err
	}
	var out []imap.UID
	for _, m := range msgs {
		if c.isOurCopy(m.FindBodySection(header), messageID, fromUs) {
			out = append(out, m.UID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// maxCandidates bounds the messages read to find one Message-ID.
const maxCandidates = 50

// isOurCopy reads a message's header: its one Message-ID field is exactly
// messageID, and with fromUs its From and Return-Path are the security
// address.
func (c *Config) isOurCopy(raw []byte, messageID string, fromUs bool) bool {
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return false
	}
	h := mail.Header{Header: message.Header{Header: th}}
	if len(h.Values("Message-Id")) != 1 {
		return false
	}
	if id, err := h.MessageID(); err != nil || id != messageID {
		return false
	}
	if !fromUs {
		return true
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || !strings.EqualFold(from[0].Address, c.Address) {
		return false
	}
	rp := h.Values("Return-Path")
	if len(rp) != 1 {
		return false
	}
	path := strings.TrimSpace(rp[0])
	return strings.EqualFold(strings.TrimSuffix(strings.TrimPrefix(path, "<"), ">"), c.Address)
}
