package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// EnvEmailPassword is the environment variable the mailbox password is
// read from when [email] password_file is empty.
const EnvEmailPassword = "SECBOT_EMAIL_PASSWORD"

// Email is the [email] section: the security mailbox, read over IMAP and
// answered over SMTP submission. Optional: with no imap_url, secbot has no
// email channel.
type Email struct {
	IMAPURL      string `toml:"imap_url"`
	SMTPURL      string `toml:"smtp_url"`
	TLSCAFile    string `toml:"tls_ca_file"`
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	Address      string `toml:"address"`
	Mailbox      string `toml:"mailbox"`
	// MaxAttachment is the largest attachment posted into a case room
	// ("20MB"); larger ones are named with their size and left in the mailbox.
	MaxAttachment string `toml:"max_attachment"`
	// PollEvery is how often the mailbox is looked at when the server
	// offers no IDLE (and how often an IDLE is renewed).
	PollEvery string `toml:"poll_every"`
	// TrustAuthservID is the authserv-id of the receiving mail server
	// whose Authentication-Results (its topmost ones) say whether a
	// sender is verified; "" has secbot verify DKIM and DMARC alignment
	// itself.
	TrustAuthservID string `toml:"trust_authserv_id"`
	// DNSServer is host:port of the DNS resolver that DKIM keys and DMARC
	// records are looked up with ("": the system's).
	DNSServer string `toml:"dns_server"`

	// IMAP and SMTP are the URLs, parsed.
	IMAP, SMTP *url.URL `toml:"-"`
	// RootCAs trusts tls_ca_file's certificates (nil: the system's).
	RootCAs *x509.CertPool `toml:"-"`
	// Password logs in to both servers.
	Password Secret `toml:"-"`
	// MaxAttachmentBytes is MaxAttachment, parsed.
	MaxAttachmentBytes int64 `toml:"-"`
	// PollEveryValue is PollEvery, parsed.
	PollEveryValue time.Duration `toml:"-"`
}

// Enabled reports whether the security mailbox is configured.
func (e Email) Enabled() bool { return e.IMAPURL != "" || e.SMTPURL != "" || e.Address != "" }

func (v *validator) validateEmail() {
	e := &v.cfg.Email
	if !e.Enabled() {
		return
	}
	e.IMAP = v.mailURL("email.imap_url", e.IMAPURL, "imap", "imaps", 143, 993)
	e.SMTP = v.mailURL("email.smtp_url", e.SMTPURL, "smtp", "smtps", 587, 465)
	if e.TLSCAFile != "" {
		e.TLSCAFile = v.path(e.TLSCAFile)
		data, err := os.ReadFile(e.TLSCAFile)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			v.add("email.tls_ca_file", e.TLSCAFile, "cannot read the file: "+pathReason(err))
		case !pool.AppendCertsFromPEM(data):
			v.add("email.tls_ca_file", e.TLSCAFile, "holds no PEM certificate")
		default:
			e.RootCAs = pool
		}
	}
	if e.Username == "" {
		v.add("email.username", "", "must name the mailbox's login")
	}
	pw, where := v.secret("email.password_file", e.PasswordFile, EnvEmailPassword)
	if where == "" {
		v.add("email.password_file", "", "the mailbox password must come from a file (password_file) or "+EnvEmailPassword)
	}
	e.Password = pw
	if a, err := mail.ParseAddress(e.Address); err != nil || a.Name != "" || a.Address != e.Address {
		v.add("email.address", e.Address, "must be the security address alone, like security@example.org")
	}
	if e.Mailbox == "" {
		v.add("email.mailbox", "", "must name the folder to read (INBOX, or a dedicated one)")
	}
	if n, err := parseSize(e.MaxAttachment); err != nil {
		v.add("email.max_attachment", e.MaxAttachment, err.Error())
	} else {
		e.MaxAttachmentBytes = n
	}
	if id := e.TrustAuthservID; id != "" && !authservID.MatchString(id) {
		v.add("email.trust_authserv_id", id, "must be the receiving server's authserv-id as it writes it in Authentication-Results, like mx.example.org")
	}
	if d := e.DNSServer; d != "" {
		host, port, err := net.SplitHostPort(d)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			v.add("email.dns_server", d, "must be host:port of a DNS resolver, like 127.0.0.1:53")
		}
	}
	if s, ok := v.positiveSpan("email.poll_every", e.PollEvery, ""); ok {
		if s.WorkingDays > 0 {
			v.add("email.poll_every", e.PollEvery, "must be a fixed length like 1m")
		} else {
			e.PollEveryValue = s.Fixed
		}
	}
}

// authservID is the shape of an authserv-id secbot accepts: a host name
// (RFC 8601 allows any token, which servers fill with their name).
var authservID = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// mailURL checks an imap(s):// or smtp(s):// URL. The plain scheme means
// STARTTLS, which may be skipped only on a loopback address.
func (v *validator) mailURL(key, value, plain, tls string, plainPort, tlsPort int) *url.URL {
	u, err := url.Parse(value)
	switch {
	case value == "" || err != nil || (u.Scheme != plain && u.Scheme != tls) || u.Hostname() == "":
		v.add(key, value, fmt.Sprintf("must be a URL like %s://mail.example.org:%d (TLS) or %s://mail.example.org:%d (STARTTLS)", tls, tlsPort, plain, plainPort))
		return nil
	case u.User != nil:
		v.add(key, SecretValue, "must not carry a user name or password; use username and password_file")
		return nil
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		v.add(key, value, "must be scheme://host:port only (the folder is email.mailbox)")
		return nil
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			v.add(key, value, "the port must be 1–65535")
			return nil
		}
	} else {
		port := plainPort
		if u.Scheme == tls {
			port = tlsPort
		}
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	}
	return u
}

// parseSize reads a size like 20MB, 512KB, 1GB or a number of bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("must be a size like 20MB, 512KB or a number of bytes")
	}
	return n * mult, nil
}
