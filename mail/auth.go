package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// Resolver looks up DNS TXT records (*net.Resolver; a fixed map in tests).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// SenderAuth decides whether a message's From is its sender's: anyone
// can write any From, so only a proof the From domain gave counts.
// secbot checks the proof itself (a valid DKIM signature of the From
// domain, aligned as the domain's DMARC record asks), or, with
// TrustAuthservID set, believes what the receiving server that adds
// Authentication-Results under that authserv-id found (RFC 8601): only its
// own fields, the topmost ones, never a field it cannot attribute.
type SenderAuth struct {
	// Resolver looks up DKIM keys and DMARC records (nil: the system's).
	Resolver Resolver
	// TrustAuthservID is the authserv-id of the receiving mail server
	// whose Authentication-Results are believed ("": verify DKIM here).
	TrustAuthservID string
}

// ResolverAt is a resolver that asks the DNS server at addr (host:port).
func ResolverAt(addr string) *net.Resolver {
	d := &net.Dialer{Timeout: dnsTimeout}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}

// Sender is what SenderAuth found of a message's From.
type Sender struct {
	Verified bool
	// Why says how it was verified, or why not (domains, never text).
	Why string
}

// maxVerified is the largest message whose signature secbot checks
// itself; dnsTimeout bounds each DNS lookup.
const (
	maxVerified = 64 << 20
	dnsTimeout  = 10 * time.Second
)

// needsBody reports whether checking a message takes its whole text (a
// DKIM signature covers the body), not only its header.
func (a *SenderAuth) needsBody() bool { return a.TrustAuthservID == "" }

// CheckHeader decides from the header alone, where a receiving server's
// Authentication-Results are trusted.
func (a *SenderAuth) CheckHeader(header []byte) Sender {
	h, from, ok := singleFrom(header)
	if !ok {
		return from
	}
	domain := domainOf(from.Why)
	var mine []string
	for _, v := range h.Values("Authentication-Results") {
		id, _, err := authres.Parse(v)
		if err != nil || !strings.EqualFold(id, a.TrustAuthservID) {
			// Only the topmost run of fields was added by the server:
			// anything below it came with the message.
			break
		}
		mine = append(mine, v)
	}
	if len(mine) == 0 {
		return Sender{Why: "no Authentication-Results of " + a.TrustAuthservID + " on top"}
	}
	// The topmost DMARC result decides: one lower down may have come with
	// the message, where the server does not remove such fields.
	for _, v := range mine {
		_, results, _ := authres.Parse(v)
		for _, r := range results {
			d, ok := r.(*authres.DMARCResult)
			if !ok {
				continue
			}
			if d.Value == authres.ResultPass && strings.EqualFold(d.From, domain) {
				return Sender{Verified: true, Why: "dmarc=pass for " + domain + " by " + a.TrustAuthservID}
			}
			return Sender{Why: a.TrustAuthservID + " found dmarc=" + string(d.Value) + " for " + d.From}
		}
	}
	return Sender{Why: a.TrustAuthservID + " found no DMARC result"}
}

// CheckMessage verifies the DKIM signatures of a whole message and their
// alignment with its From domain (strict where the domain's DMARC record
// asks for it, else relaxed: the same organizational domain).
func (a *SenderAuth) CheckMessage(ctx context.Context, header []byte, r io.Reader) Sender {
	_, from, ok := singleFrom(header)
	if !ok {
		return from
	}
	domain := domainOf(from.Why)
	verifs, err := dkim.VerifyWithOptions(r, &dkim.VerifyOptions{LookupTXT: a.lookup(ctx), MaxVerifications: 5})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return Sender{Why: "its DKIM signatures cannot be read"}
	}
	strict, relaxed := false, ""
	for _, v := range verifs {
		if v.Err != nil {
			continue
		}
		d := strings.ToLower(strings.TrimSuffix(v.Domain, "."))
		switch {
		case d == domain:
			strict = true
		case orgDomain(d) != "" && orgDomain(d) == orgDomain(domain):
			relaxed = d
		}
	}
	switch {
	case strict:
		return Sender{Verified: true, Why: "DKIM signature of " + domain}
	case relaxed != "":
		rec, err := a.dmarcRecord(ctx, domain)
		switch {
		case err != nil:
			return Sender{Why: "signed by " + relaxed + ", but " + domain + "'s DMARC record could not be read"}
		case rec != nil && rec.DKIMAlignment == dmarc.AlignmentStrict:
			return Sender{Why: "signed by " + relaxed + ", but " + domain + "'s DMARC record asks for strict alignment"}
		}
		return Sender{Verified: true, Why: "DKIM signature of " + relaxed + " (aligned with " + domain + ")"}
	case len(verifs) == 0:
		return Sender{Why: "no DKIM signature"}
	}
	return Sender{Why: "no valid DKIM signature of " + domain}
}

// dmarcRecord is the DMARC record of domain, or of its organizational
// domain (nil where neither has one).
func (a *SenderAuth) dmarcRecord(ctx context.Context, domain string) (*dmarc.Record, error) {
	opts := &dmarc.LookupOptions{LookupTXT: a.lookup(ctx)}
	rec, err := dmarc.LookupWithOptions(domain, opts)
	if errors.Is(err, dmarc.ErrNoPolicy) {
		if org := orgDomain(domain); org != "" && org != domain {
			rec, err = dmarc.LookupWithOptions(org, opts)
		}
	}
	if errors.Is(err, dmarc.ErrNoPolicy) {
		return nil, nil
	}
	return rec, err
}

func (a *SenderAuth) lookup(ctx context.Context) func(string) ([]string, error) {
	var res Resolver = net.DefaultResolver
	if a.Resolver != nil {
		res = a.Resolver
	}
	return func(name string) ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
		defer cancel()
		return res.LookupTXT(ctx, name)
	}
}

// singleFrom reads a header with exactly one From address (else a
// Sender saying why not); the address is returned in Why.
func singleFrom(header []byte) (mail.Header, Sender, bool) {
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(header)))
	if err != nil {
		return mail.Header{}, Sender{Why: "its header cannot be read"}, false
	}
	h := mail.Header{Header: message.Header{Header: th}}
	if len(h.Values("From")) != 1 {
		return h, Sender{Why: "not exactly one From field"}, false
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || domainOf(from[0].Address) == "" {
		return h, Sender{Why: "not exactly one From address"}, false
	}
	return h, Sender{Why: strings.ToLower(from[0].Address)}, true
}

func domainOf(address string) string {
	i := strings.LastIndexByte(address, '@')
	if i < 0 || i == len(address)-1 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(address[i+1:], "."))
}

// orgDomain is a domain's organizational domain (RFC 7489 3.2): one label
// below its public suffix; "" where it has none.
func orgDomain(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return ""
	}
	return org
}

// checkSender verifies the From of the message uid of the selected
// mailbox, whose header is header: from the header where the receiving
// server's results are trusted, else from the whole message, read as it
// streams from the server.
func (w *Watcher) checkSender(ctx context.Context, cl *imapclient.Client, uid imap.UID, header []byte, env Envelope) Sender {
	a := w.Auth
	switch {
	case a == nil:
		return Sender{Why: "sender verification is off"}
	case env.From == "" || strings.EqualFold(env.From, w.cfg.Address):
		// No sender, or secbot's own copy: ignored either way.
		return Sender{Why: "not checked"}
	}
	if !a.needsBody() {
		return a.CheckHeader(header)
	}
	sized, err := cl.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	switch {
	case err != nil || len(sized) == 0:
		return Sender{Why: "the message could not be read to verify it"}
	case sized[0].RFC822Size > maxVerified:
		return Sender{Why: "too large to verify"}
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	cmd := cl.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{whole}})
	defer cmd.Close()
	out := Sender{Why: "the message could not be read to verify it"}
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			body, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok || body.Literal == nil {
				continue
			}
			out = a.CheckMessage(ctx, header, body.Literal)
			_, _ = io.Copy(io.Discard, body.Literal)
		}
	}
	return out
}
