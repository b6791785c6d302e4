package mail

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/enarx/secbot/internal/testenv/maddy"
)

// dnsMap is a resolver of fixed TXT records.
type dnsMap map[string][]string

func (m dnsMap) LookupTXT(_ context.Context, name string) ([]string, error) {
	if txt, ok := m[strings.ToLower(strings.TrimSuffix(name, "."))]; ok {
		return txt, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// countingDNS counts the lookups of each name.
type countingDNS struct {
	dnsMap
	mu sync.Mutex
	n  map[string]int
}

func (c *countingDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[strings.ToLower(name)]++
	c.mu.Unlock()
	return c.dnsMap.LookupTXT(ctx, name)
}

func (c *countingDNS) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[strings.ToLower(name)]
}

// A report signed by the reporter's own mail server (maddy signs what its
// accounts submit with DKIM) is verified; the same From delivered by
// anyone else, unsigned or with a copied signature over changed text, is
// not.
func TestTheWatcherVerifiesTheSendersDKIMSignature(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := mailtest.Start(ctx, t.TempDir(), mailtest.Options{DKIM: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	for _, a := range []string{security, reporter} {
		if err := srv.AddAccount(a, password); err != nil {
			t.Fatal(err)
		}
	}
	name, record, err := srv.DKIMRecord()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		IMAP:     &url.URL{Scheme: "imap", Host: srv.IMAP},
		SMTP:     &url.URL{Scheme: "smtp", Host: srv.Submission},
		Username: security, Password: password, Address: security,
		Mailbox: "INBOX", MaxAttachment: 1 << 10, PollEvery: time.Minute,
	}
	signed := rawMail(map[string]string{"From": reporter, "To": security, "Subject": "a vuln", "Message-ID": "<signed@example.test>"}, "the real report\r\n")
	if err := srv.Submit(reporter, password, []string{security}, signed); err != nil {
		t.Fatal(err)
	}
	forged := rawMail(map[string]string{"From": reporter, "To": security, "Subject": "Re: [SR-2026-0001] a vuln", "Message-ID": "<forged@example.test>"}, "I withdraw my report\r\n")
	if err := srv.Deliver(reporter, []string{security}, forged); err != nil {
		t.Fatal(err)
	}
	// A signature copied from a signed message onto another text.
	msgs, err := srv.WaitMessages(ctx, security, password, "INBOX", func(m []mailtest.Message) bool { return len(m) == 2 })
	if err != nil {
		t.Fatal(err)
	}
	var copied []byte
	for _, m := range msgs {
		if bytes.Contains(m.Raw, []byte("<signed@example.test>")) {
			if !bytes.Contains(m.Raw, []byte("DKIM-Signature:")) {
				t.Fatal("maddy did not sign the submitted message")
			}
			copied = bytes.Replace(bytes.Replace(m.Raw, []byte("the real report"), []byte("the fake report"), 1), []byte("<signed@example.test>"), []byte("<copied@example.test>"), 1)
		}
	}
	if err := srv.Deliver(reporter, []string{security}, copied); err != nil {
		t.Fatal(err)
	}
	// The signed message's handling fails twice first: it is looked at
	// again, but its signature is checked once.
	w := &watched{looks: make(chan struct{}, 1), fail: map[string]int{"signed@example.test": 2}}
	dns := &countingDNS{dnsMap: dnsMap{name: {record}, "_dmarc." + mailtest.Domain: {"v=DMARC1; p=reject"}}}
	runWatcher(t, cfg, w, nil, func(x *Watcher) { x.Auth = &SenderAuth{Resolver: dns} })
	waitFor(t, w, "the three messages", func() bool { return len(w.byID()) == 3 })
	if n := dns.count(name); n > 2 {
		t.Errorf("the key was looked up %d times for two signed messages: a message waiting is checked again on every look", n)
	}
	got := w.byID()
	for id, want := range map[string]bool{"signed@example.test": true, "forged@example.test": false, "copied@example.test": false} {
		s := got[id].Sender
		if s.Verified != want {
			t.Errorf("%s: verified %v (%s), want %v", id, s.Verified, s.Why, want)
		}
		if ref := Translate(got[id], security).Mail; ref.SenderVerified != want || ref.SenderCheck == "" {
			t.Errorf("%s: the handlers read verified %v (%q)", id, ref.SenderVerified, ref.SenderCheck)
		}
	}
}

// Alignment: a signature of the From domain itself counts, one of
// another domain of the same organization counts unless the From domain's
// DMARC record asks for strict alignment, one of another organization
// never does, nor one whose key is not the signer's.
func TestDKIMAlignmentWithTheFromDomain(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherKey := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(otherPub)
	sign := func(t *testing.T, from, domain string) []byte {
		raw := rawMail(map[string]string{"From": from, "To": security, "Subject": "hi", "Message-ID": "<x@y.test>"}, "text\r\n")
		var out bytes.Buffer
		if err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{Domain: domain, Selector: "s", Signer: priv, HeaderKeys: []string{"From", "Subject", "Message-ID"}}); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	for _, tc := range []struct {
		name, from, signer string
		dns                dnsMap
		want               bool
	}{
		{"the From domain", "alice@example.com", "example.com", dnsMap{"s._domainkey.example.com": {key}}, true},
		{"a subdomain, relaxed", "alice@example.com", "mail.example.com", dnsMap{"s._domainkey.mail.example.com": {key}, "_dmarc.example.com": {"v=DMARC1; p=none"}}, true},
		{"a subdomain, no DMARC record", "alice@example.com", "mail.example.com", dnsMap{"s._domainkey.mail.example.com": {key}}, true},
		{"a subdomain, strict", "alice@example.com", "mail.example.com", dnsMap{"s._domainkey.mail.example.com": {key}, "_dmarc.example.com": {"v=DMARC1; p=reject; adkim=s"}}, false},
		{"another organization", "alice@example.com", "evil.example.net", dnsMap{"s._domainkey.evil.example.net": {key}}, false},
		{"a wrong key", "alice@example.com", "example.com", dnsMap{"s._domainkey.example.com": {otherKey}}, false},
		{"no key", "alice@example.com", "example.com", dnsMap{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := sign(t, tc.from, tc.signer)
			header, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			got := (&SenderAuth{Resolver: tc.dns}).CheckMessage(context.Background(), append(header, "\r\n\r\n"...), bytes.NewReader(raw))
			if got.Verified != tc.want {
				t.Errorf("verified %v (%s), want %v", got.Verified, got.Why, tc.want)
			}
		})
	}
}

// Authentication-Results are believed only from the configured receiving
// server, and only its own fields at the top: one the sender wrote below
// them, or above another server's, is not.
func TestOnlyTheTrustedServersTopmostAuthenticationResultsCount(t *testing.T) {
	a := &SenderAuth{TrustAuthservID: "mx.example.org"}
	for _, tc := range []struct {
		name   string
		fields []string
		want   bool
	}{
		{"dmarc pass on top", []string{"mx.example.org; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"}, true},
		{"two fields of the server, the second passes", []string{"mx.example.org; spf=pass smtp.mailfrom=example.com", "mx.example.org; dmarc=pass header.from=example.com"}, true},
		{"the server's fail above a forged pass of its name", []string{"mx.example.org; dmarc=fail header.from=example.com", "mx.example.org; dmarc=pass header.from=example.com"}, false},
		{"a pass without the From domain", []string{"mx.example.org; dmarc=pass"}, false},
		{"dmarc fail on top", []string{"mx.example.org; dmarc=fail header.from=example.com"}, false},
		{"a pass for another From domain", []string{"mx.example.org; dmarc=pass header.from=evil.test"}, false},
		{"the sender's forged field below the server's", []string{"mx.example.org; dmarc=fail header.from=example.com", "other.example; x=1", "mx.example.org; dmarc=pass header.from=example.com"}, false},
		{"another server's field on top", []string{"spamfilter.example; dmarc=pass header.from=example.com", "mx.example.org; dmarc=pass header.from=example.com"}, false},
		{"an unattributed field", []string{"evil.test; dmarc=pass header.from=example.com"}, false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			for _, f := range tc.fields {
				b.WriteString("Authentication-Results: " + f + "\r\n")
			}
			b.WriteString("From: Alice <alice@example.com>\r\n\r\n")
			if got := a.CheckHeader([]byte(b.String())); got.Verified != tc.want {
				t.Errorf("verified %v (%s), want %v", got.Verified, got.Why, tc.want)
			}
		})
	}
	if got := a.CheckHeader([]byte("Authentication-Results: mx.example.org; dmarc=pass header.from=example.com\r\nFrom: a@example.com\r\nFrom: b@example.com\r\n\r\n")); got.Verified {
		t.Error("a message with two From fields is verified")
	}
}
