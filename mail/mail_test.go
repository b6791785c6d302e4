package mail

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/testenv/maddy"
	"github.com/enarx/secbot/outbox"
)

const (
	security = "security@" + mailtest.Domain
	reporter = "reporter@" + mailtest.Domain
	password = "pw-security"
)

// server starts maddy with the security and a reporter account and
// returns it with secbot's mail config for it.
func server(t *testing.T, tls bool) (*mailtest.Server, *Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := mailtest.Start(ctx, t.TempDir(), mailtest.Options{TLS: tls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	old := retrySettle
	retrySettle = 0 // a test that needs the wait sets it
	t.Cleanup(func() { retrySettle = old })
	for _, a := range []string{security, reporter} {
		if err := srv.AddAccount(a, password); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{
		IMAP:     &url.URL{Scheme: "imap", Host: srv.IMAP},
		SMTP:     &url.URL{Scheme: "smtp", Host: srv.Submission},
		Username: security, Password: password, Address: security,
		Mailbox: "INBOX", MaxAttachment: 1 << 10, PollEvery: time.Minute,
	}
	if tls {
		cfg.IMAP.Scheme, cfg.SMTP.Scheme = "imaps", "smtps"
		pem, err := os.ReadFile(srv.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	return srv, cfg
}

func rawMail(headers map[string]string, body string) []byte {
	var b strings.Builder
	for _, k := range []string{"From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Auto-Submitted", "Precedence", "Content-Type", "X-Autoreply", "List-Id"} {
		if v, ok := headers[k]; ok {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

// watch runs a watcher until it has looked through the mailbox once
// after every delivery, collecting the envelopes it was handed.
type watched struct {
	mu   sync.Mutex
	envs []Envelope
	fail map[string]int // Message-ID → failures still to return
	// later holds back messages (Message-ID → until) with a LaterError.
	later map[string]time.Time
	looks chan struct{}
}

func (w *watched) handle(_ context.Context, env Envelope) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail[env.MessageID] > 0 {
		w.fail[env.MessageID]--
		return errors.New("not now")
	}
	if until, ok := w.later[env.MessageID]; ok && time.Now().Before(until) {
		return &chat.LaterError{Until: until}
	}
	w.envs = append(w.envs, env)
	return nil
}

func (w *watched) byID() map[string]Envelope {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]Envelope{}
	for _, e := range w.envs {
		out[e.MessageID] = e
	}
	return out
}

func startWatcher(t *testing.T, cfg *Config, w *watched) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	watcher := NewWatcher(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	watcher.Looked = func() {
		select {
		case w.looks <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = watcher.Run(ctx, w.handle) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor waits until cond holds, looking again after each pass of the
// watcher through the mailbox.
func waitFor(t *testing.T, w *watched, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-w.looks:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestTheWatcherClassifiesAndThreadsNewMail(t *testing.T) {
	srv, cfg := server(t, false)
	caseID := disclosure.CaseID{Year: 2026, Seq: 7}
	ours := MessageID(41, outbox.MailNonce(), caseID, security)
	mails := []struct {
		name, from string
		headers    map[string]string
		automatic  string // a prefix of the reason, "" for a person's mail
		kind       chat.MailKind
	}{
		{"a person's report", "alice@elsewhere.test", map[string]string{"From": "Alice <Alice@Elsewhere.test>", "Subject": "a vuln"}, "", chat.MailPerson},
		{"an auto-reply", "bob@elsewhere.test", map[string]string{"From": "bob@elsewhere.test", "Auto-Submitted": "auto-replied", "Subject": "Out of office"}, "auto-submitted", chat.MailAutoReply},
		{"Auto-Submitted: no is a person's", "carol@elsewhere.test", map[string]string{"From": "carol@elsewhere.test", "Auto-Submitted": "no"}, "", chat.MailPerson},
		{"bulk mail", "news@elsewhere.test", map[string]string{"From": "news@elsewhere.test", "Precedence": "bulk"}, "precedence", chat.MailMachine},
		{"a bounce with an empty return path", "", map[string]string{"From": "Mail Delivery System <mailer@elsewhere.test>", "Content-Type": "text/plain"}, "bounce", chat.MailBounce},
		{"a mailer daemon", "mailer-daemon@elsewhere.test", map[string]string{"From": "MAILER-DAEMON@elsewhere.test"}, "mailer daemon", chat.MailBounce},
		{"a delivery report", "dsn@elsewhere.test", map[string]string{"From": "dsn@elsewhere.test", "Content-Type": "multipart/report; report-type=delivery-status; boundary=x"}, "delivery", chat.MailBounce},
		{"secbot's own mail", security, map[string]string{"From": security}, "secbot's own", chat.MailIgnored},
		{"a reply in a case's thread", "alice@elsewhere.test", map[string]string{"From": "alice@elsewhere.test", "In-Reply-To": "<" + ours + ">", "References": "<first@elsewhere.test> <" + ours + ">", "Subject": "Re: [SR-2026-0007] Your report"}, "", chat.MailPerson},
		{"a reply naming its case in the subject", "dave@elsewhere.test", map[string]string{"From": "dave@elsewhere.test", "Subject": "Re: [SR-2026-0009] Your report"}, "", chat.MailPerson},
		{"a coordination system's mail", "cert@elsewhere.test", map[string]string{"From": "cert@elsewhere.test", "Auto-Submitted": "auto-generated", "Subject": "VU#1234"}, "auto-submitted: auto-generated", chat.MailMachine},
		{"a list's mail", "eve@elsewhere.test", map[string]string{"From": "eve@elsewhere.test", "List-Id": "<sec.lists.elsewhere.test>"}, "mailing list", chat.MailMachine},
		{"a platform's no-reply", "no-reply@bounty.test", map[string]string{"From": "no-reply@bounty.test"}, "mailer daemon", chat.MailMachine},
		{"a bounce marked auto-replied, in our thread", "", map[string]string{"From": "MAILER-DAEMON@elsewhere.test", "Auto-Submitted": "auto-replied", "In-Reply-To": "<" + ours + ">",
			"Content-Type": "multipart/report; report-type=delivery-status; boundary=x"}, "auto-submitted", chat.MailBounce},
		{"a read receipt", "carol@elsewhere.test", map[string]string{"From": "carol@elsewhere.test", "Content-Type": "multipart/report; report-type=disposition-notification; boundary=x"}, "delivery or read report", chat.MailAutoReply},
		{"our own auto-reply's copy", security, map[string]string{"From": security, "Auto-Submitted": "auto-replied", "Subject": "Re: [SR-2026-0007] Your security report"}, "auto-submitted", chat.MailIgnored},
	}
	w := &watched{looks: make(chan struct{}, 1), fail: map[string]int{"m0@elsewhere.test": 1}}
	if f := os.Getenv("SECBOT_IMAP_TRACE"); f != "" {
		trace, _ := os.Create(f)
		defer trace.Close()
		cfg.debug = trace
	}
	startWatcher(t, cfg, w)
	for i, m := range mails {
		m.headers["To"] = security
		m.headers["Message-ID"] = fmt.Sprintf("<m%d@elsewhere.test>", i)
		body := "text\r\n"
		if strings.HasPrefix(m.headers["Content-Type"], "multipart/") {
			body = "--x\r\nContent-Type: text/plain\r\n\r\nundeliverable\r\n--x--\r\n"
		}
		if err := srv.Deliver(m.from, []string{security}, rawMail(m.headers, body)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, w, "every message handed over", func() bool { return len(w.byID()) == len(mails) })
	got := w.byID()
	for i, m := range mails {
		t.Run(m.name, func(t *testing.T) {
			env := got[fmt.Sprintf("m%d@elsewhere.test", i)]
			if m.automatic == "" && env.Automatic != "" || !strings.HasPrefix(env.Automatic, m.automatic) {
				t.Errorf("classified as %q, want %q", env.Automatic, m.automatic)
			}
			if env.Kind != m.kind {
				t.Errorf("kind %v, want %v", env.Kind, m.kind)
			}
			if wantBounce := m.kind == chat.MailBounce && m.headers["In-Reply-To"] != ""; wantBounce != (env.BounceOf == caseID) {
				t.Errorf("a bounce of %v", env.BounceOf)
			}
			if env.Ref.UID == 0 || env.Ref.UIDValidity == 0 {
				t.Errorf("no UID: %+v", env.Ref)
			}
		})
	}
	if env := got["m0@elsewhere.test"]; env.From != "alice@elsewhere.test" {
		t.Errorf("the sender is %q, not lower-cased alice@elsewhere.test", env.From)
	}
	if c, ok := got["m8@elsewhere.test"].ThreadCase(security); !ok || c != caseID {
		t.Errorf("a reply to secbot's mail is in case %v (%v), want %v", c, ok, caseID)
	}
	if c, ok := got["m9@elsewhere.test"].ThreadCase(security); !ok || c.String() != "SR-2026-0009" {
		t.Errorf("a subject's case is %v (%v)", c, ok)
	}
	if _, ok := got["m0@elsewhere.test"].ThreadCase(security); ok {
		t.Error("a new report belongs to a case")
	}
	// Each message was handed over once, and is marked handled; the one
	// that failed the first time was handed over again.
	w.mu.Lock()
	n := len(w.envs)
	w.mu.Unlock()
	if n != len(mails) {
		t.Errorf("%d messages handed over, want %d (once each)", n, len(mails))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := srv.WaitMessages(ctx, security, password, "INBOX", func(msgs []mailtest.Message) bool {
		for _, m := range msgs {
			if !m.HasFlag(HandledKeyword) {
				return false
			}
		}
		return len(msgs) == len(mails)
	}); err != nil {
		t.Errorf("not every message is marked handled: %v", err)
		msgs, _ := srv.Messages(security, password, "INBOX")
		for _, m := range msgs {
			t.Log(m.UID, m.Flags)
		}
	}
}

func TestFetchReadsTheTextAndAttachmentsUpToTheLimit(t *testing.T) {
	srv, cfg := server(t, true)
	small := bytes.Repeat([]byte("s"), 300)
	large := bytes.Repeat([]byte("L"), 4000)
	var buf bytes.Buffer
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: reporter}})
	h.SetAddressList("To", []*mail.Address{{Address: security}})
	h.SetSubject("Überlauf in parse()")
	h.SetMessageID("fetch@" + mailtest.Domain)
	mw, err := mail.CreateWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	var th mail.InlineHeader
	th.Set("Content-Type", "text/plain; charset=utf-8")
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	tw, err := mw.CreateSingleInline(th)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte("canary-text über the overflow\n"))
	_ = tw.Close()
	for name, data := range map[string][]byte{"poc.txt": small, "core.dump": large} {
		var ah mail.AttachmentHeader
		ah.Set("Content-Type", "application/octet-stream")
		ah.SetFilename(name)
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = aw.Write(data)
		_ = aw.Close()
	}
	_ = mw.Close()
	if err := srv.Deliver(reporter, []string{security}, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	w := &watched{looks: make(chan struct{}, 1)}
	startWatcher(t, cfg, w)
	waitFor(t, w, "the message", func() bool { return len(w.byID()) == 1 })
	env := w.byID()["fetch@"+mailtest.Domain]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	content, err := cfg.Fetch(ctx, env.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(content.Texts) != 1 || content.Texts[0].Text != "canary-text über the overflow\n" || content.Subject != "Überlauf in parse()" || content.From != reporter {
		t.Errorf("fetched %q from %q: %+v", content.Subject, content.From, content.Texts)
	}
	if len(content.Attachments) != 1 || content.Attachments[0].Name != "poc.txt" || !bytes.Equal(content.Attachments[0].Data, small) {
		t.Errorf("attachments: %+v", content.Attachments)
	}
	if len(content.TooLarge) != 1 || content.TooLarge[0].Name != "core.dump" || content.TooLarge[0].Data != nil || content.TooLarge[0].Size < 3000 {
		t.Errorf("too large: %+v", content.TooLarge)
	}
	if _, err := cfg.Fetch(ctx, Ref{UIDValidity: env.Ref.UIDValidity + 1, UID: env.Ref.UID}); !errors.Is(err, ErrGone) {
		t.Errorf("a message of another UIDVALIDITY: %v, want ErrGone", err)
	}
	if _, err := cfg.Fetch(ctx, Ref{UIDValidity: env.Ref.UIDValidity, UID: env.Ref.UID + 100}); !errors.Is(err, ErrGone) {
		t.Errorf("a message not there: %v, want ErrGone", err)
	}
}

func TestSendThreadsTheAnswerAndARetryDoesNotSendItTwice(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "loopback", true: "tls"}[tls], func(t *testing.T) {
			srv, cfg := server(t, tls)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			nonce := outbox.MailNonce()
			out := Outgoing{
				To: reporter, Subject: "Re: [SR-2026-0007] Your security report",
				MessageID: MessageID(12, nonce, disclosure.CaseID{Year: 2026, Seq: 7}, security),
				InReplyTo: "first@elsewhere.test", References: []string{"first@elsewhere.test"},
				Text: "Your report is SR-2026-0007.\nWe answer by 2026-11-29 12:00 UTC.", Auto: true,
			}
			if err := cfg.Send(ctx, out, false); err != nil {
				t.Fatal(err)
			}
			// The retry after a crash finds the copy in Sent and sends nothing.
			if err := cfg.Send(ctx, out, true); err != nil {
				t.Fatal(err)
			}
			inbox, err := srv.WaitMessages(ctx, reporter, password, "INBOX", func(m []mailtest.Message) bool { return len(m) >= 1 })
			if err != nil {
				t.Fatal(err)
			}
			sent, err := srv.Messages(security, password, SentFolder)
			if err != nil {
				t.Fatal(err)
			}
			if len(inbox) != 1 || len(sent) != 1 {
				t.Fatalf("the reporter has %d messages and Sent %d, want 1 each", len(inbox), len(sent))
			}
			r, err := mail.CreateReader(bytes.NewReader(inbox[0].Raw))
			if err != nil {
				t.Fatal(err)
			}
			subject, _ := r.Header.Subject()
			msgID, _ := r.Header.MessageID()
			inReplyTo, _ := r.Header.MsgIDList("In-Reply-To")
			refs, _ := r.Header.MsgIDList("References")
			if subject != out.Subject || msgID != out.MessageID || len(inReplyTo) != 1 || inReplyTo[0] != "first@elsewhere.test" || len(refs) != 1 || r.Header.Get("Auto-Submitted") != "auto-replied" {
				t.Errorf("the answer's header is %v", r.Header.Header.Map())
			}
			// A new message (another outbox row) is sent.
			out.MessageID = MessageID(13, nonce, disclosure.CaseID{Year: 2026, Seq: 7}, security)
			if err := cfg.Send(ctx, out, true); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.WaitMessages(ctx, reporter, password, "INBOX", func(m []mailtest.Message) bool { return len(m) == 2 }); err != nil {
				t.Fatal(err)
			}
			// A crash after the server took a message, before it was filed
			// in Sent: the retry finds the copy the same transaction left in
			// the security mailbox, files it, and sends nothing.
			out.MessageID = MessageID(14, nonce, disclosure.CaseID{Year: 2026, Seq: 7}, security)
			raw, err := cfg.Compose(out, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.submit(ctx, out.To, raw); err != nil {
				t.Fatal(err)
			}
			copied := func(m []mailtest.Message) bool {
				for _, msg := range m {
					if bytes.Contains(msg.Raw, []byte("<"+out.MessageID+">")) {
						return true
					}
				}
				return false
			}
			if _, err := srv.WaitMessages(ctx, security, password, "INBOX", copied); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Send(ctx, out, true); err != nil {
				t.Fatal(err)
			}
			if sent, err := srv.Messages(security, password, SentFolder); err != nil || !copied(sent) {
				t.Errorf("the message taken before the crash is not filed in Sent (%v)", err)
			}
			// A marker: once it arrives, anything sent before it has too.
			out.MessageID = MessageID(15, nonce, disclosure.CaseID{Year: 2026, Seq: 7}, security)
			if err := cfg.Send(ctx, out, false); err != nil {
				t.Fatal(err)
			}
			got, err := srv.WaitMessages(ctx, reporter, password, "INBOX", func(m []mailtest.Message) bool { return len(m) >= 4 })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4 {
				t.Errorf("the reporter has %d messages, want 4: the one taken before the crash was sent again", len(got))
			}
		})
	}
}

func TestTheWatcherPollsWithoutIdleAndReconnectsAfterTheServerRestarts(t *testing.T) {
	srv, cfg := server(t, false)
	cfg.noIdle, cfg.PollEvery = true, 200*time.Millisecond
	w := &watched{looks: make(chan struct{}, 1)}
	startWatcher(t, cfg, w)
	deliver := func(id string) {
		t.Helper()
		if err := srv.Deliver(reporter, []string{security}, rawMail(map[string]string{"From": reporter, "To": security, "Message-ID": "<" + id + ">"}, "text\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	deliver("before@x.test")
	waitFor(t, w, "the first message, by polling", func() bool { return len(w.byID()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	deliver("after@x.test")
	waitFor(t, w, "the message after the restart", func() bool { return len(w.byID()) == 2 })
	w.mu.Lock()
	n := len(w.envs)
	w.mu.Unlock()
	if n != 2 {
		t.Errorf("%d messages handed over, want 2 (once each)", n)
	}
}

// A stranger can deliver anything to the security mailbox: a message whose
// header holds the Message-IDs of answers not sent yet (all of them, for
// IDs without a secret part), or one of them as its own, must not make a
// retried answer count as sent. Our own copy still does.
func TestARetriedSendIsNotSuppressedByAPlantedMessageID(t *testing.T) {
	srv, cfg := server(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	caseID := disclosure.CaseID{Year: 2026, Seq: 7}
	// Rows queued before the secret part existed: guessable IDs.
	var future []string
	for row := int64(20); row < 40; row++ {
		future = append(future, "<"+MessageID(row, "", caseID, security)+">")
	}
	planted := []map[string]string{
		{"From": "mallory@elsewhere.test", "Message-ID": strings.Join(future, " ")},
		{"From": "mallory@elsewhere.test", "Message-ID": "<planted@elsewhere.test>", "References": strings.Join(future, " "), "In-Reply-To": future[1]},
		{"From": "mallory@elsewhere.test", "Message-ID": future[2]},
		{"From": security, "Message-ID": future[3]},
	}
	for _, h := range planted {
		h["To"] = security
		if err := srv.Deliver("mallory@elsewhere.test", []string{security}, rawMail(h, "hello\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.WaitMessages(ctx, security, password, "INBOX", func(m []mailtest.Message) bool { return len(m) == len(planted) }); err != nil {
		t.Fatal(err)
	}
	for i, row := range []int64{20, 21, 22, 23} {
		out := Outgoing{To: reporter, Subject: "Re: [SR-2026-0007] Your security report", MessageID: MessageID(row, "", caseID, security), Text: fmt.Sprintf("answer %d", i)}
		if err := cfg.Send(ctx, out, true); err != nil {
			t.Fatal(err)
		}
	}
	got, err := srv.WaitMessages(ctx, reporter, password, "INBOX", func(m []mailtest.Message) bool { return len(m) >= 4 })
	if err != nil {
		t.Fatalf("%v: a planted Message-ID suppressed a retried answer", err)
	}
	if len(got) != 4 {
		t.Errorf("the reporter has %d answers, want 4", len(got))
	}
	// Our own copy in the mailbox (a crash after the server took the
	// message, before it was filed in Sent) still proves it went out.
	out := Outgoing{To: reporter, Subject: "Re: [SR-2026-0007] Your security report", MessageID: MessageID(50, outbox.MailNonce(), caseID, security), Text: "taken before the crash"}
	raw, err := cfg.Compose(out, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.submit(ctx, out.To, raw); err != nil {
		t.Fatal(err)
	}
	copied := func(m []mailtest.Message) bool {
		for _, msg := range m {
			if bytes.Contains(msg.Raw, []byte("<"+out.MessageID+">")) {
				return true
			}
		}
		return false
	}
	if _, err := srv.WaitMessages(ctx, security, password, "INBOX", copied); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Send(ctx, out, true); err != nil {
		t.Fatal(err)
	}
	if sent, err := cfg.Sent(ctx, out.MessageID); err != nil || !sent {
		t.Errorf("our own copy was not filed in Sent (%v)", err)
	}
	marker := Outgoing{To: reporter, Subject: "marker", MessageID: MessageID(51, outbox.MailNonce(), caseID, security), Text: "marker"}
	if err := cfg.Send(ctx, marker, false); err != nil {
		t.Fatal(err)
	}
	got, err = srv.WaitMessages(ctx, reporter, password, "INBOX", func(m []mailtest.Message) bool { return len(m) >= 6 })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Errorf("the reporter has %d messages, want 6: the one taken before the crash was sent again", len(got))
	}
}

func TestOurMessageIDsCarryASecretAndStillNameTheirCase(t *testing.T) {
	caseID := disclosure.CaseID{Year: 2026, Seq: 7}
	a, b := MessageID(3, outbox.MailNonce(), caseID, security), MessageID(3, outbox.MailNonce(), caseID, security)
	if a == b || len(a) < len(MessageID(3, "", caseID, security))+32 {
		t.Errorf("Message-IDs %q and %q of one row carry no secret part", a, b)
	}
	for _, id := range []string{a, MessageID(3, "", caseID, security)} {
		if got, ok := (Envelope{Thread: []string{id}}).ThreadCase(security); !ok || got != caseID {
			t.Errorf("%s names case %v, want %v", id, got, caseID)
		}
	}
}

// A message its sender's limit delays stays unmarked in the mailbox and
// is handed over again once its time comes, long before the next poll.
func TestTheWatcherHandsADelayedMessageOverAgainLater(t *testing.T) {
	srv, cfg := server(t, false)
	cfg.PollEvery = 10 * time.Minute
	until := time.Now().Add(3 * time.Second)
	w := &watched{looks: make(chan struct{}, 1), later: map[string]time.Time{"late@x.test": until}}
	startWatcher(t, cfg, w)
	for _, id := range []string{"now@x.test", "late@x.test"} {
		if err := srv.Deliver(reporter, []string{security}, rawMail(map[string]string{"From": reporter, "To": security, "Message-ID": "<" + id + ">"}, "text\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, w, "the first message", func() bool { return len(w.byID()) == 1 })
	msgs, err := srv.Messages(security, password, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if bytes.Contains(m.Raw, []byte("late@x.test")) && m.HasFlag(HandledKeyword) && time.Now().Before(until) {
			t.Errorf("the delayed message is marked handled before it was: %v", m.Flags)
		}
	}
	waitFor(t, w, "the delayed message, after its time", func() bool { return len(w.byID()) == 2 })
	if time.Now().Before(until) {
		t.Error("the delayed message was handed over before its time")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := srv.WaitMessages(ctx, security, password, "INBOX", func(msgs []mailtest.Message) bool {
		for _, m := range msgs {
			if !m.HasFlag(HandledKeyword) {
				return false
			}
		}
		return len(msgs) == 2
	}); err != nil {
		t.Errorf("the delayed message is not marked handled: %v", err)
	}
}

// Every text of an email is read (several inline text/plain parts, an
// inline text/html in multipart/mixed), an HTML part with a plain
// alternative is not read twice, a text over the size limit is cut and
// says so, parts past MaxParts are named, not read, and file names are
// neutralised.
func TestFetchReadsEveryTextPartAndCapsTheParts(t *testing.T) {
	srv, cfg := server(t, false)
	var b strings.Builder
	b.WriteString("From: " + reporter + "\r\nTo: " + security + "\r\nSubject: parts\r\nMessage-ID: <parts@x.test>\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=outer\r\n\r\n")
	part := func(header, body string) { b.WriteString("--outer\r\n" + header + "\r\n\r\n" + body + "\r\n") }
	part("Content-Type: text/plain; charset=utf-8", "one")
	part("Content-Type: text/html; charset=utf-8\r\nContent-Disposition: inline", "<b>two</b>")
	part("Content-Type: multipart/alternative; boundary=alt", "--alt\r\nContent-Type: text/plain\r\n\r\nthree\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>three</p>\r\n--alt--")
	part("Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline", strings.Repeat("4", 1500))
	part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"", "root")
	part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEtxt.exe", "MZ")
	for i := range 25 {
		part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\""+fmt.Sprintf("f%02d.bin", i)+"\"", "x")
	}
	b.WriteString("--outer--\r\n")
	if err := srv.Deliver(reporter, []string{security}, []byte(b.String())); err != nil {
		t.Fatal(err)
	}
	w := &watched{looks: make(chan struct{}, 1)}
	startWatcher(t, cfg, w)
	waitFor(t, w, "the message", func() bool { return len(w.byID()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	content, err := cfg.Fetch(ctx, w.byID()["parts@x.test"].Ref)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, tx := range content.Texts {
		texts = append(texts, fmt.Sprintf("%.10s html=%v cut=%v", tx.Text, tx.HTML, tx.Cut > 0))
	}
	want := []string{"one html=false cut=false", "<b>two</b> html=true cut=false", "three html=false cut=false", "4444444444 html=false cut=true"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("texts:\n%q\nwant\n%q", texts, want)
	}
	if len(content.Texts) == 4 && (len(content.Texts[3].Text) != int(cfg.MaxAttachment) || content.Texts[3].Cut < 1500) {
		t.Errorf("the cut text is %d bytes, cut from %d", len(content.Texts[3].Text), content.Texts[3].Cut)
	}
	if n := len(content.Texts) + len(content.Attachments); n != MaxParts {
		t.Errorf("%d parts read, want %d", n, MaxParts)
	}
	if len(content.Attachments) < 2 || content.Attachments[0].Name != "____etc_passwd" || content.Attachments[1].Name != "invoice_txt.exe" || string(content.Attachments[1].Data) != "MZ" {
		t.Errorf("the file names are not neutralised: %+v", content.Attachments[:min(2, len(content.Attachments))])
	}
	if len(content.Skipped) != 27-(MaxParts-4) || content.Skipped[len(content.Skipped)-1].Name != "f24.bin" || content.Skipped[0].Data != nil {
		t.Errorf("skipped: %+v", content.Skipped)
	}
}

func TestNeutralNames(t *testing.T) {
	for in, want := range map[string]string{
		"poc.txt":                        "poc.txt",
		"../../etc/passwd":               "____etc_passwd",
		`..\..\boot.ini`:                 "____boot.ini",
		"C:evil":                         "C_evil",
		"invoice\u202etxt.exe":           "invoice_txt.exe",
		"a\u200bb\u2066c\u2069.pdf":      "a_b_c_.pdf",
		"line\nbreak\r.txt":              "line_break_.txt",
		".hidden":                        "hidden",
		"..":                             "made.bin",
		"":                               "made.bin",
		"/":                              "made.bin",
		strings.Repeat("a", 200) + ".gz": strings.Repeat("a", maxName-4) + "….gz",
	} {
		if got := neutralName(in, "made.bin"); got != want {
			t.Errorf("neutralName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A delivery report names the mail it returns in the returned message's
// own header (a message/rfc822 or text/rfc822-headers part): BounceCase
// finds the case of secbot's mail there, and nothing for others' mail.
func TestBounceCaseFindsOurMailInTheReport(t *testing.T) {
	srv, cfg := server(t, false)
	caseID := disclosure.CaseID{Year: 2026, Seq: 12}
	ours := MessageID(77, outbox.MailNonce(), caseID, security)
	dsn := func(id, returned string) []byte {
		return rawMail(map[string]string{"From": "MAILER-DAEMON@mx.elsewhere.test", "To": security, "Message-ID": "<" + id + ">", "Auto-Submitted": "auto-replied",
			"Content-Type": "multipart/report; report-type=delivery-status; boundary=r"},
			"--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"+
				"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.elsewhere.test\r\n\r\nFinal-Recipient: rfc822; gone@elsewhere.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"+
				returned+"--r--\r\n")
	}
	reports := map[string][]byte{
		"rfc822@mx.test":  dsn("rfc822@mx.test", "--r\r\nContent-Type: message/rfc822\r\n\r\nFrom: "+security+"\r\nTo: gone@elsewhere.test\r\nMessage-ID: <"+ours+">\r\nSubject: Re: [SR-2026-0012] Your security report\r\n\r\nWe answer by Friday.\r\n"),
		"headers@mx.test": dsn("headers@mx.test", "--r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: "+security+"\r\nIn-Reply-To: <first@elsewhere.test>\r\nReferences: <first@elsewhere.test> <"+ours+">\r\nMessage-ID: <secbot.78.SR-2026-0012@another.test>\r\n"),
		"others@mx.test":  dsn("others@mx.test", "--r\r\nContent-Type: message/rfc822\r\n\r\nFrom: someone@elsewhere.test\r\nMessage-ID: <secbot.5.SR-2026-0001@elsewhere.test>\r\n\r\ntext\r\n"),
		"plain@mx.test":   rawMail(map[string]string{"From": "MAILER-DAEMON@mx.elsewhere.test", "To": security, "Message-ID": "<plain@mx.test>"}, "Undeliverable.\r\n"),
	}
	for _, raw := range reports {
		if err := srv.Deliver("", []string{security}, raw); err != nil {
			t.Fatal(err)
		}
	}
	w := &watched{looks: make(chan struct{}, 1)}
	startWatcher(t, cfg, w)
	waitFor(t, w, "the reports", func() bool { return len(w.byID()) == len(reports) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for id, want := range map[string]disclosure.CaseID{"rfc822@mx.test": caseID, "headers@mx.test": caseID, "others@mx.test": {}, "plain@mx.test": {}} {
		env := w.byID()[id]
		if env.Kind != chat.MailBounce || !env.BounceOf.IsZero() {
			t.Errorf("%s: kind %v, bounce of %v from its header alone", id, env.Kind, env.BounceOf)
		}
		got, err := cfg.BounceCase(ctx, env.Ref)
		if err != nil || got != want {
			t.Errorf("%s: a bounce of %v (%v), want %v", id, got, err, want)
		}
	}
}
