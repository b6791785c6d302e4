package config

import (
	"slices"
	"testing"
)

func TestTheMailboxIsOptional(t *testing.T) {
	cfg, err := Parse([]byte(base().toml()), t.TempDir(), getenv(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Email.Enabled() {
		t.Error("email is on without [email]")
	}
}

func TestAGoodMailbox(t *testing.T) {
	d := base().with(map[string]string{
		"email.imap_url": `"imaps://mail.example.org"`, "email.smtp_url": `"smtp://mail.example.org:587"`,
		"email.username": `"security@example.org"`, "email.address": `"security@example.org"`, "email.max_attachment": `"5MB"`,
		"email.trust_authserv_id": `"mx.example.org"`, "email.dns_server": `"127.0.0.1:5353"`,
	})
	cfg, err := Parse([]byte(d.toml()), t.TempDir(), getenv(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Email
	if !e.Enabled() || e.IMAP.Host != "mail.example.org:993" || e.SMTP.Host != "mail.example.org:587" || e.Mailbox != "INBOX" ||
		e.MaxAttachmentBytes != 5<<20 || string(e.Password) != baseEnv[EnvEmailPassword] || e.PollEveryValue.String() != "1m0s" || e.TrustAuthservID != "mx.example.org" || e.DNSServer != "127.0.0.1:5353" {
		t.Errorf("read as %+v", e)
	}
}

func TestEveryMailboxProblemIsListed(t *testing.T) {
	d := base().with(map[string]string{
		"email.imap_url": `"http://mail.example.org"`, "email.smtp_url": `"smtp://user:pw@mail.example.org"`,
		"email.address": `"Security <security@example.org>"`, "email.mailbox": `""`, "email.max_attachment": `"lots"`,
		"email.tls_ca_file": `"nowhere.pem"`, "email.poll_every": `"0s"`, "email.trust_authserv_id": `"mx.example.org; dmarc=pass"`, "email.dns_server": `"localhost"`,
	})
	_, err := Parse([]byte(d.toml()), t.TempDir(), getenv(withEnv(map[string]string{EnvEmailPassword: unset})))
	var keys []string
	for _, p := range problemsOf(t, err) {
		keys = append(keys, p.Key)
		if p.Key == "email.smtp_url" && p.Value != SecretValue {
			t.Errorf("a URL with a password is shown: %q", p.Value)
		}
	}
	for _, want := range []string{"email.imap_url", "email.smtp_url", "email.address", "email.mailbox", "email.max_attachment", "email.tls_ca_file", "email.poll_every", "email.username", "email.password_file", "email.trust_authserv_id", "email.dns_server"} {
		if !slices.Contains(keys, want) {
			t.Errorf("no problem with %s; problems: %v", want, keys)
		}
	}
}
