// Package mail is secbot's email channel: it reads the security mailbox
// over IMAP, turns new messages into the handlers' channel-neutral
// requests, and runs the email effects (posting a message's text into its
// case room, sending the team's answers over SMTP).
//
// The mail server remains where a reporter's text lives: what secbot
// records of a message is its IMAP UIDVALIDITY and UID and its
// Message-ID, never its subject, text or attachments.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Config is how secbot reaches the security mailbox.
type Config struct {
	// IMAP is imaps://host:port (TLS) or imap://host:port (STARTTLS,
	// skipped only on a loopback address); SMTP likewise with smtps/smtp.
	IMAP, SMTP *url.URL
	// RootCAs trusts a private CA (nil: the system's).
	RootCAs            *x509.CertPool
	Username, Password string
	// Address is the security address: reports arrive there, answers go
	// out from it.
	Address string
	// Mailbox is the folder reports arrive in.
	Mailbox string
	// MaxAttachment is the largest attachment posted into a case room.
	MaxAttachment int64
	// PollEvery is how often the mailbox is looked at without IDLE.
	PollEvery time.Duration

	// debug, if set, receives the IMAP conversation; noIdle polls even
	// where the server offers IDLE; noKeywords acts as on a server whose
	// PERMANENTFLAGS lack keywords (tests only).
	debug      io.Writer
	noIdle     bool
	noKeywords bool
}

// SentFolder is where secbot keeps a copy of each message it sends: a
// retry after a crash looks there before sending again.
const SentFolder = "Sent"

// HandledKeyword marks a message secbot has handled: it is in a case room,
// announced, or ignored as automatic mail.
const HandledKeyword imap.Flag = "$SecbotHandled"

// Ref names one message of the mailbox for as long as the mailbox's
// UIDVALIDITY holds.
type Ref struct {
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
}

// Key is the message's handled-event key.
func (r Ref) Key() string { return fmt.Sprintf("mail:%d:%d", r.UIDValidity, r.UID) }

// dialTimeout bounds connecting to the mail server.
const dialTimeout = 30 * time.Second

func (c *Config) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dialIMAP connects and logs in to the IMAP server.
func (c *Config) dialIMAP(ctx context.Context, handler *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	if c.IMAP == nil {
		return nil, errors.New("no IMAP server configured")
	}
	host := c.IMAP.Hostname()
	opts := &imapclient.Options{
		TLSConfig:             c.tlsConfig(host),
		Dialer:                &net.Dialer{Timeout: dialTimeout},
		UnilateralDataHandler: handler,
		DebugWriter:           c.debug,
	}
	var cl *imapclient.Client
	var err error
	switch {
	case c.IMAP.Scheme == "imaps":
		cl, err = imapclient.DialTLS(c.IMAP.Host, opts)
	case loopback(host):
		cl, err = imapclient.DialInsecure(c.IMAP.Host, opts)
	default:
		cl, err = imapclient.DialStartTLS(c.IMAP.Host, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.IMAP.Host, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = cl.Close() })
	defer stop()
	if err := cl.Login(c.Username, c.Password).Wait(); err != nil {
		_ = cl.Close()
		return nil, fmt.Errorf("log in to %s: %w", c.IMAP.Host, err)
	}
	return cl, nil
}

// session runs fn on a fresh IMAP connection with folder selected (none
// if ""), and logs out.
func (c *Config) session(ctx context.Context, folder string, fn func(cl *imapclient.Client, sel *imap.SelectData) error) error {
	cl, err := c.dialIMAP(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	stop := context.AfterFunc(ctx, func() { _ = cl.Close() })
	defer stop()
	var sel *imap.SelectData
	if folder != "" {
		if sel, err = cl.Select(folder, nil).Wait(); err != nil {
			return fmt.Errorf("select %s: %w", folder, err)
		}
	}
	if err := fn(cl, sel); err != nil {
		return err
	}
	_ = cl.Logout().Wait()
	return nil
}

// ErrGone means a message is no longer in the mailbox (deleted, or the
// mailbox's UIDVALIDITY changed): no retry brings it back.
var ErrGone = errors.New("the message is no longer in the mailbox")

// tlsClient wraps conn in TLS for a server spoken to with TLS from the start.
func tlsClient(conn net.Conn, cfg *tls.Config) net.Conn { return tls.Client(conn, cfg) }

// FetchPosted reads the message a pending post names: by its UID while
// the mailbox's UIDVALIDITY is the one recorded with it, else (the
// mailbox was made anew, its messages renumbered) the oldest message
// whose Message-ID is messageID exactly. It returns ErrGone if there is
// none.
func (c *Config) FetchPosted(ctx context.Context, ref Ref, messageID string) (*Content, error) {
	var out *Content
	err := c.session(ctx, c.Mailbox, func(cl *imapclient.Client, sel *imap.SelectData) error {
		uid := imap.UID(ref.UID)
		if sel.UIDValidity != ref.UIDValidity {
			if messageID == "" {
				return fmt.Errorf("%w: UIDVALIDITY is %d, not %d", ErrGone, sel.UIDValidity, ref.UIDValidity)
			}
			uids, err := c.withMessageID(cl, messageID, false)
			if err != nil {
				return fmt.Errorf("search the mailbox: %w", err)
			}
			if len(uids) == 0 {
				return fmt.Errorf("%w: UIDVALIDITY is %d, not %d, and no message has its Message-ID", ErrGone, sel.UIDValidity, ref.UIDValidity)
			}
			uid = uids[0]
		}
		var err error
		out, err = c.fetch(cl, uid)
		return err
	})
	return out, err
}
