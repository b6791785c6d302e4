package mailtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Deliver hands raw to the server's MX listener as mail from the Internet
// would arrive: envelope sender from ("" for the empty return path of a
// bounce), no authentication.
func (s *Server) Deliver(from string, to []string, raw []byte) error {
	c, err := smtp.Dial(s.MX)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("deliver to %v: %w", to, err)
	}
	return c.Quit()
}

// Submit sends raw through the submission listener as address, logged in
// with password, as a mail client does (signed with DKIM where the server
// signs).
func (s *Server) Submit(address, password string, to []string, raw []byte) error {
	var c *smtp.Client
	var err error
	if s.TLS {
		cfg, terr := s.TLSConfig()
		if terr != nil {
			return terr
		}
		c, err = smtp.DialTLS(s.Submission, cfg)
	} else {
		c, err = smtp.Dial(s.Submission)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", address, password)); err != nil {
		return fmt.Errorf("log in as %s: %w", address, err)
	}
	if err := c.SendMail(address, to, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("submit to %v: %w", to, err)
	}
	return c.Quit()
}

// TLSConfig trusts the server's self-signed certificate (nil without TLS).
func (s *Server) TLSConfig() (*tls.Config, error) {
	if s.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}, nil
}

// Login opens an IMAP session as address.
func (s *Server) Login(address, password string) (*imapclient.Client, error) {
	var c *imapclient.Client
	var err error
	if s.TLS {
		cfg, terr := s.TLSConfig()
		if terr != nil {
			return nil, terr
		}
		c, err = imapclient.DialTLS(s.IMAP, &imapclient.Options{TLSConfig: cfg})
	} else {
		c, err = imapclient.DialInsecure(s.IMAP, nil)
	}
	if err != nil {
		return nil, err
	}
	if err := c.Login(address, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("log in as %s: %w", address, err)
	}
	return c, nil
}

// Messages returns every message in an account's folder, oldest first,
// with its flags.
func (s *Server) Messages(address, password, folder string) ([]Message, error) {
	c, err := s.Login(address, password)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("select %s: %w", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	all := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(imap.SeqSetNum(seqRange(sel.NumMessages)...), &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{all}}).Collect()
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(bufs))
	for _, b := range bufs {
		out = append(out, Message{UID: uint32(b.UID), Flags: b.Flags, Raw: b.FindBodySection(all)})
	}
	return out, nil
}

// Message is one message of a folder.
type Message struct {
	UID   uint32
	Flags []imap.Flag
	Raw   []byte
}

// HasFlag reports whether the message carries flag (as IMAP compares
// them: regardless of case).
func (m Message) HasFlag(flag imap.Flag) bool {
	for _, f := range m.Flags {
		if strings.EqualFold(string(f), string(flag)) {
			return true
		}
	}
	return false
}

// WaitMessages waits until the folder's messages satisfy done, looking
// again whenever the server reports a change or a short while passes, and
// returns them; it fails when ctx ends first.
func (s *Server) WaitMessages(ctx context.Context, address, password, folder string, done func([]Message) bool) ([]Message, error) {
	for {
		msgs, err := s.Messages(address, password, folder)
		if err == nil && done(msgs) {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return msgs, fmt.Errorf("waiting for %s's %s: %w (%d messages)", address, folder, err, len(msgs))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func seqRange(n uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i) + 1
	}
	return out
}

// Append files raw in a folder of address's account, as a mail client or
// a migration tool would (no keywords).
func (s *Server) Append(address, password, folder string, raw []byte) error {
	c, err := s.Login(address, password)
	if err != nil {
		return err
	}
	defer c.Close()
	cmd := c.Append(folder, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append to %s: %w", folder, err)
	}
	return c.Logout().Wait()
}

// Recreate deletes a folder of address's account and creates it anew,
// empty, as an operator restoring a mailbox does: the server gives it a
// new UIDVALIDITY.
func (s *Server) Recreate(address, password, folder string) error {
	c, err := s.Login(address, password)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Delete(folder).Wait(); err != nil {
		return fmt.Errorf("delete %s: %w", folder, err)
	}
	if err := c.Create(folder, nil).Wait(); err != nil {
		return fmt.Errorf("create %s: %w", folder, err)
	}
	return c.Logout().Wait()
}

// Create makes a folder in address's account.
func (s *Server) Create(address, password, folder string) error {
	c, err := s.Login(address, password)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Create(folder, nil).Wait(); err != nil {
		return fmt.Errorf("create %s: %w", folder, err)
	}
	return c.Logout().Wait()
}
