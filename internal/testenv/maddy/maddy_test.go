package mailtest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestMaddyDeliversToAnAccount is the smoke test: maddy starts from the
// cache, accepts mail for an account on its MX port and serves it over
// IMAP, in plain TCP on loopback and with TLS.
func TestMaddyDeliversToAnAccount(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[tls], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			srv, err := Start(ctx, t.TempDir(), Options{TLS: tls})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			if err := srv.AddAccount("security@"+Domain, "pw-security"); err != nil {
				t.Fatal(err)
			}
			raw := []byte("From: someone@elsewhere.test\r\nTo: security@" + Domain + "\r\nSubject: hello\r\nMessage-ID: <smoke@elsewhere.test>\r\n\r\nsmoke-canary\r\n")
			if err := srv.Deliver("someone@elsewhere.test", []string{"security@" + Domain}, raw); err != nil {
				t.Fatal(err)
			}
			msgs, err := srv.WaitMessages(ctx, "security@"+Domain, "pw-security", "INBOX", func(m []Message) bool { return len(m) == 1 })
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(msgs[0].Raw, []byte("smoke-canary")) {
				t.Errorf("the delivered message is\n%s", msgs[0].Raw)
			}
			if _, err := srv.Login("security@"+Domain, "wrong"); err == nil {
				t.Error("a wrong password logged in")
			}
		})
	}
}

func TestTheDNSStandInServesLongTXTRecords(t *testing.T) {
	long := strings.Repeat("k", 600)
	d, err := StartDNS(map[string]string{"s._domainkey.example.test": long})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, d.Addr)
	}}
	got, err := r.LookupTXT(context.Background(), "s._domainkey.example.test")
	if err != nil || len(got) != 1 || got[0] != long {
		t.Errorf("TXT is %q (%v)", got, err)
	}
	var dnsErr *net.DNSError
	if _, err := r.LookupTXT(context.Background(), "_dmarc.nowhere.test"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("an unknown name gives %v, want not found", err)
	}
}
